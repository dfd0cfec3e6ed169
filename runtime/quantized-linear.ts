/// <reference types="@webgpu/types" />
// Quantized W4A8/A6/A4 LinearOp with ASER's low-rank side path; W8 (per-channel int8 weights, e.g. a
// quantized classifier: wBits 8) runs through the same two kernels.
//   fused (default): kernel A (w4a8_act_quant: smoothing, per-token absmax, int8 lanes, s_x, and
//                    t = x̃·L_A) then kernel B (w4a8_matmul: dot4I8Packed GEMV/GEMM with the epilogue
//                    y = s_x·s_w·acc + t·L_B + bias). Two dispatches per layer.
//   unfused:         act-quant, int matmul, x·L_A, ·L_B and an add as separate dispatches (the baseline
//                    the fused path is measured against; L_A has the smoothing folded into its rows).
// Each dispatch comes from its kernel's plan (kernels/w4a8_*.ts): spec, named bindings, grid, uniforms
// and the bytes of what it binds. Scratch (quantized activations, s_x, partial t) lives in a ScratchPool
// the executor shares between all quantized layers: they run one after another, so one set sized for
// the largest layer serves all of them.
import type { GpuContext } from '../core/gpu.js';
import type { KernelSpec } from '../core/kernel-spec.js';
import type { LinearFusion, LinearOp } from './linear.js';
import type { PipelineCache } from './pipelines.js';
import { ACTIVATION_BITS_TEXT, isActivationBits, type LowRankInt8, type QuantizedLinear } from '../core/quantized.js';
import { packInt8Words } from '../core/lowrank-int8.js';
import { createBuffer, uniformBufferFrom, uploadBuffer } from './buffers.js';
import { f32ToF16Array } from '../core/dtype.js';
import { createDenseLinear } from './dense-linear.js';
import { BindGroupCache, bufferId, checkActivationBuffers, tokenChunks, type TokenChunk } from './linear-support.js';
import { planBindGroup } from './plan-binding.js';
import { ScratchPool } from './scratch-pool.js';
import { sliceW4Rows, stackW4Rows, w4Blocks, w4WordCount } from '../core/w4-layout.js';
import { sliceW8Rows, w8WordCount, weightWordsPerBlock, W8_MAX_IN } from '../core/w8-layout.js';
import {
  actQuantScratchBytes, actQuantSplits, actQuantTiling, activationQmax, activationWordsPerRow, inverseSmoothing, lowRankFormat, paddedLowRankScales, paddedRank,
  planActQuant, regroupLowRankA,
  type ActQuantOptions, type ActQuantTiling, type LowRankFormat,
} from '../kernels/w4a8_act_quant.js';
import {
  planW4Matmul, rankCapacity, singleSegment, w4MatmulSpec, w4MatmulTiling, w4RowsPerSlice, W4_MAX_SEGMENTS, type W4MatmulOptions,
  type W4MatmulTiling, type W4Segment, type WeightBits,
} from '../kernels/w4a8_matmul.js';
import { planVecAdd } from '../kernels/vec_add.js';
import { LinearConfigError } from './errors.js';

export interface QuantizedLinearOptions {
  label: string;
  maxTokens: number;
  /** Fused two-kernel path (default) or the unfused baseline. */
  fused?: boolean;
  /** Keep the exact int32 accumulators of the last encode in `debug.acc` (tests; costs one write per output). */
  debugAcc?: boolean;
  /** Largest packed-weight slice in bytes (default maxStorageBufferBindingSize); tests force splits with it. */
  maxSliceBytes?: number;
  /** Largest activation binding in bytes (default maxStorageBufferBindingSize); tests force token chunks with it. */
  maxBindingBytes?: number;
  /** Overrides of the adapter-derived tilings (benchmarks). */
  actQuantTiling?: Partial<ActQuantTiling>;
  matmulTiling?: Partial<W4MatmulTiling>;
  /**
   * Scratch shared with the other layers of a model (the executor passes its own). Default: a pool of
   * this op's own, freed with it.
   */
  scratch?: ScratchPool;
}

