// Plan for kernels/w4a8_act_quant.wgsl (kernel A): shape + options -> spec (defines), named bindings,
// grid, uniforms and the bytes of every buffer it binds; plus the GPU form of L_A and of the smoothing
// vector. Pure functions; the runtime (runtime/quantized-linear.ts) owns the buffers.
import type { GpuContext } from '../core/gpu.js';
import type { KernelSpec } from '../core/kernel-spec.js';
import { bindingsInOrder, MAX_WORKGROUPS_PER_DIM, packUniforms, type BindingBytes, type SizedKernelPlan } from './kernel_plan.js';
import { isCpuAdapter } from './matmul_dense.js';
import { W4_BLOCK_K } from '../core/w4-layout.js';
import { ACTIVATION_BITS_TEXT, isActivationBits, symmetricQmax } from '../core/quantized.js';

/**
 * Storage of L_A/L_B on the GPU: 'int8' (4 lanes a u32 word, a scale per rank index) for factors the
 * artifact keeps in int8, else f16 where shader-f16 was granted, f32 otherwise; 'none' = rank 0.
 */
export type LowRankFormat = 'none' | 'f16' | 'f32' | 'int8';

export function lowRankFormat(gpu: GpuContext, rank: number, int8Factors = false): LowRankFormat {
  if (rank === 0) return 'none';
  if (int8Factors) return 'int8';
  return gpu.features.shaderF16 ? 'f16' : 'f32';
}

/** Bytes one L_A / L_B value takes on the GPU in a format (0 for 'none'). */
export function lowRankValueBytes(format: LowRankFormat): number {
  return { none: 0, int8: 1, f16: 2, f32: 4 }[format];
}

/** Symmetric activation qmax for A8/A6/A4: 2^(bits-1) - 1. */
export function activationQmax(aBits: number): number {
  if (!isActivationBits(aBits)) throw new RangeError(`activation bits ${aBits} is not ${ACTIVATION_BITS_TEXT}`);
  return symmetricQmax(aBits);
}

/** Activation words per token: 8 u32 (32 int8 lanes) per 32-wide k block, zero padded. */
export function activationWordsPerRow(inFeatures: number): number {
  return Math.ceil(inFeatures / W4_BLOCK_K) * 8;
}

export interface ActQuantTiling {
  /** Threads per workgroup (power of two: the side-path reduction is a halving tree). */
  wg: number;
  /** L_A columns per pass (multiple of 4): registers per thread and workgroup memory wg·rc·4 bytes. */
  rankChunk: number;
  /** Aim for this many workgroups when few tokens (k-splits fill the adapter during decode). */
  targetWorkgroups: number;
  /** Never split below this many 32-wide blocks per workgroup. */
  minBlocksPerSplit: number;
}

export function actQuantTiling(gpu: GpuContext): ActQuantTiling {
  const cpu = isCpuAdapter(gpu);
  let wg = cpu ? 16 : 128;
  while (wg > gpu.limits.maxComputeInvocationsPerWorkgroup) wg /= 2;
  // Wider chunks mean fewer reduction passes (CPU adapters pay for each barrier: 16 halves kernel A's
  // side-path time at r = 60 on llvmpipe); on GPUs 8 keeps L_A's zero padding small at low ranks.
  const rankChunk = cpu ? 16 : 8;
  return { wg, rankChunk, targetWorkgroups: cpu ? 8 : 256, minBlocksPerSplit: cpu ? 8 : 2 };
}

/**
 * The shader's resources by name, in `@binding` order: index i is `@binding(i)` in w4a8_act_quant.wgsl.
 * The one place the TypeScript side writes these numbers.
 */
export const ACT_QUANT_BINDINGS = ['params', 'x', 'xq', 'sx', 'inv_m', 'la', 'tpart', 'norm_w', 'rstd', 'la_scale'] as const;
export type ActQuantBinding = (typeof ACT_QUANT_BINDINGS)[number];

export interface ActQuantShape {
  tokens: number;
  inFeatures: number;
  /** Side-path rank this kernel starts (t = x̃·L_A); 0 without a side path or on the unfused path. */
  rank: number;
  /** RMSNorm epsilon, with options.norm. */
  eps?: number;
}

