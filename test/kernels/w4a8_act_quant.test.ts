// Kernel A edge cases: rounding ties, a sweep of magnitudes (the exact division behind s_x and the
// quantization multiplier), zero and sub-threshold rows, and the rank-chunk boundaries of x̃·L_A.
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { createQuantizedLinear } from '../../runtime/quantized-linear.js';
import { actQuantRef, packActivationsRef, roundHalfEven, ZERO_ROW_MAX } from '../../kernels/w4a8_act_quant.ref.js';
import { roundToF16 } from '../../kernels/matmul_dense.ref.js';
import { seededFloats } from './linear-harness.js';
import { f32Bits, firstMismatch, runQuantized, syntheticQuantizedLinear, tAbsScale } from './quant-harness.js';

const cache = testGpu().then((g) => new PipelineCache(g.device));

async function quantize(x: Float32Array, tokens: number, inF: number, aBits: number, rank = 0, seed = 1) {
  const gpu = await testGpu();
  const q = syntheticQuantizedLinear({ inF, outF: 8, rank, aBits }, seed);
  const op = createQuantizedLinear(gpu, await cache, q, { label: `act_quant a${aBits} r${rank}`, maxTokens: tokens });
  try {
    const got = await runQuantized(gpu, op, x, tokens);
    const la = rank ? (op.lowRank === 'f16' ? roundToF16(q.la!) : q.la!) : undefined;
    const ref = actQuantRef(x, tokens, inF, { aBits, rank, la });
    return { got, ref, la };
  } finally {
    op.destroy();
  }
}

describe('w4a8_act_quant', () => {
  it('rounds halves to even (A8: absmax 127 makes inv = 1; A4: absmax 7)', async () => {
    const halves = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 126.5, -126.5];
    const row8 = new Float32Array([127, ...halves]);
    const row4 = new Float32Array([7, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 6.5, -6.5]);
    const a8 = await quantize(row8, 1, row8.length, 8);
    expect(Array.from(a8.ref.xq)).toEqual([127, 0, 2, 2, 0, -2, -2, 4, 126, -126]);
    expect(firstMismatch(a8.got.xq, packActivationsRef(a8.ref.xq, 1, row8.length))).toBe(-1);
    const a4 = await quantize(row4, 1, row4.length, 4);
    expect(Array.from(a4.ref.xq)).toEqual([7, 0, 2, 2, 0, -2, -2, 4, 6, -6]);
    expect(firstMismatch(a4.got.xq, packActivationsRef(a4.ref.xq, 1, row4.length))).toBe(-1);
    expect(roundHalfEven(-0.5)).toBe(-0);
  });

  it.each([8, 6, 4])('matches s_x and q bit for bit over magnitudes 2^-99 .. 2^120 (A%i, seed 11)', async (aBits) => {
    const tokens = 220, inF = 45;
    const x = seededFloats(tokens * inF, 11, 1);
    for (let t = 0; t < tokens; t++) {
      const scale = 2 ** (t - 99);
      for (let k = 0; k < inF; k++) x[t * inF + k]! *= scale;
    }
    const { got, ref } = await quantize(x, tokens, inF, aBits);
    expect(firstMismatch(f32Bits(got.sx), f32Bits(ref.sx)), 's_x').toBe(-1);
    expect(firstMismatch(got.xq, packActivationsRef(ref.xq, tokens, inF)), 'q').toBe(-1);
  });

  it('gives zero and sub-threshold rows s_x = 0 and q = 0, and the next row is unaffected', async () => {
    const inF = 33;
    const x = seededFloats(3 * inF, 5, 1);
    for (let k = 0; k < inF; k++) {
      x[k] = 0;
      x[inF + k] = x[inF + k]! * ZERO_ROW_MAX * 0.9;
    }
    const { got, ref } = await quantize(x, 3, inF, 8);
    expect(Array.from(got.sx.subarray(0, 2))).toEqual([0, 0]);
    expect(got.sx[2]).toBeGreaterThan(0);
    expect(firstMismatch(f32Bits(got.sx), f32Bits(ref.sx))).toBe(-1);
    expect(firstMismatch(got.xq, packActivationsRef(ref.xq, 3, inF))).toBe(-1);
  });

  it.each([1, 8, 9, 17])('computes t = x̃·L_A across rank-chunk boundaries (rank %i, seed 21)', async (rank) => {
    const tokens = 3, inF = 130;
    const x = seededFloats(tokens * inF, 21, 3);
    const { got, ref, la } = await quantize(x, tokens, inF, 8, rank, 21);
    const tAbs = tAbsScale(ref.xs, la!, tokens, inF, rank);
    for (let i = 0; i < tokens * rank; i++) expect(Math.abs(got.t![i]! - ref.t[i]!)).toBeLessThan(1e-5 * tAbs[i]!);
  });
});