/** Intermediates of the last encode (the last token chunk), for tests and diagnostics. */
export interface QuantizedLinearDebug {
  /** u32 [tokens, wordsPerRow]: int8 lanes, 4 per word, in k order. */
  xq: GPUBuffer;
  /** f32 [tokens] */
  sx: GPUBuffer;
  /** f32 [tokens, splits(tokens), rankPad]: kernel A's partial t (fused path with rank > 0). */
  tpart?: GPUBuffer;
  /** i32 [tokens, out] exact accumulators (opts.debugAcc). */
  acc?: GPUBuffer;
  /** f32 [tokens]: the rstd kernel A normed with (the last encodeFused with a norm). */
  rstd: GPUBuffer;
  wordsPerRow: number;
  rankPad: number;
  splits(tokens: number): number;
}

export interface QuantizedLinearOp extends LinearOp {
  readonly fused: boolean;
  readonly rank: number;
  readonly aBits: number;
  /** How L_A/L_B are stored on this device ('none' when rank is 0). */
  readonly lowRank: LowRankFormat;
  readonly debug: QuantizedLinearDebug;
  /**
   * Encodes one stage alone (benchmarks measure what bounds the layer with it): 'act_quant' = kernel A,
   * 'matmul' = kernel B (fused: with the side-path epilogue), 'side' = the unfused x·L_A, ·L_B and add.
   * Reads whatever the earlier stages left in the scratch.
   */
  encodeStage(pass: GPUComputePassEncoder, x: GPUBuffer, y: GPUBuffer, tokens: number, stage: 'act_quant' | 'matmul' | 'side'): void;
}

// ---------------------------------------------------------------- scratch
/** The pool's buffers a quantized linear uses; t and y2 only on the unfused path (dense side-path outputs). */
export type QuantizedScratchName = 'xq' | 'sx' | 'tpart' | 't' | 'y2' | 'rstd';

/** Label prefix of the scratch buffers (`quantized-linear/scratch/xq`, …). */
export const QUANTIZED_SCRATCH_LABEL = 'quantized-linear/scratch';

/**
 * Scratch bytes one quantized linear needs for any call of up to maxTokens tokens, from its kernels'
 * plans; 4-byte stubs for what its path never binds (the pool keeps one buffer per name).
 */
export function quantizedLinearScratch(
  s: { inFeatures: number; outFeatures: number; rank: number; maxTokens: number; fused: boolean },
  a: Pick<ActQuantOptions, 'smooth' | 'lowRank' | 'tiling'>,
): Record<QuantizedScratchName, number> {
  const fusedRank = s.fused ? s.rank : 0;
  const k = actQuantScratchBytes(s.maxTokens, { inFeatures: s.inFeatures, rank: fusedRank }, { ...a, lowRank: fusedRank > 0 ? a.lowRank : 'none' });
  const unfusedRank = s.fused ? 0 : s.rank;
  const stub = (bytes: number) => Math.max(4, bytes);
  return {
    xq: stub(k.xq),
    sx: stub(k.sx),
    tpart: stub(k.tpart),
    t: stub(s.maxTokens * unfusedRank * 4),
    rstd: stub(s.fused ? s.maxTokens * 4 : 0),
    y2: stub(unfusedRank > 0 ? s.maxTokens * s.outFeatures * 4 : 0),
  };
}

