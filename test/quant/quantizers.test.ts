import { describe, expect, it } from 'vitest';
import {
  dequantizeWeights, fakeQuantActivations, qmax, quantizeActivationsPerToken, quantizeWeightsPerChannel,
  roundHalfEven,
} from '../../quant/quantizers.js';

describe('quantizers', () => {
  it('round half to even, like WGSL round()', () => {
    const cases: Array<[number, number]> = [[0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, 0], [-1.5, -2], [-2.5, -2], [2.4999, 2], [2.5001, 3], [-7, -7]];
    for (const [x, want] of cases) expect(roundHalfEven(x), String(x)).toBe(want);
  });

  it('qmax per bit width: 127, 31, 7', () => {
    expect([8, 6, 4].map(qmax)).toEqual([127, 31, 7]);
    expect(() => qmax(9)).toThrow(RangeError);
  });

  it('weights: symmetric per output channel, f32 scale = absmax / 7, zero row → scale 0', () => {
    const w = Float32Array.from([
      0.7, -0.35, 0.05, 0.25, // absmax 0.7 → s = 0.1
      0, 0, 0, 0, // all zero
      -1.4, 0.3, 0.1, 0.7, // absmax 1.4 → s = 0.2; 0.3/0.2 = 1.5 → 2, 0.1/0.2 = 0.5 → 0, 0.7/0.2 = 3.5 → 4
    ]);
    const q = quantizeWeightsPerChannel(w, 3, 4, 4);
    expect(Array.from(q.scale)).toEqual([Math.fround(0.7 / 7), 0, Math.fround(1.4 / 7)]);
    expect(Array.from(q.q.subarray(0, 4))).toEqual([7, roundHalfEven(-0.35 / Math.fround(0.1)), roundHalfEven(0.05 / Math.fround(0.1)), roundHalfEven(0.25 / Math.fround(0.1))]);
    expect(Array.from(q.q.subarray(4, 8))).toEqual([0, 0, 0, 0]);
    expect(q.q[8]).toBe(-7);
    expect(Math.max(...q.q)).toBeLessThanOrEqual(7);
    const deq = dequantizeWeights(q, 3, 4);
    for (let i = 0; i < w.length; i++) expect(Math.abs(deq[i]! - w[i]!)).toBeLessThanOrEqual(q.scale[Math.floor(i / 4)]! / 2 + 1e-9);
  });

  it('weights: skipped columns neither set the scale nor get a value', () => {
    const w = Float32Array.from([10, 0.7, -0.7, 1]);
    const e = new Float64Array(4);
    const q = quantizeWeightsPerChannel(w, 1, 4, 4, [0], e);
    expect(q.scale[0]).toBe(Math.fround(1 / 7));
    expect(q.q[0]).toBe(0);
    expect(q.q[3]).toBe(7);
    // the error comes out of the same pass: E = W − s·q, 0 in the skipped column
    const deq = dequantizeWeights(q, 1, 4);
    expect(Array.from(e)).toEqual([0, ...[1, 2, 3].map((i) => w[i]! - deq[i]!)]);
  });

  it('activations: per token, f32 scale, all-zero token → scale 0 and output 0 (no NaN)', () => {
    const x = Float32Array.from([1, -2, 0.5, 0, 0, 0, 127, 63.5, -0.5]);
    const a = quantizeActivationsPerToken(x, 3, 3, 8);
    expect(Array.from(a.scale)).toEqual([Math.fround(2 / 127), 0, 1]);
    expect(Array.from(a.q.subarray(3, 6))).toEqual([0, 0, 0]);
    expect(Array.from(a.q.subarray(6, 9))).toEqual([127, 64, 0]); // 63.5 → 64 (even), -0.5 → 0
    expect(a.q[1]).toBe(-127);
    const fq = fakeQuantActivations(x, 3, 3, 4);
    expect(fq.every(Number.isFinite)).toBe(true);
    expect(Array.from(fq.subarray(3, 6))).toEqual([0, 0, 0]);
    expect(() => quantizeActivationsPerToken(x, 2, 3, 8)).toThrow(/9 values for shape \[2, 3\]/);
  });
});
