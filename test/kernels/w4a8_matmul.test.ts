// Whole quantized layers (kernel A + kernel B, fused and unfused) against the CPU reference:
// integer parts (packed activations, s_x, int32 accumulators) bit for bit, floats within TOL.
import { afterAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { openNodeDevice } from '../../node/gpu.js';
import type { GpuContext } from '../../core/gpu.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { createQuantizedLinear, type QuantizedLinearOptions } from '../../runtime/quantized-linear.js';
import { quantizedLinearRef } from '../../kernels/w4a8_matmul.ref.js';
import { actQuantRef, packActivationsRef } from '../../kernels/w4a8_act_quant.ref.js';
import { inverseSmoothing } from '../../kernels/w4a8_act_quant.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import { withInt8LowRank } from '../../core/lowrank-int8.js';
import { roundToF16 } from '../../kernels/matmul_dense.ref.js';
import { seededFloats } from './linear-harness.js';
import {
  f32Bits, firstMismatch, runQuantized, syntheticQuantizedLinear, tAbsScale, type SyntheticLayer,
} from './quant-harness.js';
import { LinearConfigError } from '../../runtime/errors.js';
import type { W4GemvInner } from '../../kernels/w4a8_matmul.js';
import { packW4 } from '../../core/w4-layout.js';
import { packW8 } from '../../core/w8-layout.js';
import { planSwiglu } from '../../kernels/swiglu.js';
import { runPlan } from './run-plan.js';

// Float tolerance, relative to the size of the summed terms (|s_x·s_w·acc| + Σ_j Σ_k|x̃·L_A|·|L_B| + |bias|):
// f32 sums of ≤ 1000 terms in another order than the f64 reference; random-sign errors grow like
// sqrt(n)·2^-24 ≈ 2e-6, so 1e-5 leaves a wide margin while catching any wrong term.
const TOL = 1e-5;
// The unfused baseline folds the smoothing into L_A before rounding it to f16, so its side path
// differs from the reference by one f16 rounding (2^-11 relative) of each L_A entry.
const F16_ULP = 2 ** -11;

/** GPU-style tilings (k-split GEMV with a reduction tree, many act-quant splits) exercised on any adapter. */
const GPU_TILING: Pick<QuantizedLinearOptions, 'actQuantTiling' | 'matmulTiling'> = {
  actQuantTiling: { wg: 128, rankChunk: 8, targetWorkgroups: 256, minBlocksPerSplit: 1 },
  matmulTiling: { gemvRows: 32, gemvKsplit: 8, gemvRowsPerThread: 2, gemvMaxTokens: 4, rm: 4, rn: 4 },
};

interface Case extends SyntheticLayer {
  name: string;
  tokens: number;
  fused?: boolean;
  /** Token rows to overwrite: 'zero' (all 0), 'tiny' (below the zero-row threshold), 'huge' (±1e30). */
  special?: Record<number, 'zero' | 'tiny' | 'huge'>;
  opts?: Partial<QuantizedLinearOptions>;
  /** Intermediates only hold the last token chunk: skip their checks when chunking. */
  yOnly?: boolean;
  /** Every weight ±7 (sign per row parity) and every activation at ±qmax: the accumulators' extremes. */
  extreme?: boolean;
  /** L_A / L_B as int8 with a scale per rank index (core/lowrank-int8.ts): the kernels' LR_I8 variant. */
  int8Factors?: boolean;
}

function makeInput(c: Case, seed: number): Float32Array {
  const x = seededFloats(c.tokens * c.inF, seed, 2);
  for (const [row, kind] of Object.entries(c.special ?? {})) {
    const r = Number(row);
    for (let k = 0; k < c.inF; k++) {
      const i = r * c.inF + k;
      x[i] = kind === 'zero' ? 0 : kind === 'tiny' ? x[i]! * 1e-32 : x[i]! * 1e30;
    }
  }
  return x;
}

/** Weights all +qmax_w (even rows) or -qmax_w (odd rows); x rows of one sign each, so every |x_q| = qmax. */
function extremeCase(q: QuantizedLinear, x: Float32Array, c: Case): void {
  const w = new Int8Array(c.outF * c.inF);
  const qmax = c.wBits === 8 ? 127 : 7;
  for (let o = 0; o < c.outF; o++) w.fill(o % 2 ? -qmax : qmax, o * c.inF, (o + 1) * c.inF);
  q.qweight = (c.wBits === 8 ? packW8 : packW4)(w, c.outF, c.inF);
  for (let t = 0; t < c.tokens; t++) x.fill(t % 2 ? -3 : 3, t * c.inF, (t + 1) * c.inF);
}

async function check(gpu: GpuContext, cache: PipelineCache, c: Case, seed: number): Promise<void> {
  const synthetic = syntheticQuantizedLinear(c, seed);
  const q = c.int8Factors ? withInt8LowRank(synthetic) : synthetic;
  const x = makeInput(c, seed + 100);
  if (c.extreme) extremeCase(q, x, c);
  const op = createQuantizedLinear(gpu, cache, q, { label: c.name, maxTokens: c.tokens, fused: c.fused, debugAcc: true, ...c.opts });
  try {
    if (c.int8Factors) expect(op.lowRank).toBe(c.fused === false ? (gpu.features.shaderF16 ? 'f16' : 'f32') : 'int8');
    const got = await runQuantized(gpu, op, x, c.tokens);
    const ref = quantizedLinearRef(q, x, c.tokens, op.lowRank);
    for (let i = 0; i < got.y.length; i++) if (!Number.isFinite(got.y[i]!)) throw new Error(`y[${i}] = ${got.y[i]}`);

    if (!c.yOnly) {
      expect(firstMismatch(got.xq, packActivationsRef(ref.xq, c.tokens, c.inF)), 'packed activations').toBe(-1);
      expect(firstMismatch(f32Bits(got.sx), f32Bits(ref.sx)), 's_x bits').toBe(-1);
      expect(firstMismatch(got.acc!, ref.acc), 'int32 accumulators').toBe(-1);
    }
    // Float parts: t (fused) and y.
    const rank = op.lowRank === 'none' ? 0 : q.rank;
    const la = rank ? (op.lowRank === 'f16' ? roundToF16(q.la!) : q.la!) : new Float32Array(0);
    const lb = rank ? (op.lowRank === 'f16' ? roundToF16(q.lb!) : q.lb!) : new Float32Array(0);
    const xs = actQuantRef(x, c.tokens, c.inF, { aBits: q.aBits, invSmooth: q.smooth ? inverseSmoothing(q.smooth) : undefined }).xs;
    const tAbs = tAbsScale(xs, la, c.tokens, c.inF, rank);
    if (got.t && !c.yOnly) {
      let worst = 0;
      for (let i = 0; i < got.t.length; i++) worst = Math.max(worst, Math.abs(got.t[i]! - ref.t[i]!) / (tAbs[i]! + 1e-30));
      expect(worst, 't = x̃·L_A').toBeLessThan(TOL);
    }
    let worst = 0;
    for (let t = 0; t < c.tokens; t++) {
      for (let o = 0; o < c.outF; o++) {
        let scale = ref.scale[t * c.outF + o]!;
        let sideScale = 0;
        for (let j = 0; j < rank; j++) sideScale += tAbs[t * rank + j]! * Math.abs(lb[j * c.outF + o]!);
        const i = t * c.outF + o;
        const foldError = c.fused === false && op.lowRank === 'f16' ? F16_ULP * sideScale : 0;
        worst = Math.max(worst, Math.max(0, Math.abs(got.y[i]! - ref.y[i]!) - foldError) / (scale + sideScale + 1e-30));
      }
    }
    expect(worst, 'y').toBeLessThan(TOL);
  } finally {
    op.destroy();
  }
}

const CASES: Case[] = [
  { name: 'gemv 1 token, in 37, out 13, r 3, smooth, bias', tokens: 1, inF: 37, outF: 13, rank: 3, smooth: true, bias: true },
  { name: 'gemv 2 tokens, A6, out 1, r 1', tokens: 2, inF: 100, outF: 1, rank: 1, aBits: 6 },
  { name: 'gemm 1000 tokens, r 0, bias', tokens: 1000, inF: 64, outF: 40, rank: 0, bias: true },
  {
    name: 'gemm 67 tokens, A4, r 14, smooth, bias, zero/tiny/huge rows', tokens: 67, inF: 172, outF: 64, rank: 14, aBits: 4, smooth: true, bias: true,
    special: { 0: 'zero', 5: 'tiny', 9: 'huge', 66: 'zero' },
  },
  { name: 'gemm 5 tokens, in 300, out 70, r 31', tokens: 5, inF: 300, outF: 70, rank: 31, smooth: true },
  { name: 'gemv 1 token, in 1000, r 31, GPU tiling (k-splits)', tokens: 1, inF: 1000, outF: 45, rank: 31, bias: true, opts: GPU_TILING },
  { name: 'gemv 3 tokens, zero row, r 5, GPU tiling', tokens: 3, inF: 200, outF: 33, rank: 5, smooth: true, special: { 1: 'zero' }, opts: GPU_TILING },
  { name: 'gemm 70 tokens, r 20, bias, GPU tiling (4×4 per thread)', tokens: 70, inF: 130, outF: 75, rank: 20, bias: true, smooth: true, opts: GPU_TILING },
  { name: 'unfused gemv 1 token, r 14, smooth, bias', tokens: 1, inF: 172, outF: 64, rank: 14, smooth: true, bias: true, fused: false },
  { name: 'unfused gemm 40 tokens, A6, r 5', tokens: 40, inF: 64, outF: 172, rank: 5, aBits: 6, fused: false },
  {
    name: 'split weight (4 slices) gemm + gemv slices', tokens: 9, inF: 40, outF: 50, rank: 5, bias: true,
    opts: { maxSliceBytes: 13 * 2 * 16 },
  },
  {
    name: 'token chunks (3) with split weight', tokens: 150, inF: 40, outF: 50, rank: 5, smooth: true, bias: true, yOnly: true,
    opts: { maxSliceBytes: 20 * 2 * 16, maxBindingBytes: 64 * 64 * 4 },
  },
];

// L_A / L_B in int8 (LR_I8): kernel A widens 4 lanes a word and scales the reduced t per rank column,
// kernel B widens L_B's byte lanes and scales t per rank row. The reference takes the f32 values the
// int8 factors stand for (q·scale), so the check is the same as for f32 factors.
const INT8_FACTOR_CASES: Case[] = [
  { name: 'int8 factors gemv 1 token, in 37, out 13, r 3, smooth, bias', tokens: 1, inF: 37, outF: 13, rank: 3, smooth: true, bias: true, int8Factors: true },
  { name: 'int8 factors gemv 2 tokens, A6, in 300, out 70, r 14, 2 k-splits × 3 rows/thread', tokens: 2, inF: 300, outF: 70, rank: 14, aBits: 6, int8Factors: true, opts: { matmulTiling: { gemvKsplit: 2, gemvRowsPerThread: 3 } } },
  { name: 'int8 factors gemv 1 token, in 1000, r 31, GPU tiling (k-splits)', tokens: 1, inF: 1000, outF: 45, rank: 31, bias: true, int8Factors: true, opts: GPU_TILING },
  { name: 'int8 factors gemm 67 tokens, A4, r 14, smooth, zero/huge rows', tokens: 67, inF: 172, outF: 63, rank: 14, aBits: 4, smooth: true, special: { 0: 'zero', 9: 'huge' }, int8Factors: true },
  { name: 'int8 factors, split weight (4 slices), gemm', tokens: 9, inF: 40, outF: 50, rank: 5, bias: true, int8Factors: true, opts: { maxSliceBytes: 13 * 2 * 16 } },
  { name: 'int8 factors, W8 gemv 3 tokens, r 5, GPU tiling', tokens: 3, inF: 200, outF: 33, rank: 5, smooth: true, wBits: 8, int8Factors: true, opts: GPU_TILING },
  { name: 'int8 factors, unfused gemv 1 token, r 6 (dense side path from the dequantized factors)', tokens: 1, inF: 64, outF: 24, rank: 6, fused: false, int8Factors: true },
];

describe('quantized linear with int8 L_A / L_B against the reference', () => {
  const cache = testGpu().then((g) => new PipelineCache(g.device));
  it.each(INT8_FACTOR_CASES.map((c, i) => [`${c.name} (seed ${7000 + 19 * i})`, c, 7000 + 19 * i] as const))('%s', async (_n, c, seed) => {
    await check(await testGpu(), await cache, c, seed);
  });
});

describe('quantized linear on the default adapter', () => {
  const cache = testGpu().then((g) => new PipelineCache(g.device));
  it.each(CASES.map((c, i) => [`${c.name} (seed ${1000 + 17 * i})`, c, 1000 + 17 * i] as const))('%s', async (_n, c, seed) => {
    await check(await testGpu(), await cache, c, seed);
  });

  it('rejects inconsistent layers with the layer name', async () => {
    const gpu = await testGpu();
    const q = syntheticQuantizedLinear({ inF: 40, outF: 8, rank: 2 }, 1);
    const mk = (patch: object) => () => createQuantizedLinear(gpu, new PipelineCache(gpu.device), { ...q, ...patch }, { label: 'blk.0.q', maxTokens: 4 });
    expect(mk({ qweight: new Uint32Array(3) })).toThrow(/blk\.0\.q: qweight has 3 words/);
    expect(mk({ aBits: 5 })).toThrow(LinearConfigError);
    expect(mk({ lb: new Float32Array(3) })).toThrow(/lb has 3 values/);
    expect(mk({ smooth: new Float32Array(40) })).toThrow(/smooth\[0\] = 0/);
  });
});

// Each GEMV inner product (w4MatmulTiling picks one per adapter) on any adapter: odd K, several token
// counts, k-splits, split weights, and the accumulator extremes the SWAR bounds are argued from.
const GEMV_INNERS: W4GemvInner[] = ['dot4', 'swar', 'imad', 'f32'];
const gemvCases = (inner: W4GemvInner): Case[] => {
  const t = (extra: Partial<QuantizedLinearOptions['matmulTiling']> = {}) => ({ matmulTiling: { gemvInner: inner, gemvMaxTokens: 4, ...extra } });
  return [
    { name: `${inner} gemv 1 token, in 77, out 19, r 3, smooth, bias`, tokens: 1, inF: 77, outF: 19, rank: 3, smooth: true, bias: true, opts: t() },
    { name: `${inner} gemv 3 tokens, in 1000, out 37, A6, zero row`, tokens: 3, inF: 1000, outF: 37, rank: 0, aBits: 6, special: { 1: 'zero' }, opts: t() },
    { name: `${inner} gemv 4 tokens, in 300, out 70, r 14, 2 k-splits × 3 rows/thread`, tokens: 4, inF: 300, outF: 70, rank: 14, opts: t({ gemvKsplit: 2, gemvRowsPerThread: 3 }) },
    { name: `${inner} gemv 2 tokens, split weight (4 slices), in 45`, tokens: 2, inF: 45, outF: 50, rank: 5, bias: true, opts: { ...t(), maxSliceBytes: 13 * 2 * 16 } },
    { name: `${inner} gemv 2 tokens, extremes (|x_q| = 127, |q| = 7), in 4100`, tokens: 2, inF: 4100, outF: 16, rank: 0, extreme: true, opts: t() },
  ];
};

describe('GEMV inner products against the reference', () => {
  const cache = testGpu().then((g) => new PipelineCache(g.device));
  const cases = GEMV_INNERS.flatMap(gemvCases);
  it.each(cases.map((c, i) => [`${c.name} (seed ${3000 + 13 * i})`, c, 3000 + 13 * i] as const))('%s', async (_n, c, seed) => {
    await check(await testGpu(), await cache, c, seed);
  });
});

// Per-channel int8 weights (W8: a quantized classifier) through the same kernels A and B.
const W8_CASES: Case[] = [
  { name: 'W8 gemv 1 token, in 77, out 19, bias', tokens: 1, inF: 77, outF: 19, rank: 0, bias: true, wBits: 8 },
  { name: 'W8 gemv 2 tokens, in 1000, out 37, dot4 inner', tokens: 2, inF: 1000, outF: 37, rank: 0, wBits: 8, opts: { matmulTiling: { gemvInner: 'dot4' } } },
  { name: 'W8 gemv 2 tokens, in 300, out 70, imad inner, 2 k-splits × 3 rows/thread', tokens: 2, inF: 300, outF: 70, rank: 0, wBits: 8, opts: { matmulTiling: { gemvInner: 'imad', gemvKsplit: 2, gemvRowsPerThread: 3 } } },
  { name: 'W8 gemv 2 tokens, in 1000, out 37, f32 inner', tokens: 2, inF: 1000, outF: 37, rank: 0, wBits: 8, opts: { matmulTiling: { gemvInner: 'f32' } } },
  { name: 'W8 gemv 2 tokens, in 300, out 70, f32 inner, 2 k-splits × 3 rows/thread', tokens: 2, inF: 300, outF: 70, rank: 0, wBits: 8, opts: { matmulTiling: { gemvInner: 'f32', gemvKsplit: 2, gemvRowsPerThread: 3 } } },
  { name: 'W8 gemv 1 token, in 77, out 19, r 3, smooth, bias, f32 inner, 8 rows/thread', tokens: 1, inF: 77, outF: 19, rank: 3, smooth: true, bias: true, wBits: 8, opts: { matmulTiling: { gemvInner: 'f32', gemvRowsPerThread: 8 } } },
  { name: 'W8 gemv 3 tokens, A6, r 5, smooth, bias, GPU tiling', tokens: 3, inF: 200, outF: 33, rank: 5, aBits: 6, smooth: true, bias: true, wBits: 8, opts: GPU_TILING },
  { name: 'W8 gemm 37 tokens, in 45, out 70, bias', tokens: 37, inF: 45, outF: 70, rank: 0, bias: true, wBits: 8 },
  { name: 'W8 gemm 70 tokens, r 20, smooth, GPU tiling (4×4 per thread)', tokens: 70, inF: 130, outF: 75, rank: 20, smooth: true, wBits: 8, opts: GPU_TILING },
  { name: 'W8 split weight (4 slices), gemv', tokens: 1, inF: 40, outF: 50, rank: 0, bias: true, wBits: 8, opts: { maxSliceBytes: 13 * 2 * 32 } },
  { name: 'W8 split weight (4 slices), gemm', tokens: 9, inF: 40, outF: 50, rank: 0, wBits: 8, opts: { maxSliceBytes: 13 * 2 * 32 } },
  { name: 'W8 gemv 2 tokens, extremes (|x_q| = |q| = 127), in 4100', tokens: 2, inF: 4100, outF: 16, rank: 0, wBits: 8, extreme: true },
  ...(['dot4', 'imad', 'f32'] as const).map((inner): Case => ({
    name: `W8 gemv 2 tokens, extremes (|x_q| = |q| = 127), in 4100, ${inner} inner`, tokens: 2, inF: 4100, outF: 16, rank: 0, wBits: 8, extreme: true, opts: { matmulTiling: { gemvInner: inner } },
  })),
  { name: 'W8 gemm 9 tokens, extremes, in 4100', tokens: 9, inF: 4100, outF: 16, rank: 0, wBits: 8, extreme: true },
  { name: 'W8 unfused gemv 1 token, r 4', tokens: 1, inF: 64, outF: 24, rank: 4, wBits: 8, fused: false },
];

describe('W8 (per-channel int8 weights) against the reference', () => {
  const cache = testGpu().then((g) => new PipelineCache(g.device));
  it.each(W8_CASES.map((c, i) => [`${c.name} (seed ${5000 + 11 * i})`, c, 5000 + 11 * i] as const))('%s', async (_n, c, seed) => {
    await check(await testGpu(), await cache, c, seed);
  });

  it('checks the W8 word count and rejects other widths', async () => {
    const gpu = await testGpu();
    const q = syntheticQuantizedLinear({ inF: 40, outF: 8, rank: 0, wBits: 8 }, 1);
    const mk = (patch: object) => () => createQuantizedLinear(gpu, new PipelineCache(gpu.device), { ...q, ...patch }, { label: 'lm_head', maxTokens: 4 });
    expect(mk({ qweight: new Uint32Array(32) })).toThrow(/lm_head: qweight has 32 words, expected 128 .*w8-layout/);
    expect(mk({ wBits: 5 })).toThrow(/wBits = 5; expected 4 or 8/);
    // int8 weights run alone: groups stack 4-bit rows only
    expect(() => createQuantizedLinear(gpu, new PipelineCache(gpu.device), [q, q], { label: 'pair', maxTokens: 4 })).toThrow(/groups stack 4-bit weights only/);
  });
});

// ---------------------------------------------------------------- groups (q|k|v, gate|up)
interface GroupCase {
  name: string;
  tokens: number;
  inF: number;
  /** Members: output rows, rank, bias. */
  members: Array<{ outF: number; rank: number; bias?: boolean }>;
  smooth?: boolean;
  aBits?: number;
  opts?: Partial<QuantizedLinearOptions>;
  int8Factors?: boolean;
}

/** A group against its members' references: the same x̃ quantized once, each member's rows with its own side path. */
async function checkGroup(gpu: GpuContext, cache: PipelineCache, c: GroupCase, seed: number): Promise<void> {
  const qs = c.members.map((m, i) => syntheticQuantizedLinear({ inF: c.inF, outF: m.outF, rank: m.rank, bias: m.bias, smooth: c.smooth, aBits: c.aBits }, seed + 31 * i));
  for (const q of qs) q.smooth = qs[0]!.smooth; // the grouping rule: one smoothing vector
  if (c.int8Factors) qs.forEach((q, i) => (qs[i] = withInt8LowRank(q)));
  const x = seededFloats(c.tokens * c.inF, seed + 100, 2);
  const op = createQuantizedLinear(gpu, cache, qs, { label: c.name, maxTokens: c.tokens, debugAcc: true, ...c.opts });
  try {
    if (c.int8Factors) expect(op.lowRank).toBe('int8');
    const N = op.outFeatures;
    expect(N).toBe(c.members.reduce((n, m) => n + m.outF, 0));
    const got = await runQuantized(gpu, op, x, c.tokens);
    const refs = qs.map((q) => quantizedLinearRef(q, x, c.tokens, op.lowRank));
    expect(firstMismatch(got.xq, packActivationsRef(refs[0]!.xq, c.tokens, c.inF)), 'packed activations').toBe(-1);
    expect(firstMismatch(f32Bits(got.sx), f32Bits(refs[0]!.sx)), 's_x bits').toBe(-1);
    const acc = new Int32Array(c.tokens * N);
    const y = new Float64Array(c.tokens * N);
    const scale = new Float64Array(c.tokens * N);
    let row = 0;
    qs.forEach((q, i) => {
      const r = refs[i]!;
      for (let t = 0; t < c.tokens; t++) {
        for (let o = 0; o < q.outFeatures; o++) {
          acc[t * N + row + o] = r.acc[t * q.outFeatures + o]!;
          y[t * N + row + o] = r.y[t * q.outFeatures + o]!;
          scale[t * N + row + o] = r.scale[t * q.outFeatures + o]!;
        }
      }
      row += q.outFeatures;
    });
    expect(firstMismatch(got.acc!, acc), 'int32 accumulators').toBe(-1);
    let worst = 0;
    for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(got.y[i]! - y[i]!) / (scale[i]! + 1e-30));
    expect(worst, 'y').toBeLessThan(TOL);
  } finally {
    op.destroy();
  }
}

