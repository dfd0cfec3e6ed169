// The quantization methods: RTN, SmoothQuant, SmoothQuant+, LLM.int4(), LoRC, L2QER, ASER w/o AS and
// ASER, all from the same calibration statistics, quantizers and rank budget, each producing the one
// in-memory form the kernels run (core/quantized.ts) plus diagnostics. docs/quantization.md explains
// every choice made here. Every method is the same pipeline with different settings:
//
//   1. smoothing m (per input channel; x̃ = x / m, W̃ = W·diag(m); applied by the kernel) and the set O
//      of "exact" input channels whose W̃ columns are not quantized but carried by the side path as
//      one-hot L_A columns with the W̃ column as the matching L_B row — decided once for all the
//      linears reading one input (q|k|v, gate|up: planSmoothing over their stacked weights,
//      quantizeLinearGroup), or per linear;
//   2. per-channel RTN of W̃ over the other columns; E = W̃ − Q̂ with E[:, O] = 0 (carried exactly);
//   3. for LoRC / L2QER / ASER: a rank-r reconstruction of E (quant/lowrank.ts) under the method's weighting;
//   4. L_A = [reconstruction | one-hots], L_B = [reconstruction | W̃[:, O]ᵀ], stored f16 (balanced first).
import { packW4 } from '../core/w4-layout.js';
import { f16BitsToF32, f32ToF16Bits } from '../core/dtype.js';
import { ACTIVATION_BITS_TEXT, isActivationBits, type QuantizedLinear } from '../core/quantized.js';
import type { LinearInputStats } from './stats.js';
import { matmul, matrix, type Mat } from './linalg.js';
import {
  lowRankReconstruction, outputErrorSq, weightedResidualSq, type ErrorWeighting, type RankChoice,
} from './lowrank.js';
import {
  dequantizeWeights, fakeQuantActivations, quantizeWeightsPerChannel, type WeightQuantization,
} from './quantizers.js';
import { effectiveRank, sidePathFlopsRatio } from './rank.js';
import { QuantizeError } from './errors.js';
import { aserSmoothing, columnAbsStats, llmInt4Smoothing, median, smoothQuantScales } from './smoothing.js';

export const QUANT_METHODS = ['rtn', 'smoothquant', 'smoothquant-plus', 'llm-int4', 'lorc', 'l2qer', 'aser-noas', 'aser'] as const;
export type QuantMethod = (typeof QUANT_METHODS)[number];

/**
 * Methods whose smoothing depends on the weights, so that deciding it per shared input or per linear
 * gives different artifacts. (LLM.int4()'s smoothing and exact channels come from max|X_j| alone: the
 * same either way; RTN, LoRC, L2QER and ASER w/o AS do not smooth.)
 */
export const SCOPE_SENSITIVE_METHODS: readonly QuantMethod[] = ['smoothquant', 'smoothquant-plus', 'aser'];

export const OUTLIER_COLUMN_MODES = ['exact', 'reconstructed'] as const;
export type OutlierColumns = (typeof OUTLIER_COLUMN_MODES)[number];

/** Methods with a low-rank error reconstruction (they need `rank` or `alpha`). */
export const LOW_RANK_METHODS: readonly QuantMethod[] = ['lorc', 'l2qer', 'aser-noas', 'aser'];

