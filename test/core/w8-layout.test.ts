import { describe, expect, it } from 'vitest';
import { packW8, unpackW8, sliceW8Rows, w8WordCount } from '../../core/w8-layout.js';
import { W8LayoutError } from '../../core/errors.js';

function seededInts(n: number, seed: number, lo: number, hi: number): Int8Array {
  const out = new Int8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (s % (hi - lo + 1));
  }
  return out;
}

describe('w8_layout', () => {
  it.each([
    [1, 1],
    [3, 8],
    [5, 37],
    [64, 172],
  ])('round-trips [%i, %i] (seed 11) and byte i of word j of block c is q[o, 32c + 4j + i]', (out, inF) => {
    const q = seededInts(out * inF, 11, -127, 127);
    const words = packW8(q, out, inF);
    expect(words.length).toBe(w8WordCount(out, inF));
    expect(unpackW8(words, out, inF)).toEqual(q);
    const bytes = new Int8Array(words.buffer);
    const blocks = Math.ceil(inF / 32);
    for (let o = 0; o < out; o++) {
      for (let c = 0; c < blocks; c++) {
        for (let b = 0; b < 32; b++) {
          const k = 32 * c + b;
          expect(bytes[(c * out + o) * 32 + b]).toBe(k < inF ? q[o * inF + k]! : 0);
        }
      }
    }
  });

  it('slices rows into an independently packed weight', () => {
    const q = seededInts(9 * 40, 3, -127, 127);
    const words = packW8(q, 9, 40);
    expect(unpackW8(sliceW8Rows(words, 9, 40, 2, 7), 5, 40)).toEqual(q.subarray(2 * 40, 7 * 40));
  });

  it('rejects out-of-range values and wrong sizes', () => {
    expect(() => packW8(new Int8Array([-128]), 1, 1)).toThrow(W8LayoutError);
    expect(() => packW8(new Int8Array([-128]), 1, 1)).toThrow(/outside -127..127/);
    expect(() => packW8(new Int8Array(3), 2, 2)).toThrow(/3 values/);
    expect(() => unpackW8(new Uint32Array(3), 2, 2)).toThrow(W8LayoutError);
    expect(() => sliceW8Rows(new Uint32Array(16), 2, 2, 1, 3)).toThrow(/outside/);
  });
});