const GROUP_CASES: GroupCase[] = [
  // stories260K's q|k|v: 64 + 32 + 32 rows, workgroups aligned with the segments on CPU tilings.
  { name: 'q|k|v gemv 1 token, ranks 5/0/9, smooth, bias on k', tokens: 1, inF: 64, members: [{ outF: 64, rank: 5 }, { outF: 32, rank: 0, bias: true }, { outF: 32, rank: 9 }], smooth: true },
  // Segments of odd sizes: workgroups and GEMM tiles straddle them.
  { name: 'gate|up gemv 2 tokens, 172 + 172 rows, ranks 7/3, A6', tokens: 2, inF: 64, members: [{ outF: 172, rank: 7 }, { outF: 172, rank: 3 }], aBits: 6 },
  { name: 'straddling gemv, GPU tiling, ranks 1/20/4', tokens: 3, inF: 300, members: [{ outF: 13, rank: 1 }, { outF: 45, rank: 20, bias: true }, { outF: 7, rank: 4 }], smooth: true, opts: GPU_TILING },
  { name: 'straddling gemm 70 tokens, ranks 17/0/5', tokens: 70, inF: 100, members: [{ outF: 30, rank: 17 }, { outF: 11, rank: 0 }, { outF: 40, rank: 5, bias: true }], smooth: true },
  { name: 'gemm 9 tokens, GPU tiling, split weight (slices cross segments)', tokens: 9, inF: 40, members: [{ outF: 20, rank: 3 }, { outF: 30, rank: 6 }], opts: { ...GPU_TILING, maxSliceBytes: 13 * 2 * 16 } },
  { name: 'gemv 1 token, rank 0 group', tokens: 1, inF: 64, members: [{ outF: 64, rank: 0 }, { outF: 32, rank: 0 }, { outF: 32, rank: 0 }] },
  // int8 factors: L_B's byte lanes with segments starting inside a word, scales stacked along the rank.
  { name: 'int8 factors, q|k|v gemv 1 token, ranks 5/0/9, odd rows', tokens: 1, inF: 64, members: [{ outF: 63, rank: 5 }, { outF: 33, rank: 0, bias: true }, { outF: 31, rank: 9 }], smooth: true, int8Factors: true },
  { name: 'int8 factors, straddling gemv, GPU tiling, ranks 1/20/4', tokens: 3, inF: 300, members: [{ outF: 13, rank: 1 }, { outF: 45, rank: 20, bias: true }, { outF: 7, rank: 4 }], smooth: true, opts: GPU_TILING, int8Factors: true },
  { name: 'int8 factors, straddling gemm 70 tokens, ranks 17/0/5', tokens: 70, inF: 100, members: [{ outF: 30, rank: 17 }, { outF: 11, rank: 0 }, { outF: 41, rank: 5, bias: true }], smooth: true, int8Factors: true },
];

