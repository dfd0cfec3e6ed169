// Plan for kernels/w4a8_act_quant.wgsl (kernel A): options -> defines, the k-split count for a token
// count, uniforms, and the GPU form of L_A and of the smoothing vector. Pure functions.
import type { GpuContext } from '../core/gpu.js';
import type { KernelSpec } from '../core/kernel-spec.js';
import { isCpuAdapter } from './matmul_dense.js';
import { W4_BLOCK_K } from '../core/w4-layout.js';
import { ACTIVATION_BITS_TEXT, isActivationBits, symmetricQmax } from '../core/quantized.js';

/** Storage of L_A/L_B on the GPU: f16 where shader-f16 was granted, f32 otherwise; 'none' = rank 0. */
export type LowRankFormat = 'none' | 'f16' | 'f32';

export function lowRankFormat(gpu: GpuContext, rank: number): LowRankFormat {
  if (rank === 0) return 'none';
  return gpu.features.shaderF16 ? 'f16' : 'f32';
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

export interface ActQuantOptions {
  aBits: number;
  smooth: boolean;
  lowRank: LowRankFormat;
  subgroups: boolean;
  tiling: ActQuantTiling;
}

export function actQuantSpec(o: ActQuantOptions): KernelSpec {
  const defines = {
    WG: o.tiling.wg,
    RC: o.tiling.rankChunk,
    QMAX: activationQmax(o.aBits),
    SMOOTH: o.smooth,
    HAS_LR: o.lowRank !== 'none',
    LR_F16: o.lowRank === 'f16',
    SUBGROUPS: o.subgroups,
  };
  const flags = [`a${o.aBits}`, o.smooth ? 'smooth' : '', o.lowRank === 'none' ? '' : `lr${o.lowRank}`, o.subgroups ? 'sg' : '', `wg${o.tiling.wg}`];
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

/** Params uniform, field for field as in the WGSL struct. */
export function actQuantParams(inFeatures: number, rank: number, t: ActQuantTiling): number[] {
  return [inFeatures, activationWordsPerRow(inFeatures), rankChunks(rank, t), 0];
}

/** Grid: (splits, tokens) with tokens spread over y and z past the per-dimension limit. */
export function actQuantDispatch(splits: number, tokens: number, maxPerDim: number): [number, number, number] {
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

/** L_A [in, rank] row-major -> [chunk][in][rankChunk], zero-padded (the kernel's read order). */
export function regroupLowRankA(la: Float32Array, inFeatures: number, rank: number, t: ActQuantTiling): Float32Array {
  const rc = t.rankChunk;
  const chunks = rankChunks(rank, t);
  const out = new Float32Array(chunks * inFeatures * rc);
  for (let k = 0; k < inFeatures; k++) {
    for (let j = 0; j < rank; j++) {
      const c = Math.floor(j / rc);
      out[(c * inFeatures + k) * rc + (j % rc)] = la[k * rank + j]!;
    }
  }
  return out;
}