export interface QuantizeOptions {
  /** Weight bits; the packed layout (core/w4-layout.ts) is 4-bit only. Default 4. */
  wBits?: number;
  /** Activation bits (8, 6 or 4). Default 8. */
  aBits?: number;
  /** Fixed reconstruction rank for every layer (low-rank methods; exactly one of rank / alpha). */
  rank?: number;
  /** Rank threshold α of paper Eq. 9 (low-rank methods). */
  alpha?: number;
  /** Cap on the rank the α rule may choose. */
  maxRank?: number;
  /**
   * With a fixed `rank`: it is the side path's total width, so exactly carried outlier columns count
   * against it (ASER reconstructs rank − f). Default false: outlier columns come on top of the rank.
   */
  rankIncludesOutliers?: boolean;
  /** SmoothQuant migration strength a (default 0.5). */
  smoothAlpha?: number;
  /** SmoothQuant+ search grid for a (default 0, 0.05, …, 1). */
  smoothGrid?: readonly number[];
  /** LLM.int4(): input channels with max|X_j| ≥ this stay in floating point (default 6.0). */
  outlierThreshold?: number;
  /** ASER: number f of outlier channels; 'auto' = min(32, max(1, round(in / 128))) — the paper's 32 at width 4096. */
  outliers?: number | 'auto';
  /**
   * How the unquantized outlier columns W̃[:, O] reach the output (ASER; LLM.int4()). 'exact' (default):
   * zeroed in E and carried by f one-hot side-path columns on top of the reconstruction. 'reconstructed':
   * kept in E (E[:, O] = W̃[:, O]) and carried, approximately, by the rank-r reconstruction itself — the
   * variant the method notes describe; the side path is then r wide.
   */
  outlierColumns?: OutlierColumns;
  /** Initial Cholesky damping λ (× mean diag H); raised along a ladder on failure. Default 0. */
  damping?: number;
  /**
   * Compute diag.outputNorm = ‖X Wᵀ‖ via H (one more in²·out/2 product). Default: only where that is
   * cheap (in²·out ≤ 1e10, e.g. every layer of a ≤ 1B model); sampled.norm is always there.
   */
  outputNorm?: boolean;
}

/** One linear layer to quantize. */
export interface LinearToQuantize {
  /** For messages, e.g. "model.layers.3.mlp.down_proj". */
  name?: string;
  /** [out, in] row-major, as in PyTorch. */
  weight: Float32Array;
  outFeatures: number;
  inFeatures: number;
  bias?: Float32Array;
  /** Calibration statistics of this layer's input. */
  stats: LinearInputStats;
}

export interface QuantDiagnostics {
  method: QuantMethod;
  /** Error-reconstruction rank r (0 without reconstruction). */
  rank: number;
  /** Columns of L_A actually stored: r + the exact outlier channels. */
  sideRank: number;
  /** The spectrum the rank was chosen from: singular values of E·S, descending (empty without reconstruction). */
  sigma: Float64Array;
  /** Effective rank of `sigma` (paper Eq. 3–4). */
  erank: number;
  /** Cholesky damping λ used (× mean diag H); 0 when none was needed or no factorization was done. */
  dampingUsed: number;
  /** ‖X Eᵀ‖_F over the calibration tokens (via H) before error reconstruction; exact channels count as carried. */
  outputErrorBefore: number;
  /** ‖X (W − W_eff)ᵀ‖_F via H with the side path as stored (f16 factors included). Weight error only. */
  outputErrorAfter: number;
  /** ‖X Wᵀ‖_F via H, to make the two above relative (see QuantizeOptions.outputNorm). */
  outputNorm?: number;
  /** Input channels carried exactly in floating point (ASER's O_f, LLM.int4()'s threshold channels). */
  outliers: number[];
  /** max / median of x̄_j = mean_t |X[t, j]| (how much activation smoothing has to work with). */
  activationOutlierRatio: number;
  /** SmoothQuant / SmoothQuant+: the migration strength used. */
  smoothAlpha?: number;
  /** SmoothQuant+: sampled error per grid point. */
  search?: Array<{ a: number; error: number }>;
  /**
   * ‖Y − Ŷ‖_F on the reservoir sample of calibration tokens, Ŷ from the full fake-quantized layer
   * (per-token activation quantization included), and ‖Y‖_F; absent when the stats kept no sample.
   */
  sampled?: { tokens: number; error: number; norm: number };
  /** Side-path multiply-adds per token relative to the W4A8 product: sideRank·(in+out)/(in·out). */
  sideFlopsRatio: number;
  seconds: number;
  /** Seconds per phase: stats, smoothing, rtn, lowRank, factors, diagnostics. */
  timings: Record<string, number>;
}