describe('quantized linear groups (one kernel A, one kernel B over stacked rows)', () => {
  const cache = testGpu().then((g) => new PipelineCache(g.device));
  it.each(GROUP_CASES.map((c, i) => [`${c.name} (seed ${3000 + 7 * i})`, c, 3000 + 7 * i] as const))('%s', async (_n, c, seed) => {
    await checkGroup(await testGpu(), await cache, c, seed);
  });

  it('refuses linears that do not share a quantized input', async () => {
    const gpu = await testGpu();
    const a = syntheticQuantizedLinear({ inF: 40, outF: 8, rank: 2, smooth: true }, 1);
    const b = syntheticQuantizedLinear({ inF: 40, outF: 8, rank: 2, smooth: true }, 2);
    const mk = (qs: QuantizedLinear[], fused?: boolean) => () => createQuantizedLinear(gpu, new PipelineCache(gpu.device), qs, { label: 'blk.0.qkv', maxTokens: 4, fused });
    expect(mk([a, b])).toThrow(/blk\.0\.qkv: cannot run as one group: different smoothing vectors/);
    expect(mk([a, { ...b, smooth: undefined }])).toThrow(/smoothing on some linears only/);
    expect(mk([a, { ...b, smooth: a.smooth, aBits: 6 }])).toThrow(/activation bits 6 and 8/);
    expect(mk([a, { ...b, smooth: a.smooth }], false)).toThrow(/fused path only/);
  });
});