// ---------------------------------------------------------------- validation
function validate(q: QuantizedLinear, label: string): void {
  const bad = (reason: string): never => {
    throw new LinearConfigError(label, reason);
  };
  const { inFeatures: K, outFeatures: N } = q;
  if (!Number.isInteger(K) || !Number.isInteger(N) || K < 1 || N < 1) bad(`shape [${N}, ${K}] must be positive integers`);
  if (q.wBits !== 4 && q.wBits !== 8) bad(`wBits = ${q.wBits}; expected 4 or 8`);
  if (!isActivationBits(q.aBits)) bad(`aBits = ${q.aBits}; expected ${ACTIVATION_BITS_TEXT}`);
  const words = q.wBits === 8 ? w8WordCount(N, K) : w4WordCount(N, K);
  if (q.qweight.length !== words) bad(`qweight has ${q.qweight.length} words, expected ${words} for [${N}, ${K}] (core/w${q.wBits}-layout.ts)`);
  if (q.wScale.length !== N) bad(`wScale has ${q.wScale.length} values, expected ${N}`);
  if (q.smooth) {
    if (q.smooth.length !== K) bad(`smooth has ${q.smooth.length} values, expected ${K}`);
    for (let i = 0; i < K; i++) if (!(q.smooth[i]! > 0) || !Number.isFinite(q.smooth[i]!)) bad(`smooth[${i}] = ${q.smooth[i]} is not a positive finite divisor`);
  }
  if (!Number.isInteger(q.rank) || q.rank < 0) bad(`rank = ${q.rank} must be a non-negative integer`);
  if (q.rank > 0) {
    if (!q.la || q.la.length !== K * q.rank) bad(`la has ${q.la?.length ?? 0} values, expected ${K}×${q.rank}`);
    if (!q.lb || q.lb.length !== q.rank * N) bad(`lb has ${q.lb?.length ?? 0} values, expected ${q.rank}×${N}`);
  }
  if (q.bias && q.bias.length !== N) bad(`bias has ${q.bias.length} values, expected ${N}`);
  if (q.wBits === 4 && K > 150_000) bad(`in = ${K} exceeds 150000, where the int32 accumulator (16·Σ|q_x·q_w|) could overflow`);
  if (q.wBits === 8 && K > W8_MAX_IN) bad(`in = ${K} exceeds ${W8_MAX_IN}, where the int32 accumulator (Σ|q_x·q_w|, int8 weights) could overflow`);
}

function uploadLowRank(device: GPUDevice, values: Float32Array, format: LowRankFormat, label: string): GPUBuffer {
  return format === 'f16' ? uploadBuffer(device, f32ToF16Array(values), label) : uploadBuffer(device, values, label);
}

interface Slice {
  rowStart: number;
  rows: number;
  qweight: GPUBuffer;
  params: GPUBuffer;
}

// ---------------------------------------------------------------- groups
/**
 * Why linears of one input cannot run as one group (one kernel A, one kernel B over their stacked
 * rows), or undefined when they can: the contract with the quantizer is equal aBits and smoothing
 * vectors that are bitwise identical or all absent (kernel A quantizes the shared input once).
 */
export function quantizedGroupConflict(qs: readonly QuantizedLinear[]): string | undefined {
  if (qs.length < 1 || qs.length > W4_MAX_SEGMENTS) return `${qs.length} linears (a group holds 1..${W4_MAX_SEGMENTS})`;
  const first = qs[0]!;
  for (const q of qs) {
    if (q.inFeatures !== first.inFeatures) return `inputs of ${q.inFeatures} and ${first.inFeatures} features`;
    if (q.aBits !== first.aBits) return `activation bits ${q.aBits} and ${first.aBits}`;
    if (qs.length > 1 && q.wBits !== 4) return `${q.wBits}-bit weights (groups stack 4-bit weights only)`;
    if (!!q.smooth !== !!first.smooth) return 'smoothing on some linears only';
    if (q.smooth && first.smooth) {
      const a = new Uint32Array(q.smooth.buffer, q.smooth.byteOffset, q.smooth.length);
      const b = new Uint32Array(first.smooth.buffer, first.smooth.byteOffset, first.smooth.length);
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) return 'different smoothing vectors';
    }
  }
  return undefined;
}

/**
 * The linears of a group as one stacked layer: rows [Σ out] in order, L_A's columns side by side
 * ([in, Σ rank]: kernel A computes every member's t in one pass), each member's L_B kept as its own
 * [rank, out] block one after another (`lb` here is that flat list, not a [Σ rank, Σ out] matrix),
 * and the segment table kernel B's epilogue reads them by.
 */