export interface QuantizeResult {
  linear: QuantizedLinear;
  diag: QuantDiagnostics;
}

/**
 * What step 1 of the pipeline decides: smoothing and exactly carried channels. Shared by every linear
 * of a shared-input group (planSmoothing), so the same `smooth` array may end up in several linears.
 */
export interface SmoothingPlan {
  smooth?: Float32Array;
  exact: number[];
  smoothAlpha?: number;
  /** SmoothQuant+: the (group's) sampled error per grid point. */
  search?: Array<{ a: number; error: number }>;
  /** Seconds spent deciding it. */
  seconds: number;
}

const DEFAULT_SMOOTH_GRID = Array.from({ length: 21 }, (_, i) => i / 20);

function scaledWeight(w: Float32Array, out: number, inF: number, smooth?: Float32Array): Mat {
  const m = matrix(out, inF);
  for (let o = 0; o < out; o++) {
    for (let i = 0, row = o * inF; i < inF; i++) m.data[row + i] = smooth ? w[row + i]! * smooth[i]! : w[row + i]!;
  }
  return m;
}

/** H̃ = M⁻¹ H M⁻¹ (the second moment of x̃ = x / m), in place. */
function smoothHessianInPlace(h: Mat, smooth?: Float32Array): Mat {
  if (!smooth) return h;
  const n = h.rows;
  const inv = Float64Array.from(smooth, (m) => 1 / m);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    const ri = inv[i]!;
    for (let j = 0; j < n; j++) h.data[row + j] *= ri * inv[j]!;
  }
  return h;
}

/**
 * The quantized layer's output on x [tokens, in], in double precision: x̃ = fround(x / m), per-token
 * fake quantization of x̃ for the integer path, the side path on x̃ unquantized. Bias excluded.
 */
export function simulateQuantizedOutput(
  x: Float32Array,
  tokens: number,
  parts: { inFeatures: number; outFeatures: number; aBits: number; qhat: Mat; smooth?: Float32Array; la?: Float32Array; lb?: Float32Array; sideRank: number },
): Mat {
  const inF = parts.inFeatures;
  const xs = new Float32Array(tokens * inF);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0, row = t * inF; i < inF; i++) xs[row + i] = parts.smooth ? x[row + i]! / parts.smooth[i]! : x[row + i]!;
  }
  const xq = matrix(tokens, inF, fakeQuantActivations(xs, tokens, inF, parts.aBits));
  const y = matmul(xq, parts.qhat, { transB: true });
  if (parts.sideRank > 0 && parts.la && parts.lb) {
    const la = matrix(inF, parts.sideRank, Float64Array.from(parts.la));
    const lb = matrix(parts.sideRank, parts.outFeatures, Float64Array.from(parts.lb));
    const xla = matmul(matrix(tokens, inF, Float64Array.from(xs)), la);
    matmul(xla, lb, { out: y, beta: 1 });
  }
  return y;
}

function frobeniusDistanceSq(a: Mat, b: Mat): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i]! - b.data[i]!) ** 2;
  return s;
}

function frobeniusDistance(a: Mat, b: Mat): number {
  return Math.sqrt(frobeniusDistanceSq(a, b));
}

function frobeniusNorm(a: Mat): number {
  let s = 0;
  for (const v of a.data) s += v * v;
  return Math.sqrt(s);
}

/** Y = X Wᵀ on the sampled tokens. */
function referenceOutput(sample: { x: Float32Array; tokens: number }, w: Float32Array, out: number, inF: number): Mat {
  return matmul(matrix(sample.tokens, inF, Float64Array.from(sample.x)), matrix(out, inF, Float64Array.from(w)), { transB: true });
}

/**
 * SmoothQuant+: a from the grid minimizing the sampled W4A{b} output error of every member together
 * (‖[Y_q Y_k Y_v] − [Ŷ_q Ŷ_k Ŷ_v]‖_F for a shared input; weight-only error via H without a sample).
 */
