import { describe, expect, it } from 'vitest';
import { packW4, unpackW4, sliceW4Rows, stackW4Rows, w4WordCount } from '../../core/w4-layout.js';
import { W4LayoutError } from '../../core/errors.js';

function seededInts(n: number, seed: number, lo: number, hi: number): Int8Array {
  const out = new Int8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (s % (hi - lo + 1));
  }
  return out;
}

// CPU model of the kernel's lane trick: bytes of (w<<4)&0xF0F0F0F0 and w&0xF0F0F0F0 are 16·q.
function lanes16(word: number): number[] {
  const lo = (word << 4) & 0xf0f0f0f0;
  const hi = word & 0xf0f0f0f0;
  const bytes = (v: number) => [0, 1, 2, 3].map((i) => ((v >>> (8 * i)) << 24) >> 24);
  return [...bytes(lo), ...bytes(hi)];
}

describe('w4_layout', () => {
  it.each([
    [1, 1],
    [3, 8],
    [5, 37],
    [64, 172],
  ])('round-trips [%i, %i] (seed 7) and the lane trick yields 16·q in k order', (out, inF) => {
    const q = seededInts(out * inF, 7, -7, 7);
    const words = packW4(q, out, inF);
    expect(words.length).toBe(w4WordCount(out, inF));
    expect(unpackW4(words, out, inF)).toEqual(q);
    const blocks = Math.ceil(inF / 32);
    for (let o = 0; o < out; o++) {
      for (let c = 0; c < blocks; c++) {
        for (let j = 0; j < 4; j++) {
          const l = lanes16(words[((c * out + o) << 2) + j]!);
          for (let i = 0; i < 8; i++) {
            const k = 32 * c + 8 * j + i;
            expect(l[i]).toBe(k < inF ? 16 * q[o * inF + k]! : 0);
          }
        }
      }
    }
  });

  it('slices rows into an independently packed weight', () => {
    const q = seededInts(9 * 40, 3, -7, 7);
    const words = packW4(q, 9, 40);
    expect(unpackW4(sliceW4Rows(words, 9, 40, 2, 7), 5, 40)).toEqual(q.subarray(2 * 40, 7 * 40));
  });

  it('stacks the rows of several weights of one input (q|k|v) as packW4 of the stacked values', () => {
    const parts = [5, 3, 3].map((out, i) => ({ q: seededInts(out * 40, 10 + i, -7, 7), out }));
    const stacked = stackW4Rows(parts.map((p) => ({ words: packW4(p.q, p.out, 40), outFeatures: p.out })), 40);
    const all = new Int8Array(11 * 40);
    let row = 0;
    for (const p of parts) (all.set(p.q, row * 40), (row += p.out));
    expect(stacked).toEqual(packW4(all, 11, 40));
    expect(() => stackW4Rows([{ words: new Uint32Array(3), outFeatures: 2 }], 40)).toThrow(W4LayoutError);
  });

  it('rejects out-of-range values and wrong sizes', () => {
    expect(() => packW4(new Int8Array([8]), 1, 1)).toThrow(W4LayoutError);
    expect(() => packW4(new Int8Array([-8]), 1, 1)).toThrow(/outside -7..7/);
    expect(() => packW4(new Int8Array(3), 2, 2)).toThrow(/3 values/);
    expect(() => unpackW4(new Uint32Array(3), 2, 2)).toThrow(W4LayoutError);
  });
});