// ---------------------------------------------------------------- fused block edges
// The RMSNorm before a linear in kernel A (x is the residual stream), the SwiGLU before down_proj in
// kernel A (x is gate|up), and the residual add in kernel B's epilogue (y += …). rstd is a sum of squares in another order than the CPU's f64 (and
// inverseSqrt may be off by 2 ULP): it is checked to RSTD_TOL, and the integer parts bit for bit
// against the reference quantizing with the kernel's rstd.
const RSTD_TOL = 1e-5;

interface FusedCase { name: string; tokens: number; inF: number; members: Array<{ outF: number; rank: number; bias?: boolean }>; smooth?: boolean; norm: boolean; residual: boolean; swiglu?: boolean; opts?: Partial<QuantizedLinearOptions> }

async function checkFused(gpu: GpuContext, cache: PipelineCache, c: FusedCase, seed: number): Promise<void> {
  const qs = c.members.map((m, i) => syntheticQuantizedLinear({ inF: c.inF, outF: m.outF, rank: m.rank, bias: m.bias, smooth: c.smooth }, seed + 31 * i));
  for (const q of qs) q.smooth = qs[0]!.smooth;
  const x = seededFloats(c.tokens * c.inF * (c.swiglu ? 2 : 1), seed + 100, 3);
  const weight = seededFloats(c.inF, seed + 200, 1).map((v) => 0.5 + v);
  const eps = 1e-5;
  const op = createQuantizedLinear(gpu, cache, qs.length === 1 ? qs[0]! : qs, { label: c.name, maxTokens: c.tokens, debugAcc: true, ...c.opts });
  try {
    const N = op.outFeatures;
    const y0 = c.residual ? seededFloats(c.tokens * N, seed + 300, 4) : undefined;
    const got = await runQuantized(gpu, op, x, c.tokens, { norm: c.norm ? { weight, eps } : undefined, residual: c.residual, swiglu: c.swiglu, y0 });
    // The linears' input as the reference sees it: x normed with the kernel's rstd, the swiglu kernel's
    // act (silu_mul.wgsl on this adapter: exp is not correctly rounded), or x itself.
    let xin = x;
    if (c.swiglu) {
      const res = await runPlan(gpu, planSwiglu({ rows: c.tokens, hidden: c.inF, gateUpFused: true }), { gate_up: x, out: c.tokens * c.inF * 4 }, ['out']);
      xin = new Float32Array(res.out!);
    }
    if (c.norm) {
      const exact = actQuantRef(x, c.tokens, c.inF, { aBits: 8, norm: { weight, eps } }).rstd;
      for (let t = 0; t < c.tokens; t++) expect(Math.abs(got.rstd![t]! - exact[t]!) / exact[t]!, `rstd[${t}]`).toBeLessThan(RSTD_TOL);
      xin = new Float32Array(x.length);
      for (let t = 0; t < c.tokens; t++) for (let k = 0; k < c.inF; k++) xin[t * c.inF + k] = Math.fround(Math.fround(x[t * c.inF + k]! * got.rstd![t]!) * weight[k]!);
      // and kernel A's own reference path with the kernel's rstd gives the same integers
      const a = actQuantRef(x, c.tokens, c.inF, { aBits: 8, invSmooth: qs[0]!.smooth ? inverseSmoothing(qs[0]!.smooth) : undefined, norm: { weight, eps, rstd: got.rstd } });
      expect(firstMismatch(got.xq, packActivationsRef(a.xq, c.tokens, c.inF)), 'packed activations (norm ref)').toBe(-1);
    }
    const refs = qs.map((q) => quantizedLinearRef(q, xin, c.tokens, op.lowRank));
    expect(firstMismatch(got.xq, packActivationsRef(refs[0]!.xq, c.tokens, c.inF)), 'packed activations').toBe(-1);
    expect(firstMismatch(f32Bits(got.sx), f32Bits(refs[0]!.sx)), 's_x bits').toBe(-1);
    let row = 0, worst = 0;
    qs.forEach((q, i) => {
      const r = refs[i]!;
      for (let t = 0; t < c.tokens; t++) {
        for (let o = 0; o < q.outFeatures; o++) {
          const j = t * N + row + o;
          expect(got.acc![j], `acc[${t}, ${row + o}]`).toBe(r.acc[t * q.outFeatures + o]);
          const base = y0 ? y0[j]! : 0;
          worst = Math.max(worst, Math.abs(got.y[j]! - base - r.y[t * q.outFeatures + o]!) / (r.scale[t * q.outFeatures + o]! + Math.abs(base) + 1e-30));
        }
      }
      row += q.outFeatures;
    });
    expect(worst, 'y').toBeLessThan(TOL);
  } finally {
    op.destroy();
  }
}