function searchSmoothQuantPlus(
  members: readonly LinearToQuantize[], stats: LinearInputStats, xMax: Float64Array, wMax: Float64Array, wBits: number, aBits: number, grid: readonly number[],
): Omit<SmoothingPlan, 'seconds'> {
  const inF = members[0]!.inFeatures;
  const sample = stats.sample();
  const yRefs = sample.tokens > 0 ? members.map((l) => referenceOutput(sample, l.weight, l.outFeatures, inF)) : undefined;
  const h = yRefs ? undefined : stats.hessian();
  let best: Omit<SmoothingPlan, 'seconds'> | undefined;
  let bestError = Infinity;
  const search: Array<{ a: number; error: number }> = [];
  for (const a of grid) {
    const smooth = smoothQuantScales(xMax, wMax, a);
    const hs = h ? smoothHessianInPlace(matrix(inF, inF, Float64Array.from(h.data)), smooth) : undefined;
    let errorSq = 0;
    members.forEach((layer, m) => {
      const out = layer.outFeatures;
      const ws = scaledWeight(layer.weight, out, inF, smooth);
      const quant = quantizeWeightsPerChannel(ws.data, out, inF, wBits);
      const qhat = matrix(out, inF, dequantizeWeights(quant, out, inF));
      if (yRefs) {
        const y = simulateQuantizedOutput(sample.x, sample.tokens, { inFeatures: inF, outFeatures: out, aBits, qhat, smooth, sideRank: 0 });
        errorSq += frobeniusDistanceSq(y, yRefs[m]!);
      } else {
        for (let i = 0; i < ws.data.length; i++) ws.data[i] -= qhat.data[i]!;
        errorSq += Math.max(0, outputErrorSq(ws, hs!));
      }
    });
    const error = Math.sqrt(errorSq);
    search.push({ a, error });
    if (error < bestError) {
      bestError = error;
      best = { smooth, exact: [], smoothAlpha: a };
    }
  }
  if (!best) throw new QuantizeError('smoothquant-plus: empty search grid');
  return { ...best, search };
}

/**
 * Exactly carried outlier columns a low-rank method gives a linear of input width inF (ASER's f; the
 * others none), known before quantizing. (LLM.int4() is not low-rank: its count depends on the data.)
 */
export function lowRankExactColumns(method: QuantMethod, inF: number, outliers?: number | 'auto', outlierColumns: OutlierColumns = 'exact'): number {
  return method === 'aser' && outlierColumns === 'exact' ? resolveOutlierCount(outliers, inF) : 0;
}

function resolveOutlierCount(option: number | 'auto' | undefined, inF: number): number {
  if (option === undefined || option === 'auto') return Math.min(32, Math.max(1, Math.round(inF / 128)));
  if (!Number.isInteger(option) || option < 0 || option > inF) throw new QuantizeError(`outliers must be an integer in 0..${inF} or 'auto', got ${option}`);
  return option;
}

function rankChoice(method: QuantMethod, opts: QuantizeOptions): RankChoice {
  const hasRank = opts.rank !== undefined;
  const hasAlpha = opts.alpha !== undefined;
  if (hasRank === hasAlpha) throw new QuantizeError(`${method} needs exactly one of rank or alpha`);
  if (hasRank) return { rank: opts.rank! };
  return opts.maxRank !== undefined ? { alpha: opts.alpha!, maxRank: opts.maxRank } : { alpha: opts.alpha! };
}

/**
 * Scales column j of L_A and row j of L_B so both have the same largest magnitude (exact in real
 * arithmetic; keeps both comfortably inside the f16 range), then rounds both to f16 values.
 * laT is L_Aᵀ [k, in]; returns L_A [in, k] and L_B [k, out] row-major as Float32Array.
 */