function stackGroup(qs: readonly QuantizedLinear[]): { q: QuantizedLinear; segments: W4Segment[] } {
  if (qs.length === 1) return { q: qs[0]!, segments: singleSegment(qs[0]!.outFeatures, qs[0]!.rank) };
  const K = qs[0]!.inFeatures;
  const N = qs.reduce((n, q) => n + q.outFeatures, 0);
  const R = qs.reduce((n, q) => n + q.rank, 0);
  const wScale = new Float32Array(N);
  const bias = qs.some((q) => q.bias) ? new Float32Array(N) : undefined;
  const la = R ? new Float32Array(K * R) : undefined;
  const lb = R ? new Float32Array(qs.reduce((n, q) => n + q.rank * q.outFeatures, 0)) : undefined;
  // int8 factors stack the same way (with their scales along the rank) when every member with a side path has them.
  const int8 = R > 0 && qs.every((q) => q.rank === 0 || q.lowRankInt8);
  const i8: LowRankInt8 | undefined = int8
    ? { la: new Int8Array(K * R), laScale: new Float32Array(R), lb: new Int8Array(lb!.length), lbScale: new Float32Array(R) }
    : undefined;
  const segments: W4Segment[] = [];
  let row = 0, rankOffset = 0, lbOffset = 0;
  for (const q of qs) {
    wScale.set(q.wScale, row);
    if (q.bias) bias!.set(q.bias, row);
    for (let k = 0; k < K; k++) for (let j = 0; j < q.rank; j++) la![k * R + rankOffset + j] = q.la![k * q.rank + j]!;
    if (q.rank) lb!.set(q.lb!, lbOffset);
    const f = q.lowRankInt8;
    if (i8 && f) {
      for (let k = 0; k < K; k++) for (let j = 0; j < q.rank; j++) i8.la[k * R + rankOffset + j] = f.la[k * q.rank + j]!;
      i8.laScale.set(f.laScale, rankOffset);
      i8.lb.set(f.lb, lbOffset);
      i8.lbScale.set(f.lbScale, rankOffset);
    }
    segments.push({ rowStart: row, rows: q.outFeatures, rankOffset, rank: q.rank });
    row += q.outFeatures;
    rankOffset += q.rank;
    lbOffset += q.rank * q.outFeatures;
  }
  const qweight = stackW4Rows(qs.map((q) => ({ words: q.qweight, outFeatures: q.outFeatures })), K);
  return { q: { inFeatures: K, outFeatures: N, wBits: 4, aBits: qs[0]!.aBits, qweight, wScale, smooth: qs[0]!.smooth, rank: R, la, lb, lowRankInt8: i8, bias }, segments };
}

// ---------------------------------------------------------------- the op
/**
 * A quantized linear, or a group of linears of one input (q|k|v, gate|up) run as one: kernel A
 * quantizes the shared input once and starts every member's side path, kernel B runs over the
 * stacked rows with a side-path segment per member (kernels/w4a8_matmul.wgsl). The group's output is
 * the members' outputs side by side ([tokens, Σ out]). Groups run fused only.
 */