export interface ActQuantOptions {
  aBits: number;
  smooth: boolean;
  /** The RMSNorm before the linear runs in this kernel (x is the residual stream; binds norm_w and rstd). */
  norm?: boolean;
  /** x is gate|up [tokens, 2·in] and the input silu(gate)·up (the SwiGLU before down_proj); not with norm. */
  swiglu?: boolean;
  /** L_A's storage; 'none' exactly when the shape's rank is 0. */
  lowRank: LowRankFormat;
  subgroups: boolean;
  tiling: ActQuantTiling;
  /** The adapter's maxComputeWorkgroupsPerDimension (default: the WebGPU minimum); shapes the grid only. */
  maxWorkgroupsPerDim?: number;
}

export type ActQuantBuffers = BindingBytes<ActQuantBinding>;

export type ActQuantPlan = SizedKernelPlan<ActQuantBinding> & {
  /** k-split workgroups per token: t leaves as that many partial sums per token (kernel B adds them). */
  splits: number;
};

export function planActQuant(s: ActQuantShape, o: ActQuantOptions): ActQuantPlan {
  const lowRank = s.rank > 0;
  if (o.norm && o.swiglu) throw new RangeError('planActQuant: an input is either normed or a SwiGLU, not both');
  if (lowRank !== (o.lowRank !== 'none')) throw new RangeError(`planActQuant: rank ${s.rank} with low-rank storage '${o.lowRank}'`);
  const splits = actQuantSplits(s.tokens, s.inFeatures, o.tiling);
  const optional: Partial<Record<ActQuantBinding, boolean>> = { inv_m: o.smooth, la: lowRank, tpart: lowRank, norm_w: !!o.norm, rstd: !!o.norm, la_scale: o.lowRank === 'int8' };
  return {
    spec: actQuantSpec(o),
    workgroups: actQuantDispatch(splits, s.tokens, o.maxWorkgroupsPerDim ?? MAX_WORKGROUPS_PER_DIM),
    uniforms: actQuantUniforms(s.inFeatures, s.rank, o.tiling, s.eps ?? 0),
    bindings: bindingsInOrder(ACT_QUANT_BINDINGS, (b) => optional[b] ?? true),
    buffers: actQuantBuffers(s, o),
    // Kernel A reads x, the smoothing divisors and L_A; it writes xq, s_x and the partial t.
    reads: { ...actQuantBuffers(s, o), xq: 0, sx: 0, tpart: 0 },
    splits,
  };
}

/** L_A and partial-t columns: the rank padded to whole chunks of tiling.rankChunk. */
export function paddedRank(rank: number, t: ActQuantTiling): number {
  return rankChunks(rank, t) * t.rankChunk;
}

/** The bytes planActQuant binds (its `buffers`), without the spec: what memory plans and scratch pools size. */
export function actQuantBuffers(s: ActQuantShape, o: Pick<ActQuantOptions, 'smooth' | 'lowRank' | 'tiling' | 'norm' | 'swiglu'>): ActQuantBuffers {
  const lowRank = s.rank > 0 && o.lowRank !== 'none';
  const rankPad = paddedRank(s.rank, o.tiling);
  return {
    x: s.tokens * s.inFeatures * 4 * (o.swiglu ? 2 : 1),
    xq: s.tokens * activationWordsPerRow(s.inFeatures) * 4,
    sx: s.tokens * 4,
    inv_m: o.smooth ? s.inFeatures * 4 : 0,
    la: lowRank ? rankPad * s.inFeatures * lowRankValueBytes(o.lowRank) : 0,
    la_scale: lowRank && o.lowRank === 'int8' ? rankPad * 4 : 0,
    tpart: lowRank ? s.tokens * actQuantSplits(s.tokens, s.inFeatures, o.tiling) * rankPad * 4 : 0,
    norm_w: o.norm ? s.inFeatures * 4 : 0,
    rstd: o.norm ? s.tokens * 4 : 0,
  };
}

/**
 * The largest xq, s_x and partial-t bindings of any call with 1..maxTokens tokens: what the scratch
 * must hold. Past targetWorkgroups tokens every call is one split per token, so there the sizes only
 * grow with the count and maxTokens bounds them.
 */