function balancedF16Factors(laT: Mat, lb: Mat, where: string): { la: Float32Array; lb: Float32Array } {
  const k = laT.rows;
  const inF = laT.cols;
  const out = lb.cols;
  const la32 = new Float32Array(inF * k);
  const lb32 = new Float32Array(k * out);
  const toF16 = (v: number) => {
    const r = f16BitsToF32(f32ToF16Bits(v));
    if (!Number.isFinite(r)) throw new QuantizeError(`${where}: side-path factor ${v} does not fit f16`);
    return r;
  };
  for (let j = 0; j < k; j++) {
    let a = 0;
    let b = 0;
    for (let i = 0; i < inF; i++) a = Math.max(a, Math.abs(laT.data[j * inF + i]!));
    for (let o = 0; o < out; o++) b = Math.max(b, Math.abs(lb.data[j * out + o]!));
    const c = a > 0 && b > 0 ? Math.sqrt(b / a) : 1;
    for (let i = 0; i < inF; i++) la32[i * k + j] = toF16(laT.data[j * inF + i]! * c);
    for (let o = 0; o < out; o++) lb32[j * out + o] = toF16(lb.data[j * out + o]! / c);
  }
  return { la: la32, lb: lb32 };
}

function checkLayer(method: QuantMethod, layer: LinearToQuantize, opts: QuantizeOptions): void {
  const where = `${layer.name ?? 'linear'} (${method})`;
  const { outFeatures: out, inFeatures: inF } = layer;
  if (!QUANT_METHODS.includes(method)) throw new QuantizeError(`unknown method ${String(method)}; one of ${QUANT_METHODS.join(', ')}`);
  if (!Number.isInteger(out) || !Number.isInteger(inF) || out < 1 || inF < 1) throw new QuantizeError(`${where}: bad shape [${out}, ${inF}]`);
  if (layer.weight.length !== out * inF) throw new QuantizeError(`${where}: weight has ${layer.weight.length} values, shape [${out}, ${inF}] needs ${out * inF}`);
  if (layer.bias && layer.bias.length !== out) throw new QuantizeError(`${where}: bias has ${layer.bias.length} values, needs ${out}`);
  if (layer.stats.features !== inF) throw new QuantizeError(`${where}: calibration stats are for ${layer.stats.features} input channels, the weight has ${inF}`);
  if (layer.stats.tokens === 0) throw new QuantizeError(`${where}: no calibration tokens were accumulated`);
  if ((opts.wBits ?? 4) !== 4) throw new QuantizeError(`${where}: only 4-bit weights are supported (the packed layout is int4), got ${opts.wBits}`);
  if (!isActivationBits(opts.aBits ?? 8)) throw new QuantizeError(`${where}: activation bits must be ${ACTIVATION_BITS_TEXT}, got ${opts.aBits}`);
  for (const v of layer.weight) if (!Number.isFinite(v)) throw new QuantizeError(`${where}: weight contains ${v}`);
}

/**
 * Step 1 for the linears that read one input (q|k|v or gate|up of a layer; or a single linear): one
 * smoothing vector m and one exact channel set O for all of them, from that input's statistics and
 * the column statistics of their weights stacked row-wise — as SmoothQuant does for q|k|v:
 *   - SmoothQuant: s_j = max|X_j|^a / max_{rows of the stack}|W_j|^(1−a);
 *   - SmoothQuant+: the a minimizing the members' summed sampled output error;
 *   - ASER: O = the f channels with the largest x̄_j · w̄_j, w̄_j the mean |W_j| over the stacked rows,
 *     and m from x̄ on O (activation statistics only). Each member then carries its own W̃[:, O]
 *     columns exactly in its own side path;
 *   - LLM.int4(): from max|X_j| alone, so it is the same either way.
 * The members must share one LinearInputStats (the input's) and have the same width. The returned
 * plan (and its `smooth` array) is the same object for every member.
 */
