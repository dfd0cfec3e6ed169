// int8 side-path factors (core/lowrank-int8.ts): scales per rank index, the rounding bound, zero lines,
// the symmetric range, and the f32 values every consumer sees.
import { describe, expect, it } from 'vitest';
import { dequantizeLowRankInt8, lowRankInt8Bytes, packInt8Words, quantizeLowRankInt8, withInt8LowRank } from '../../core/lowrank-int8.js';
import type { QuantizedLinear } from '../../core/quantized.js';

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2;
  });
}

describe('int8 L_A / L_B', () => {
  const inF = 37, out = 11, rank = 5;
  const la = seeded(inF * rank, 1);
  const lb = seeded(rank * out, 2);
  for (let k = 0; k < inF; k++) la[k * rank + 3] = 0; // an all-zero column of L_A
  for (let k = 0; k < inF; k++) la[k * rank + 1] *= 1e-3; // a small one: its own scale keeps it precise
  la[2 * rank + 4] = 40; // one outlier in column 4

  it('scales per column of L_A and per row of L_B, each line hitting ±127, errors within half a step', () => {
    const f = quantizeLowRankInt8(la, lb, inF, out, rank);
    const { la: la2, lb: lb2 } = dequantizeLowRankInt8(f, inF, out, rank);
    for (let j = 0; j < rank; j++) {
      const col = Array.from({ length: inF }, (_, k) => f.la[k * rank + j]!);
      if (j === 3) {
        expect(f.laScale[j]).toBe(0);
        expect(col.every((v) => v === 0)).toBe(true);
      } else expect(Math.max(...col.map(Math.abs))).toBe(127);
      for (let k = 0; k < inF; k++) expect(Math.abs(la2[k * rank + j]! - la[k * rank + j]!)).toBeLessThanOrEqual(f.laScale[j]! * 0.5 * (1 + 1e-6));
      const row = Array.from(f.lb.subarray(j * out, (j + 1) * out));
      expect(Math.max(...row.map(Math.abs))).toBe(127);
      for (let o = 0; o < out; o++) expect(Math.abs(lb2[j * out + o]! - lb[j * out + o]!)).toBeLessThanOrEqual(f.lbScale[j]! * 0.5 * (1 + 1e-6));
    }
    expect(f.laScale[1]! * 1000).toBeLessThan(f.laScale[0]! * 2); // the small column got a small scale
    expect([...f.la, ...f.lb].includes(-128)).toBe(false);
  });

  it('withInt8LowRank replaces la/lb by exactly q·scale (f32) and leaves rank 0 alone', () => {
    const q: QuantizedLinear = { inFeatures: inF, outFeatures: out, wBits: 4, aBits: 8, qweight: new Uint32Array(0), wScale: new Float32Array(out), rank, la, lb };
    const i8 = withInt8LowRank(q);
    const f = i8.lowRankInt8!;
    for (let k = 0; k < inF; k++) for (let j = 0; j < rank; j++) expect(i8.la![k * rank + j]).toBe(Math.fround(f.la[k * rank + j]! * f.laScale[j]!));
    for (let j = 0; j < rank; j++) for (let o = 0; o < out; o++) expect(i8.lb![j * out + o]).toBe(Math.fround(f.lb[j * out + o]! * f.lbScale[j]!));
    expect(withInt8LowRank(i8)).toBe(i8);
    const r0 = { ...q, rank: 0, la: undefined, lb: undefined };
    expect(withInt8LowRank(r0)).toBe(r0);
    expect(lowRankInt8Bytes(inF, out, rank)).toBe(rank * (inF + out) + 8 * rank);
  });

  it('packs int8 lanes 4 to a little-endian word, zero padded', () => {
    const w = packInt8Words(Int8Array.from([1, -1, 127, -127, 5]));
    expect(Array.from(w)).toEqual([(1 | (0xff << 8) | (127 << 16) | (0x81 << 24)) >>> 0, 5]);
  });
});