export function actQuantScratchBytes(maxTokens: number, s: Omit<ActQuantShape, 'tokens'>, o: Pick<ActQuantOptions, 'smooth' | 'lowRank' | 'tiling'>): Pick<ActQuantBuffers, 'xq' | 'sx' | 'tpart'> {
  const most = actQuantBuffers({ ...s, tokens: maxTokens }, o);
  const out = { xq: most.xq, sx: most.sx, tpart: most.tpart };
  if (out.tpart === 0) return out; // no side path: no partial t at any count
  for (let t = 1; t <= Math.min(maxTokens, o.tiling.targetWorkgroups); t++) out.tpart = Math.max(out.tpart, actQuantBuffers({ ...s, tokens: t }, o).tpart);
  return out;
}

function actQuantSpec(o: ActQuantOptions): KernelSpec {
  const defines = {
    WG: o.tiling.wg,
    RC: o.tiling.rankChunk,
    QMAX: activationQmax(o.aBits),
    SMOOTH: o.smooth,
    NORM: !!o.norm,
    SWIGLU: !!o.swiglu,
    HAS_LR: o.lowRank !== 'none',
    LR_F16: o.lowRank === 'f16',
    LR_I8: o.lowRank === 'int8',
    SUBGROUPS: o.subgroups,
  };
  const flags = [`a${o.aBits}`, o.norm ? 'norm' : '', o.swiglu ? 'swiglu' : '', o.smooth ? 'smooth' : '', o.lowRank === 'none' ? '' : `lr${o.lowRank}`, o.subgroups ? 'sg' : '', `wg${o.tiling.wg}`];
  return { shader: 'w4a8_act_quant.wgsl', entryPoint: 'main', defines, label: `w4a8_act_quant_${flags.filter(Boolean).join('_')}` };
}

/** Number of k-split workgroups per token (the kernel derives blocks per split from it). */
export function actQuantSplits(tokens: number, inFeatures: number, t: ActQuantTiling): number {
  const blocks = Math.ceil(inFeatures / W4_BLOCK_K);
  const maxSplits = Math.max(1, Math.floor(blocks / t.minBlocksPerSplit));
  const wanted = Math.max(1, Math.floor(t.targetWorkgroups / tokens));
  const splits = Math.min(wanted, maxSplits);
  // Only counts that give every split the same whole number of blocks, so none is empty.
  const perSplit = Math.ceil(blocks / splits);
  return Math.ceil(blocks / perSplit);
}

export function rankChunks(rank: number, t: ActQuantTiling): number {
  return Math.ceil(rank / t.rankChunk);
}

/** Params uniform, field for field as in the WGSL struct: in_features, words_per_row, rank_chunks, eps. */
export function actQuantUniforms(inFeatures: number, rank: number, t: ActQuantTiling, eps = 0): ArrayBuffer {
  return packUniforms([inFeatures, activationWordsPerRow(inFeatures), rankChunks(rank, t), eps], 'uuuf');
}

/** Grid: (splits, tokens) with tokens spread over y and z past the per-dimension limit. */
function actQuantDispatch(splits: number, tokens: number, maxPerDim: number): [number, number, number] {
  if (tokens <= maxPerDim) return [splits, tokens, 1];
  const z = Math.ceil(tokens / maxPerDim);
  return [splits, Math.ceil(tokens / z), z];
}

/** fl(1/m) per channel: the kernel multiplies by it (reproducible) instead of dividing by m. */
export function inverseSmoothing(smooth: Float32Array): Float32Array {
  const out = new Float32Array(smooth.length);
  for (let i = 0; i < smooth.length; i++) out[i] = 1 / smooth[i]!;
  return out;
}

/** L_A [in, rank] row-major -> [chunk][in][rankChunk], zero-padded (the kernel's read order; int8 stays int8). */
export function regroupLowRankA<T extends Float32Array | Int8Array>(la: T, inFeatures: number, rank: number, t: ActQuantTiling): T {
  const rc = t.rankChunk;
  const chunks = rankChunks(rank, t);
  const out = new (la.constructor as new (n: number) => T)(chunks * inFeatures * rc);
  for (let k = 0; k < inFeatures; k++) {
    for (let j = 0; j < rank; j++) {
      const c = Math.floor(j / rc);
      out[(c * inFeatures + k) * rc + (j % rc)] = la[k * rank + j]!;
    }
  }
  return out;
}

/** L_A's int8 scales per rank column, zero-padded to paddedRank (kernel A's la_scale). */
export function paddedLowRankScales(scale: Float32Array, rank: number, t: ActQuantTiling): Float32Array {
  const out = new Float32Array(paddedRank(rank, t));
  out.set(scale.subarray(0, rank));
  return out;
}