export function planSmoothing(method: QuantMethod, members: readonly LinearToQuantize[], opts: QuantizeOptions = {}): SmoothingPlan {
  const started = performance.now();
  if (members.length === 0) throw new QuantizeError('planSmoothing: no linears given');
  const first = members[0]!;
  const inF = first.inFeatures;
  for (const l of members) {
    if (l.stats !== first.stats || l.inFeatures !== inF) {
      throw new QuantizeError(`${l.name ?? 'linear'} and ${first.name ?? 'linear'} are smoothed together but do not read the same input (one calibration statistics object, one width)`);
    }
  }
  const stats = first.stats;
  let plan: Omit<SmoothingPlan, 'seconds'>;
  switch (method) {
    case 'smoothquant': {
      const a = opts.smoothAlpha ?? 0.5;
      const w = columnAbsStats(members.map((l) => ({ w: l.weight, out: l.outFeatures })), inF);
      plan = { smooth: smoothQuantScales(stats.maxAbs(), w.maxAbs, a), exact: [], smoothAlpha: a };
      break;
    }
    case 'smoothquant-plus': {
      const w = columnAbsStats(members.map((l) => ({ w: l.weight, out: l.outFeatures })), inF);
      plan = searchSmoothQuantPlus(members, stats, stats.maxAbs(), w.maxAbs, opts.wBits ?? 4, opts.aBits ?? 8, opts.smoothGrid ?? DEFAULT_SMOOTH_GRID);
      break;
    }
    case 'llm-int4': {
      const { smooth, outliers } = llmInt4Smoothing(stats.maxAbs(), opts.outlierThreshold ?? 6.0);
      plan = { smooth: outliers.length ? smooth : undefined, exact: outliers };
      break;
    }
    case 'aser': {
      const w = columnAbsStats(members.map((l) => ({ w: l.weight, out: l.outFeatures })), inF);
      const { smooth, outliers } = aserSmoothing(stats.meanAbs(), w.meanAbs, resolveOutlierCount(opts.outliers, inF));
      plan = { smooth: outliers.length ? smooth : undefined, exact: outliers };
      break;
    }
    default:
      plan = { exact: [] };
  }
  return { ...plan, seconds: (performance.now() - started) / 1000 };
}

/** Quantizes one linear layer with `method`, its smoothing decided from its own weight (per linear). */
export function quantizeLinear(method: QuantMethod, layer: LinearToQuantize, opts: QuantizeOptions = {}): QuantizeResult {
  checkLayer(method, layer, opts);
  return quantizeLinearWithPlan(method, layer, opts, planSmoothing(method, [layer], opts));
}

/**
 * Quantizes the linears that read one input (q|k|v, gate|up; in order) under one smoothing plan
 * (planSmoothing over their stacked weights): their `smooth` vectors are the same values bit for bit
 * (or all absent), and each keeps its own quantized weight and its own low-rank side path, the SVD of
 * its own error whitened under the shared M.
 */
export function quantizeLinearGroup(method: QuantMethod, layers: readonly LinearToQuantize[], opts: QuantizeOptions = {}): QuantizeResult[] {
  for (const layer of layers) checkLayer(method, layer, opts);
  const plan = planSmoothing(method, layers, opts);
  const share = { ...plan, seconds: plan.seconds / layers.length };
  return layers.map((layer) => quantizeLinearWithPlan(method, layer, opts, share));
}

