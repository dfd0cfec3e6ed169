// Plan for kernels/matmul_dense.wgsl: shape, weight format and adapter limits -> spec (defines, the
// pipeline key), named bindings, grid, uniforms and the bytes of what it binds. Pure functions; the
// runtime (runtime/dense-linear.ts) owns the buffers.
import type { GpuContext } from '../core/gpu.js';
import type { KernelSpec } from '../core/kernel-spec.js';
import { bindingsInOrder, MAX_WORKGROUPS_PER_DIM, packUniforms, type BindingBytes, type SizedKernelPlan } from './kernel_plan.js';

/** How weights are stored on the GPU. 'f16' reads native f16 when shader-f16 was granted, else u32 pairs. */
export type DenseWeightFormat = 'f32' | 'f16' | 'f16-packed';

export interface DenseTiling {
  /** GEMV: threads per workgroup (a power of two: the reduction is a halving tree) and output rows per workgroup. */
  gemvWg: number;
  gemvRows: number;
  /** GEMM: tile of TM tokens × TN outputs, k step TK (a multiple of 4), RM×RN outputs per thread. */
  tm: number;
  tn: number;
  tk: number;
  rm: number;
  rn: number;
  /** Token counts up to this use the GEMV entry point (one workgroup row per token). */
  gemvMaxTokens: number;
}

/** True for CPU rasterizers (llvmpipe, SwiftShader, WARP): wide workgroups only add loop overhead there. */
export function isCpuAdapter(gpu: GpuContext): boolean {
  const a = gpu.adapterInfo;
  return /llvmpipe|lavapipe|swiftshader|warp|cpu/i.test(`${a.description} ${a.device} ${a.architecture}`);
}

/**
 * Tile sizes from the adapter's limits. WebGPU guarantees 256 invocations and 16 KiB of workgroup
 * memory; the 64×64 GEMM tile uses 256 threads and TK·(TM+TN)·4 bytes: TK = 32 (16 KiB) where the
 * adapter offers it (every conforming one), else 16. CPU adapters run a workgroup as a loop on one
 * core, so narrower GEMV workgroups with more rows each cut the reduction overhead there.
 */
export function denseTiling(gpu: GpuContext): DenseTiling {
  const l = gpu.limits;
  const cpu = isCpuAdapter(gpu);
  const maxInv = Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  // CPU: one SIMD vector per workgroup (measured on llvmpipe, 4096×4096: 8×8 ≈ 3× faster than 64×8).
  const gemvRows = cpu ? 8 : 4;
  // Thread r writes row r after the reduction, so a workgroup needs at least gemvRows threads
  // (SwiftShader reports 4-wide subgroups: 4 threads would leave half the rows unwritten).
  let gemvWg = cpu ? Math.min(16, Math.max(gemvRows, gpu.limits.subgroupMaxSize)) : 256;
  while (gemvWg > maxInv) gemvWg /= 2;
  // CPU: 8×8 outputs per thread (64 threads) halves the workgroup-memory traffic per FMA, which is
  // what llvmpipe pays for (each lane's shared load is a gather): ~2× over 4×4 measured at 1024².
  let tm = 64, tn = 64;
  const rm = cpu ? 8 : 4, rn = cpu ? 8 : 4;
  while ((tm / rm) * (tn / rn) > l.maxComputeInvocationsPerWorkgroup) { tm /= 2; tn /= 2; }
  const tk = 32 * (tm + tn) * 4 <= l.maxComputeWorkgroupStorageSize ? 32 : 16;
  return { gemvWg, gemvRows, tm, tn, tk, rm, rn, gemvMaxTokens: cpu ? 2 : 4 };
}

export function denseWeightFormat(gpu: GpuContext, dtype: 'f32' | 'f16'): DenseWeightFormat {
  if (dtype === 'f32') return 'f32';
  return gpu.features.shaderF16 ? 'f16' : 'f16-packed';
}

/** Bytes per stored weight element. */
export function denseElementBytes(format: DenseWeightFormat): number {
  return format === 'f32' ? 4 : 2;
}

/** Weight row stride in elements: `in` padded to whole vec4s. */
export function denseRowStride(inFeatures: number): number {
  return Math.ceil(inFeatures / 4) * 4;
}

/**
 * The shader's resources by name, in `@binding` order: index i is `@binding(i)` in matmul_dense.wgsl
 * (weight = this slice's rows, padded to denseRowStride; bias only with hasBias). The one place the
 * TypeScript side writes these numbers.
 */
export const DENSE_MATMUL_BINDINGS = ['params', 'x', 'weight', 'y', 'bias'] as const;
export type DenseMatmulBinding = (typeof DENSE_MATMUL_BINDINGS)[number];

/** The shader's two entry points: GEMV for a few tokens (decode), tiled GEMM past tiling.gemvMaxTokens. */
export type DenseEntry = 'gemv' | 'gemm';