export function createQuantizedLinear(gpu: GpuContext, cache: PipelineCache, linears: QuantizedLinear | readonly QuantizedLinear[], opts: QuantizedLinearOptions): QuantizedLinearOp {
  const label = opts.label;
  const members = Array.isArray(linears) ? (linears as readonly QuantizedLinear[]) : [linears as QuantizedLinear];
  for (const m of members) validate(m, label);
  const conflict = quantizedGroupConflict(members);
  if (conflict) throw new LinearConfigError(label, `cannot run as one group: ${conflict}`);
  if (members.length > 1 && opts.fused === false) throw new LinearConfigError(label, 'a group of linears runs on the fused path only');
  const { q, segments } = stackGroup(members);
  if (!gpu.features.packedDot4) throw new LinearConfigError(label, 'this adapter lacks WGSL packed_4x8_integer_dot_product (dot4I8Packed)');
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new LinearConfigError(label, `maxTokens = ${opts.maxTokens} must be a positive integer`);
  activationQmax(q.aBits);

  const device = gpu.device;
  const fused = opts.fused ?? true;
  const K = q.inFeatures;
  const N = q.outFeatures;
  const rank = q.rank;
  const weightBits = q.wBits as WeightBits;
  // int8 factors run as int8 on the fused path; the unfused baseline's dense products take f16/f32.
  const lowRank = lowRankFormat(gpu, rank, !!q.lowRankInt8 && (opts.fused ?? true));
  const aTiling: ActQuantTiling = { ...actQuantTiling(gpu), ...opts.actQuantTiling };
  const mTiling: W4MatmulTiling = { ...w4MatmulTiling(gpu, weightBits), ...opts.matmulTiling };
  const wordsPerRow = activationWordsPerRow(K);
  const rankPad = paddedRank(rank, aTiling);
  const maxBinding = Math.min(opts.maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize);
  const maxPerDim = gpu.limits.maxComputeWorkgroupsPerDimension;
  const owned: GPUBuffer[] = [];
  const own = (b: GPUBuffer) => (owned.push(b), b);

  // What the kernels see: the fused path runs the side path inside them (kernel A starts t = x̃·L_A,
  // kernel B's epilogue adds t·L_B); the unfused one runs them without it.
  const kernelRank = fused ? rank : 0;
  const lrActive: LowRankFormat = fused ? lowRank : 'none';
  const aOpts: ActQuantOptions = { aBits: q.aBits, smooth: !!q.smooth, lowRank: lrActive, subgroups: gpu.features.subgroups, tiling: aTiling, maxWorkgroupsPerDim: maxPerDim };
  const bOpts: W4MatmulOptions = { weightBits, hasBias: !!q.bias, lowRank: lrActive, tMax: rankCapacity(rank), debugAcc: !!opts.debugAcc, tiling: mTiling, maxWorkgroupsPerDim: maxPerDim };
  // `f` (encodeFused): the RMSNorm before the linear in kernel A, the residual add in kernel B's epilogue.
  const planA = (tokens: number, f: LinearFusion = {}) =>
    planActQuant({ tokens, inFeatures: K, rank: kernelRank, eps: f.norm?.eps }, { ...aOpts, norm: !!f.norm, swiglu: !!f.swiglu });
  const planB = (tokens: number, sl: { rowStart: number; rows: number }, splits: number, f: LinearFusion = {}) =>
    planW4Matmul({ tokens, inFeatures: K, outFeatures: N, rowStart: sl.rowStart, rows: sl.rows, rank: kernelRank, rankPad, splits, segments: fused ? segments : undefined }, { ...bOpts, residual: !!f.residual });
  // Uniforms do not depend on the token count: plan them once, for the largest call.
  const coldA = planA(opts.maxTokens);

  // Weight slices along `out` (each re-packed on its own, so a slice is a whole layout of its rows).
  const maxSlice = Math.min(opts.maxSliceBytes ?? gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const rowsPerSlice = w4RowsPerSlice(K, maxSlice, weightBits);
  if (rowsPerSlice < 1) throw new LinearConfigError(label, `one packed row (${weightWordsPerBlock(weightBits) * 4 * w4Blocks(K)} bytes) exceeds the ${maxSlice}-byte binding limit`);
  const sliceRows = weightBits === 8 ? sliceW8Rows : sliceW4Rows;
  const slices: Slice[] = [];
  for (let rowStart = 0; rowStart < N; rowStart += rowsPerSlice) {
    const rows = Math.min(rowsPerSlice, N - rowStart);
    const words = rows === N ? q.qweight : sliceRows(q.qweight, N, K, rowStart, rowStart + rows);
    const name = rows === N ? `${label}/qweight` : `${label}/qweight[${rowStart}:${rowStart + rows}]`;
    slices.push({
      rowStart,
      rows,
      qweight: own(uploadBuffer(device, words, name)),
      params: own(uniformBufferFrom(device, planB(opts.maxTokens, { rowStart, rows }, coldA.splits).uniforms, `${name}/params`)),
    });
  }
  const wScale = own(uploadBuffer(device, q.wScale, `${label}/wScale`));
  const bias = q.bias ? own(uploadBuffer(device, q.bias, `${label}/bias`)) : undefined;
  const invSmooth = q.smooth ? inverseSmoothing(q.smooth) : undefined;
  const invSmoothBuf = invSmooth ? own(uploadBuffer(device, invSmooth, `${label}/invSmooth`)) : undefined;
  const aParams = own(uniformBufferFrom(device, coldA.uniforms, `${label}/act_quant/params`));
  // Kernel A's uniforms with a norm's epsilon, one buffer per epsilon seen (a model has one).
  const aParamsNorm = new Map<number, GPUBuffer>();
  const aParamsFor = (f: LinearFusion): GPUBuffer => {
    if (!f.norm) return aParams;
    let b = aParamsNorm.get(f.norm.eps);
    if (!b) {
      aParamsNorm.set(f.norm.eps, (b = own(uniformBufferFrom(device, planA(opts.maxTokens, f).uniforms, `${label}/act_quant_norm/params`))));
      byteSize += b.size;
    }
    return b;
  };
  const accDbg = opts.debugAcc ? own(createBuffer(device, opts.maxTokens * N * 4, `${label}/acc_dbg`)) : undefined;

  // Side path: fused keeps L_A regrouped for kernel A and L_B [r, out] for the epilogue; unfused runs
  // it as two dense products (L_A with the smoothing folded into its rows) and an add.
  let laBuf: GPUBuffer | undefined;
  let lbBuf: GPUBuffer | undefined;
  let denseA: LinearOp | undefined;
  let denseB: LinearOp | undefined;
  let laScaleBuf: GPUBuffer | undefined;
  let lbScaleBuf: GPUBuffer | undefined;
  if (rank > 0 && fused && lowRank === 'int8') {
    const f = q.lowRankInt8!;
    laBuf = own(uploadBuffer(device, packInt8Words(regroupLowRankA(f.la, K, rank, aTiling)), `${label}/la`));
    laScaleBuf = own(uploadBuffer(device, paddedLowRankScales(f.laScale, rank, aTiling), `${label}/la_scale`));
    lbBuf = own(uploadBuffer(device, packInt8Words(f.lb), `${label}/lb`));
    lbScaleBuf = own(uploadBuffer(device, f.lbScale, `${label}/lb_scale`));
  } else if (rank > 0 && fused) {
    laBuf = own(uploadLowRank(device, regroupLowRankA(q.la!, K, rank, aTiling), lowRank, `${label}/la`));
    lbBuf = own(uploadLowRank(device, q.lb!, lowRank, `${label}/lb`));
  } else if (rank > 0) {
    const dtype = lowRank === 'f16' ? 'f16' : 'f32';
    const laT = new Float32Array(rank * K); // [r, in] = (diag(1/m) · L_A)ᵀ
    for (let k = 0; k < K; k++) for (let j = 0; j < rank; j++) laT[j * K + k] = q.la![k * rank + j]! * (invSmooth ? invSmooth[k]! : 1);
    const lbT = new Float32Array(N * rank); // [out, r] = L_Bᵀ
    for (let j = 0; j < rank; j++) for (let o = 0; o < N; o++) lbT[o * rank + j] = q.lb![j * N + o]!;
    denseA = createDenseLinear(gpu, cache, { inFeatures: K, outFeatures: rank, weight: laT }, { label: `${label}/x·L_A`, dtype, maxTokens: opts.maxTokens, maxBindingBytes: opts.maxBindingBytes });
    denseB = createDenseLinear(gpu, cache, { inFeatures: rank, outFeatures: N, weight: lbT }, { label: `${label}/t·L_B`, dtype, maxTokens: opts.maxTokens, maxBindingBytes: opts.maxBindingBytes });
  }

  // Scratch needs of this layer, for any token count up to maxTokens; an op without the executor's pool keeps its own.
  const ownPool = opts.scratch ? undefined : new ScratchPool(device, QUANTIZED_SCRATCH_LABEL);
  const pool = opts.scratch ?? ownPool!;
  pool.reserve(quantizedLinearScratch({ inFeatures: K, outFeatures: N, rank, maxTokens: opts.maxTokens, fused }, { smooth: !!q.smooth, lowRank, tiling: aTiling }));
  const scratch = () => pool.get() as Readonly<Record<QuantizedScratchName, GPUBuffer>>;

  // Pipelines by label (unique per variant within this op); kernel B's two entry points compiled up front.
  const pipelines = new Map<string, GPUComputePipeline>();
  const pipeline = (spec: KernelSpec): GPUComputePipeline => {
    let p = pipelines.get(spec.label);
    if (!p) pipelines.set(spec.label, (p = cache.get(spec)));
    return p;
  };
  pipeline(coldA.spec);
  pipeline(w4MatmulSpec('gemv', bOpts));
  pipeline(w4MatmulSpec('gemm', bOpts));
  const addSpec = denseB ? planVecAdd(N, maxPerDim).spec : undefined;
  if (addSpec) pipeline(addSpec);

  interface Step {
    stage: 'act_quant' | 'matmul';
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    workgroups: [number, number, number];
  }
  // Bind groups per fusion (none, norm weight, residual) and then per (x, y, tokens).
  const bindGroups = new Map<string, BindGroupCache<Step[]>>();
  const fusionKey = (f: LinearFusion) => `${f.norm ? `${bufferId(f.norm.weight)}:${f.norm.eps}` : '-'}|${f.residual ? 'r' : '-'}|${f.swiglu ? 's' : '-'}`;
  let generation = -1;

  const rowBytes = 4 * Math.max(K, N, wordsPerRow);
  const build = (x: GPUBuffer, y: GPUBuffer, tokens: number, f: LinearFusion): Step[] => {
    const s = scratch();
    const steps: Step[] = [];
    const chunks = tokenChunks(tokens, f.swiglu ? Math.max(rowBytes, 8 * K) : rowBytes, maxBinding);
    for (const c of chunks) steps.push(...buildChunk(s, x, y, c, f));
    return steps;
  };

  const buildChunk = (s: Readonly<Record<QuantizedScratchName, GPUBuffer>>, x: GPUBuffer, y: GPUBuffer, c: TokenChunk, f: LinearFusion): Step[] => {
    const steps: Step[] = [];
    const a = planA(c.count, f);
    // Scratch is bound from offset 0 for every chunk: chunks run one after another in the pass. Kernel
    // B reads the ranges kernel A wrote.
    const xq = { buffer: s.xq, offset: 0, size: a.buffers.xq };
    const sx = { buffer: s.sx, offset: 0, size: a.buffers.sx };
    const tpart = { buffer: s.tpart, offset: 0, size: a.buffers.tpart };
    const aPipeline = pipeline(a.spec);
    steps.push({
      stage: 'act_quant',
      pipeline: aPipeline,
      bindGroup: planBindGroup(device, aPipeline, a, {
        params: { buffer: aParamsFor(f) },
        x: { buffer: x, offset: c.t0 * K * 4 * (f.swiglu ? 2 : 1), size: a.buffers.x },
        xq,
        sx,
        inv_m: invSmoothBuf && { buffer: invSmoothBuf },
        la: laBuf && { buffer: laBuf },
        la_scale: laScaleBuf && { buffer: laScaleBuf },
        tpart,
        norm_w: f.norm && { buffer: f.norm.weight },
        rstd: { buffer: s.rstd, offset: 0, size: Math.max(4, a.buffers.rstd) },
      }, `${label}/act_quant`),
      workgroups: a.workgroups,
    });

    for (const sl of slices) {
      const b = planB(c.count, sl, a.splits, f);
      const bPipeline = pipeline(b.spec);
      steps.push({
        stage: 'matmul',
        pipeline: bPipeline,
        bindGroup: planBindGroup(device, bPipeline, b, {
          params: { buffer: sl.params },
          xq,
          sx,
          qw: { buffer: sl.qweight },
          sw: { buffer: wScale },
          y: { buffer: y, offset: c.t0 * N * 4, size: b.buffers.y },
          bias: bias && { buffer: bias },
          tpart,
          lb: lbBuf && { buffer: lbBuf },
          lb_scale: lbScaleBuf && { buffer: lbScaleBuf },
          acc_dbg: accDbg && { buffer: accDbg, offset: 0, size: b.buffers.acc_dbg },
        }, `${label}/w4a8_matmul`),
        workgroups: b.workgroups,
      });
    }
    return steps;
  };

  // Unfused tail: t = x·(diag(1/m)L_A), y2 = t·L_B, y += y2 (add chunked like everything else).
  const addSteps = new BindGroupCache<Step[]>();
  const buildAdd = (y: GPUBuffer, y2: GPUBuffer, tokens: number): Step[] =>
    tokenChunks(tokens, N * 4, maxBinding).map((c) => {
      const add = planVecAdd(c.count * N, maxPerDim);
      const addPipeline = pipeline(add.spec);
      const range = (buffer: GPUBuffer) => ({ buffer, offset: c.t0 * N * 4, size: c.count * N * 4 });
      return {
        stage: 'matmul' as const,
        pipeline: addPipeline,
        bindGroup: planBindGroup(device, addPipeline, add, { y: range(y), z: range(y2) }, `${label}/vec_add`),
        workgroups: add.workgroups,
      };
    });

  const run = (pass: GPUComputePassEncoder, steps: Step[], only?: Step['stage']) => {
    for (const st of steps) {
      if (only && st.stage !== only) continue;
      pass.setPipeline(st.pipeline);
      pass.setBindGroup(0, st.bindGroup);
      pass.dispatchWorkgroups(...st.workgroups);
    }
  };

  const prepare = (x: GPUBuffer, y: GPUBuffer, tokens: number, f: LinearFusion = {}): Step[] => {
    checkActivationBuffers(label, x, y, tokens, f.swiglu ? 2 * K : K, N, opts.maxTokens);
    if (f.norm && f.swiglu) throw new LinearConfigError(label, 'an input is either normed or a SwiGLU, not both');
    if (generation !== pool.generation) {
      bindGroups.clear();
      addSteps.clear();
      generation = pool.generation;
    }
    const key = fusionKey(f);
    let groups = bindGroups.get(key);
    if (!groups) bindGroups.set(key, (groups = new BindGroupCache<Step[]>()));
    return groups.get(x, y, tokens, () => build(x, y, tokens, f));
  };
  const encodeSide = (pass: GPUComputePassEncoder, x: GPUBuffer, y: GPUBuffer, tokens: number) => {
    if (!denseA || !denseB) return;
    const s = scratch();
    denseA.encode(pass, x, s.t, tokens);
    denseB.encode(pass, s.t, s.y2, tokens);
    run(pass, addSteps.get(y, s.y2, tokens, () => buildAdd(y, s.y2, tokens)));
  };

  // The scratch is not in byteSize: the executor reports its pool once, as w4a8Scratch.
  let byteSize = owned.reduce((n, b) => n + b.size, 0) + (denseA?.byteSize ?? 0) + (denseB?.byteSize ?? 0);
  const op: QuantizedLinearOp = {
    inFeatures: K,
    outFeatures: N,
    label,
    fused,
    rank,
    aBits: q.aBits,
    lowRank,
    get byteSize() {
      return byteSize;
    },
    get debug(): QuantizedLinearDebug {
      const s = scratch();
      return {
        xq: s.xq,
        sx: s.sx,
        tpart: fused && rank > 0 ? s.tpart : undefined,
        acc: accDbg,
        rstd: s.rstd,
        wordsPerRow,
        rankPad,
        splits: (tokens) => actQuantSplits(tokens, K, aTiling),
      };
    },
    encode(pass, x, y, tokens) {
      run(pass, prepare(x, y, tokens));
      encodeSide(pass, x, y, tokens);
    },
    encodeFused: fused
      ? (pass, x, y, tokens, f) => run(pass, prepare(x, y, tokens, f))
      : undefined,
    encodeStage(pass, x, y, tokens, stage) {
      const steps = prepare(x, y, tokens);
      if (stage === 'side') encodeSide(pass, x, y, tokens);
      else run(pass, steps, stage);
    },
    destroy() {
      for (const b of owned) b.destroy();
      denseA?.destroy();
      denseB?.destroy();
      ownPool?.release();
      bindGroups.clear();
      addSteps.clear();
      byteSize = 0;
    },
  };
  return op;
}