/** Steps 2–4 for one linear under a given smoothing plan. */
function quantizeLinearWithPlan(method: QuantMethod, layer: LinearToQuantize, opts: QuantizeOptions, plan: SmoothingPlan): QuantizeResult {
  const started = performance.now() - plan.seconds * 1000;
  const timings: Record<string, number> = {};
  let mark = performance.now();
  const lap = (phase: string) => {
    const now = performance.now();
    timings[phase] = (timings[phase] ?? 0) + (now - mark) / 1000;
    mark = now;
  };
  const where = `${layer.name ?? 'linear'} (${method})`;
  const wBits = opts.wBits ?? 4;
  const aBits = opts.aBits ?? 8;
  const { outFeatures: out, inFeatures: inF } = layer;
  const h = layer.stats.hessian();
  const xMean = layer.stats.meanAbs();
  const lowRank = LOW_RANK_METHODS.includes(method);
  let choice = lowRank ? rankChoice(method, opts) : undefined;
  lap('stats');
  timings.smoothing = plan.seconds;

  const outlierColumns = opts.outlierColumns ?? 'exact';
  if (!(OUTLIER_COLUMN_MODES as readonly string[]).includes(outlierColumns)) throw new QuantizeError(`${where}: outlierColumns must be ${OUTLIER_COLUMN_MODES.join(' or ')}, got ${JSON.stringify(outlierColumns)}`);
  // 'reconstructed' without a reconstruction would drop the outlier columns altogether
  if (outlierColumns === 'reconstructed' && !lowRank && plan.exact.length > 0) throw new QuantizeError(`${where}: outlierColumns 'reconstructed' needs a low-rank method`);
  // one-hot columns only when the outlier columns are carried exactly
  const exactColumns = outlierColumns === 'exact' ? plan.exact : [];
  if (choice && 'rank' in choice && opts.rankIncludesOutliers) choice = { rank: Math.max(0, choice.rank - exactColumns.length) };

  // 2. RTN of W̃ outside the outlier channels; E = W̃ − Q̂ with the outlier columns zeroed ('exact') or
  // whole ('reconstructed': Q̂ is 0 there, so E[:, O] = W̃[:, O])
  const ws = scaledWeight(layer.weight, out, inF, plan.smooth);
  const e = matrix(out, inF);
  const quant: WeightQuantization = quantizeWeightsPerChannel(ws.data, out, inF, wBits, plan.exact, e.data);
  if (outlierColumns === 'reconstructed') for (const j of plan.exact) for (let o = 0; o < out; o++) e.data[o * inF + j] = ws.data[o * inF + j]!;
  // h is this call's own copy, and only the smoothed coordinates are needed from here on
  // (‖X Wᵀ‖ = ‖X̃ W̃ᵀ‖), so H̃ overwrites it.
  const hs = smoothHessianInPlace(h, plan.smooth);
  lap('rtn');

  // 3. low-rank reconstruction
  let laT = matrix(0, inF);
  let lbLow = matrix(0, out);
  let sigma: Float64Array = new Float64Array(0);
  let dampingUsed = 0;
  let errorSq: number;
  if (lowRank) {
    let weighting: ErrorWeighting;
    if (method === 'lorc') weighting = { kind: 'diagonal', scale: new Float64Array(inF).fill(1) };
    else if (method === 'l2qer') weighting = { kind: 'diagonal', scale: l2qerScale(xMean) };
    else weighting = { kind: 'hessian', h: hs, damping: opts.damping ?? 0 };
    const rec = lowRankReconstruction(e, weighting, choice!);
    laT = rec.laT;
    lbLow = rec.lb;
    sigma = rec.sigma;
    dampingUsed = rec.dampingUsed;
    errorSq = weighting.kind === 'hessian' ? rec.errorSq : outputErrorSq(e, hs);
  } else {
    errorSq = outputErrorSq(e, hs);
  }
  const rank = laT.rows;
  lap('lowRank');

  // 4. side path: reconstruction columns, then one-hot columns for the exact channels
  const f = exactColumns.length;
  const k = rank + f;
  const factors = balancedF16Factors(laT, lbLow, where);
  const la = new Float32Array(inF * k);
  const lb = new Float32Array(k * out);
  for (let i = 0; i < inF; i++) la.set(factors.la.subarray(i * rank, (i + 1) * rank), i * k);
  lb.set(factors.lb);
  exactColumns.forEach((j, c) => {
    la[j * k + rank + c] = 1;
    for (let o = 0; o < out; o++) lb[(rank + c) * out + o] = f16BitsToF32(f32ToF16Bits(ws.data[o * inF + j]!));
  });

  const linear: QuantizedLinear = {
    inFeatures: inF,
    outFeatures: out,
    wBits,
    aBits,
    qweight: packW4(quant.q, out, inF),
    wScale: quant.scale,
    rank: k,
  };
  // each linear its own copy of a shared m (the same bits), so no consumer can change another's
  if (plan.smooth) linear.smooth = Float32Array.from(plan.smooth);
  if (k > 0) {
    linear.la = la;
    linear.lb = lb;
  }
  if (layer.bias) linear.bias = Float32Array.from(layer.bias);
  if (f > 0) linear.outlierChannels = Uint32Array.from(exactColumns);
  lap('factors');

  // Diagnostics. The stored side path Ê_s = L_Bᵀ L_Aᵀ covers E plus the exact columns; relative to E the
  // exact part only contributes its f16 rounding, so residual = E − (stored low rank) − (f16(W̃_O) − W̃_O).
  const allLaT = matrix(k, inF);
  const allLb = matrix(k, out);
  for (let i = 0; i < inF; i++) for (let j = 0; j < k; j++) allLaT.data[j * inF + i] = la[i * k + j]!;
  allLb.data.set(lb);
  exactColumns.forEach((j, c) => {
    for (let o = 0; o < out; o++) allLb.data[(rank + c) * out + o] -= ws.data[o * inF + j]!;
  });
  const afterSq = Math.max(0, weightedResidualSq(errorSq, e, hs, allLaT, allLb));
  const wantNorm = opts.outputNorm ?? inF * inF * out <= 1e10;

  const diag: QuantDiagnostics = {
    method,
    rank,
    sideRank: k,
    sigma,
    erank: effectiveRank(sigma),
    dampingUsed,
    outputErrorBefore: Math.sqrt(Math.max(0, errorSq)),
    outputErrorAfter: Math.sqrt(afterSq),
    outliers: [...plan.exact],
    activationOutlierRatio: xMean.reduce((a, b) => Math.max(a, b), 0) / Math.max(median(xMean), Number.MIN_VALUE),
    sideFlopsRatio: sidePathFlopsRatio(k, inF, out),
    seconds: 0,
    timings,
  };
  if (wantNorm) diag.outputNorm = Math.sqrt(Math.max(0, outputErrorSq(ws, hs)));
  if (plan.smoothAlpha !== undefined) diag.smoothAlpha = plan.smoothAlpha;
  if (plan.search) diag.search = plan.search;
  const sample = layer.stats.sample();
  if (sample.tokens > 0) {
    const yRef = referenceOutput(sample, layer.weight, out, inF);
    const qhat = matrix(out, inF, dequantizeWeights(quant, out, inF));
    const y = simulateQuantizedOutput(sample.x, sample.tokens, { inFeatures: inF, outFeatures: out, aBits, qhat, smooth: plan.smooth, la, lb, sideRank: k });
    diag.sampled = { tokens: sample.tokens, error: frobeniusDistance(y, yRef), norm: frobeniusNorm(yRef) };
  }
  lap('diagnostics');
  diag.seconds = (performance.now() - started) / 1000;
  return { linear, diag };
}