export interface DenseMatmulShape {
  /** Tokens of this dispatch (one token chunk of a call). */
  tokens: number;
  inFeatures: number;
  /** The layer's output features: the row stride of y and bias. */
  outFeatures: number;
  /** This weight slice: output rows [rowStart, rowStart + rows). */
  rowStart: number;
  rows: number;
  /**
   * The entry point (default: denseEntry(tokens)). A call split into token chunks keeps the entry its
   * whole token count picks for every chunk, so the runtime passes it.
   */
  entry?: DenseEntry;
}

export interface DensePlanOptions {
  format: DenseWeightFormat;
  hasBias: boolean;
  tiling: DenseTiling;
}

export interface DenseMatmulOptions extends DensePlanOptions {
  /** The adapter's maxComputeWorkgroupsPerDimension (default: the WebGPU minimum); shapes the GEMV grid only. */
  maxWorkgroupsPerDim?: number;
}

export type DenseMatmulBuffers = BindingBytes<DenseMatmulBinding>;
export type DenseMatmulPlan = SizedKernelPlan<DenseMatmulBinding>;

/** GEMV for up to tiling.gemvMaxTokens tokens, else GEMM. */
export function denseEntry(tokens: number, t: Pick<DenseTiling, 'gemvMaxTokens'>): DenseEntry {
  return tokens <= t.gemvMaxTokens ? 'gemv' : 'gemm';
}

/** One dispatch of y[:, rowStart:rowStart+rows] = x · W_sliceᵀ (+ bias) over `tokens` tokens. */
export function planDenseMatmul(s: DenseMatmulShape, o: DenseMatmulOptions): DenseMatmulPlan {
  const entry = s.entry ?? denseEntry(s.tokens, o.tiling);
  return {
    spec: denseKernelSpec(entry, o),
    workgroups: entry === 'gemv'
      ? gemvDispatch(s.rows, s.tokens, o.tiling, o.maxWorkgroupsPerDim ?? MAX_WORKGROUPS_PER_DIM)
      : gemmDispatch(s.rows, s.tokens, o.tiling),
    uniforms: denseMatmulUniforms(s),
    bindings: bindingsInOrder(DENSE_MATMUL_BINDINGS, (b) => b !== 'bias' || o.hasBias),
    buffers: {
      x: s.tokens * s.inFeatures * 4,
      weight: s.rows * denseRowStride(s.inFeatures) * denseElementBytes(o.format),
      y: s.tokens * s.outFeatures * 4,
      bias: o.hasBias ? s.outFeatures * 4 : 0,
    },
    // This slice's weight rows and bias entries, x; y is only written.
    reads: {
      x: s.tokens * s.inFeatures * 4,
      weight: s.rows * denseRowStride(s.inFeatures) * denseElementBytes(o.format),
      y: 0,
      bias: o.hasBias ? s.rows * 4 : 0,
    },
  };
}

/** Compile-time facts only: everything here changes shader text. */
export function denseKernelSpec(entry: DenseEntry, o: DensePlanOptions): KernelSpec {
  const t = o.tiling;
  const defines = {
    W_F16: o.format === 'f16',
    W_F16_PACKED: o.format === 'f16-packed',
    HAS_BIAS: o.hasBias,
    GEMV_WG: t.gemvWg,
    GEMV_ROWS: t.gemvRows,
    TM: t.tm,
    TN: t.tn,
    TK: t.tk,
    RM: t.rm,
    RN: t.rn,
  };
  const flags = [o.format, o.hasBias ? 'bias' : '', entry === 'gemv' ? `wg${t.gemvWg}r${t.gemvRows}` : `t${t.tm}x${t.tn}x${t.tk}`]
    .filter(Boolean)
    .join('_');
  return { shader: 'matmul_dense.wgsl', entryPoint: entry, defines, label: `matmul_dense_${entry}_${flags}` };
}

/**
 * Params uniform, field for field as in the WGSL struct (u32 each): in_features, row_stride4,
 * out_total, out_offset, slice_rows, 3 × pad. Token counts are not in it (the kernel reads
 * arrayLength), so a slice's uniform serves every call.
 */
export function denseMatmulUniforms(s: Pick<DenseMatmulShape, 'inFeatures' | 'outFeatures' | 'rowStart' | 'rows'>): ArrayBuffer {
  return packUniforms([s.inFeatures, denseRowStride(s.inFeatures) / 4, s.outFeatures, s.rowStart, s.rows, 0, 0, 0], 'uuuuuuuu');
}

/** Splits `groups` workgroups over x and z when it exceeds the per-dimension limit (the kernel flattens x + z·nx). */
export function spreadGroups(groups: number, maxPerDim: number): [number, number] {
  if (groups <= maxPerDim) return [groups, 1];
  const z = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / z), z];
}

function gemvDispatch(sliceRows: number, tokens: number, t: DenseTiling, maxPerDim: number): [number, number, number] {
  const [gx, gz] = spreadGroups(Math.ceil(sliceRows / t.gemvRows), maxPerDim);
  return [gx, tokens, gz];
}

function gemmDispatch(sliceRows: number, tokens: number, t: DenseTiling): [number, number, number] {
  return [Math.ceil(sliceRows / t.tn), Math.ceil(tokens / t.tm), 1];
}