const FUSED_CASES: FusedCase[] = [
  { name: 'norm in kernel A, q|k|v group gemv, smooth', tokens: 1, inF: 64, members: [{ outF: 64, rank: 3 }, { outF: 32, rank: 0 }, { outF: 32, rank: 5 }], smooth: true, norm: true, residual: false },
  { name: 'norm in kernel A, gemm 37 tokens, in 300, GPU tiling', tokens: 37, inF: 300, members: [{ outF: 50, rank: 7, bias: true }], norm: true, residual: false, opts: GPU_TILING },
  { name: 'residual epilogue gemv 2 tokens, bias', tokens: 2, inF: 172, members: [{ outF: 64, rank: 6, bias: true }], smooth: true, norm: false, residual: true },
  { name: 'residual epilogue gemm 70 tokens, GPU tiling', tokens: 70, inF: 64, members: [{ outF: 45, rank: 4 }], norm: false, residual: true, opts: GPU_TILING },
  { name: 'swiglu input and residual (down_proj), gemv 1 token, smooth', tokens: 1, inF: 172, members: [{ outF: 64, rank: 5 }], smooth: true, norm: false, residual: true, swiglu: true },
  { name: 'swiglu input, gemm 20 tokens, GPU tiling', tokens: 20, inF: 100, members: [{ outF: 30, rank: 3, bias: true }], norm: false, residual: false, swiglu: true, opts: GPU_TILING },
  { name: 'norm and residual, gemv 1 token, GPU tiling', tokens: 1, inF: 1000, members: [{ outF: 40, rank: 9 }], smooth: true, norm: true, residual: true, opts: GPU_TILING },
];

