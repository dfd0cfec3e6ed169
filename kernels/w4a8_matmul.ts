// Plan for kernels/w4a8_matmul.wgsl (kernel B): options -> defines, uniforms, dispatch. Pure functions.
import type { GpuContext } from '../core/gpu.js';
import type { KernelSpec } from '../core/kernel-spec.js';
import { isCpuAdapter, spreadGroups } from './matmul_dense.js';
import type { LowRankFormat } from './w4a8_act_quant.js';
import { W4_BLOCK_K } from '../core/w4-layout.js';

export interface W4MatmulTiling {
  /** GEMV: threads along rows × k-splits per row (a power of two); threads = rows · ksplit. */
  gemvRows: number;
  gemvKsplit: number;
  /** GEMV: rows per thread (strided by gemvRows); a workgroup owns gemvRows · gemvRowsPerThread rows. */
  gemvRowsPerThread: number;
  /** GEMM: TM tokens × TN rows per workgroup, TKB 32-wide blocks per k step, RM×RN outputs per thread. */
  tm: number;
  tn: number;
  tkb: number;
  rm: number;
  rn: number;
  /** GEMM epilogue: rank columns staged per pass. */
  rc2: number;
  /** Token counts up to this use GEMV. */
  gemvMaxTokens: number;
}

/** Workgroup bytes the GEMM tile needs (activations, weights, and the side-path staging). */
export function w4GemmSharedBytes(t: W4MatmulTiling, lowRank: boolean): number {
  return 4 * (t.tkb * 8 * t.tm + t.tkb * 4 * t.tn + (lowRank ? t.rc2 * (t.tm + t.tn) : 0));
}

/**
 * From the adapter's limits: a 64×64 GEMM tile with 4×4 outputs per thread (256 threads, the WebGPU
 * minimum) and 2 blocks (64 k) per step uses 14 KiB with the side-path staging, under the 16 KiB
 * every adapter offers; halved where fewer invocations are allowed (8×8 per thread on CPUs). GEMV on a GPU: 32 rows × 8
 * k-splits, so a warp reads 32 neighbouring 16-byte blocks and a 4096-row layer has 128 workgroups.
 * On CPU adapters a workgroup is a loop on one core: 8 rows (one SIMD vector), no k-split.
 */
export function w4MatmulTiling(gpu: GpuContext): W4MatmulTiling {
  const l = gpu.limits;
  const cpu = isCpuAdapter(gpu);
  let tm = 64, tn = 64;
  // CPU: 8×8 outputs per thread (64 threads): ~2× over 4×4 on llvmpipe (fewer gathers per dot4).
  const rm = cpu ? 8 : 4, rn = cpu ? 8 : 4;
  while ((tm / rm) * (tn / rn) > l.maxComputeInvocationsPerWorkgroup) { tm /= 2; tn /= 2; }
  const t: W4MatmulTiling = {
    gemvRows: cpu ? 8 : 32,
    gemvKsplit: cpu ? 1 : 8,
    gemvRowsPerThread: cpu ? 4 : 1,
    tm, tn, tkb: 2, rm, rn, rc2: 16,
    gemvMaxTokens: cpu ? 2 : 4,
  };
  while (t.gemvRows * t.gemvKsplit > l.maxComputeInvocationsPerWorkgroup) t.gemvKsplit /= 2;
  while (w4GemmSharedBytes(t, true) > l.maxComputeWorkgroupStorageSize && t.tkb > 1) t.tkb /= 2;
  return t;
}

export interface W4MatmulOptions {
  hasBias: boolean;
  lowRank: LowRankFormat;
  /** Capacity of the GEMV's t vector in workgroup memory (≥ rank). */
  tMax: number;
  /** Also write the exact int32 accumulators (tests). */
  debugAcc: boolean;
  tiling: W4MatmulTiling;
}

/** Smallest power of two ≥ max(rank, 16): few distinct pipelines across layers of different ranks. */
export function rankCapacity(rank: number): number {
  let c = 16;
  while (c < rank) c *= 2;
  return c;
}

export function w4MatmulSpec(entry: 'gemv' | 'gemm', o: W4MatmulOptions): KernelSpec {
  const t = o.tiling;
  const defines = {
    HAS_BIAS: o.hasBias,
    HAS_LR: o.lowRank !== 'none',
    LR_F16: o.lowRank === 'f16',
    DEBUG_ACC: o.debugAcc,
    T_MAX: o.tMax,
    GEMV_ROWS: t.gemvRows,
    GEMV_KSPLIT: t.gemvKsplit,
    GEMV_RPT: t.gemvRowsPerThread,
    TM: t.tm,
    TN: t.tn,
    TKB: t.tkb,
    RM: t.rm,
    RN: t.rn,
    RC2: t.rc2,
  };
  const flags = [
    o.hasBias ? 'bias' : '',
    o.lowRank === 'none' ? '' : `lr${o.lowRank}`,
    o.debugAcc ? 'dbg' : '',
    entry === 'gemv' ? `r${t.gemvRows}x${t.gemvRowsPerThread}k${t.gemvKsplit}` : `t${t.tm}x${t.tn}x${t.tkb * W4_BLOCK_K}`,
  ];
  return { shader: 'w4a8_matmul.wgsl', entryPoint: entry, defines, label: `w4a8_matmul_${entry}_${flags.filter(Boolean).join('_')}` };
}

/** Params uniform, field for field as in the WGSL struct. */
export function w4MatmulParams(inFeatures: number, outTotal: number, outOffset: number, sliceRows: number, rank: number, rankPad: number): number[] {
  const blocks = Math.ceil(inFeatures / W4_BLOCK_K);
  return [blocks, blocks * 8, outTotal, outOffset, sliceRows, rank, rankPad, 0];
}

export function w4GemvDispatch(sliceRows: number, tokens: number, t: W4MatmulTiling, maxPerDim: number): [number, number, number] {
  const [gx, gz] = spreadGroups(Math.ceil(sliceRows / (t.gemvRows * t.gemvRowsPerThread)), maxPerDim);
  return [gx, tokens, gz];
}

export function w4GemmDispatch(sliceRows: number, tokens: number, t: W4MatmulTiling): [number, number, number] {
  return [Math.ceil(sliceRows / t.tn), Math.ceil(tokens / t.tm), 1];
}