/** L2QER's activation-induced scale: s_j = x̄_j / sqrt(min x̄ · max x̄), dead channels floored at 1e-8·max x̄. */
export function l2qerScale(xMean: Float64Array): Float64Array {
  const max = xMean.reduce((a, b) => Math.max(a, b), 0);
  if (max === 0) return new Float64Array(xMean.length).fill(1);
  const floored = xMean.map((v) => Math.max(v, 1e-8 * max));
  const min = floored.reduce((a, b) => Math.min(a, b), Infinity);
  const norm = Math.sqrt(min * max);
  return floored.map((v) => v / norm);
}

/** Ŵ_eff = (Q̂ + L_Bᵀ L_Aᵀ) · M⁻¹, [out, in] in the original input coordinates (what the layer computes, activations unquantized). */
export function effectiveWeight(linear: QuantizedLinear, q: Int8Array): Float64Array {
  const { outFeatures: out, inFeatures: inF, rank: k } = linear;
  const w = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) {
    const s = linear.wScale[o]!;
    for (let i = 0; i < inF; i++) {
      let v = s * q[o * inF + i]!;
      for (let j = 0; j < k; j++) v += linear.la![i * k + j]! * linear.lb![j * out + o]!;
      w[o * inF + i] = linear.smooth ? v / linear.smooth[i]! : v;
    }
  }
  return w;
}