describe('quantized linear with the block edges fused (RMSNorm in kernel A, residual add in kernel B)', () => {
  const cache = testGpu().then((g) => new PipelineCache(g.device));
  it.each(FUSED_CASES.map((c, i) => [`${c.name} (seed ${5000 + 13 * i})`, c, 5000 + 13 * i] as const))('%s', async (_n, c, seed) => {
    await checkFused(await testGpu(), await cache, c, seed);
  });
});

describe('quantized linear without subgroups and shader-f16', () => {
  let bare: Promise<GpuContext> | undefined;
  const open = () => (bare ??= openNodeDevice({ disable: ['shader-f16', 'subgroups'] }));
  afterAll(async () => (bare ? (await bare).device.destroy() : undefined));
  it('uses f32 L_A/L_B and the atomic-only absmax, fused and unfused', async () => {
    const gpu = await open();
    expect(gpu.features.subgroups || gpu.features.shaderF16).toBe(false);
    const cache = new PipelineCache(gpu.device);
    await check(gpu, cache, { name: 'bare gemv', tokens: 1, inF: 172, outF: 64, rank: 14, smooth: true, bias: true, special: {} }, 5);
    await check(gpu, cache, { name: 'bare gemm', tokens: 33, inF: 100, outF: 30, rank: 9, aBits: 4, special: { 3: 'zero' } }, 6);
    await check(gpu, cache, { name: 'bare unfused', tokens: 7, inF: 64, outF: 20, rank: 3, fused: false }, 7);
  });
});
