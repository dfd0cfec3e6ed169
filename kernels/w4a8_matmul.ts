// Plan for kernels/w4a8_matmul.wgsl (kernel B): shape + options -> spec (defines), named bindings,
// grid, uniforms and the bytes of every buffer it binds. Pure functions; the runtime
// (runtime/quantized-linear.ts) owns the buffers.
import type { GpuContext } from '../core/gpu.js';
import type { KernelSpec } from '../core/kernel-spec.js';
import { bindingsInOrder, MAX_WORKGROUPS_PER_DIM, packUniforms, type BindingBytes, type SizedKernelPlan } from './kernel_plan.js';
import { isCpuAdapter, spreadGroups } from './matmul_dense.js';
import { activationWordsPerRow, lowRankValueBytes, type LowRankFormat } from './w4a8_act_quant.js';
import { w4Blocks, W4_BLOCK_K } from '../core/w4-layout.js';
import { weightWordsPerBlock } from '../core/w8-layout.js';

/** Weight widths of kernel B: int4 (core/w4-layout.ts) or per-channel int8 (core/w8-layout.ts). */
export type WeightBits = 4 | 8;


/**
 * The GEMV's inner product: `dot4` = dot4I8Packed on 4 int8 lanes (hardware on GPUs); `swar` = two
 * products per i32 multiply-add on offset nibbles (see block_dot_u in the shader); `imad` = lanes
 * sign-extended to i32 and multiplied one by one; `f32` = lanes converted to f32 and multiplied with
 * fma, each 32-wide block summed exactly in f32 (integers below 2^24) and added as i32 (block_dot8_f32).
 */
export type W4GemvInner = 'dot4' | 'swar' | 'imad' | 'f32';

export interface W4MatmulTiling {
  gemvInner: W4GemvInner;
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
export function w4GemmSharedBytes(t: W4MatmulTiling, lowRank: boolean, weightBits: WeightBits = 4): number {
  return 4 * (t.tkb * 8 * t.tm + t.tkb * weightWordsPerBlock(weightBits) * t.tn + (lowRank ? t.rc2 * (t.tm + t.tn) : 0));
}

/**
 * From the adapter's limits: a 64×64 GEMM tile with 4×4 outputs per thread (256 threads, the WebGPU
 * minimum) and 2 blocks (64 k) per step uses 14 KiB with the side-path staging, under the 16 KiB
 * every adapter offers; halved where fewer invocations are allowed (8×8 per thread on CPUs). GEMV on a GPU: 32 rows × 8
 * k-splits, so a warp reads 32 neighbouring 16-byte blocks and a 4096-row layer has 128 workgroups,
 * with the hardware dot4I8Packed.
 * On CPU adapters a workgroup is a loop on one core: 8 rows (one SIMD vector), no k-split. There the
 * int4 GEMV is bound by arithmetic, not bytes, and llvmpipe emulates dot4I8Packed lane by lane: SWAR
 * (two products per i32 multiply-add) with 8 rows per thread measured fastest at LLaMA-3-8B shapes
 * (bench/kernels.ts `gemv:` variants; 4 rows per thread left the activation unpacking less shared,
 * 16 spilled). int8 weights keep dot4I8Packed and 4 rows per thread (SWAR's bounds need 4-bit weights;
 * 8 rows of two vec4 loads each measured slower). The exact f32-FMA inner (`f32`) measured no
 * consistently faster than dot4 or imad for W8 on llvmpipe (4096→32768 and gate/up, same runs, loaded
 * machine): the products do cost (with them removed the GEMV ran 1.3–1.8× faster), but sign-extending
 * and converting each lane to f32 costs about what the emulated dot4 / vpmulld saves.
 */
export function w4MatmulTiling(gpu: GpuContext, weightBits: WeightBits = 4): W4MatmulTiling {
  const l = gpu.limits;
  const cpu = isCpuAdapter(gpu);
  let tm = 64, tn = 64;
  // CPU: 8×8 outputs per thread (64 threads): ~2× over 4×4 on llvmpipe (fewer gathers per dot4).
  const rm = cpu ? 8 : 4, rn = cpu ? 8 : 4;
  while ((tm / rm) * (tn / rn) > l.maxComputeInvocationsPerWorkgroup) { tm /= 2; tn /= 2; }
  const t: W4MatmulTiling = {
    gemvInner: cpu && weightBits === 4 ? 'swar' : 'dot4',
    gemvRows: cpu ? 8 : 32,
    gemvKsplit: cpu ? 1 : 8,
    gemvRowsPerThread: cpu ? (weightBits === 4 ? 8 : 4) : 1,
    tm, tn, tkb: 2, rm, rn, rc2: 16,
    gemvMaxTokens: cpu ? 2 : 4,
  };
  while (t.gemvRows * t.gemvKsplit > l.maxComputeInvocationsPerWorkgroup) t.gemvKsplit /= 2;
  while (w4GemmSharedBytes(t, true, weightBits) > l.maxComputeWorkgroupStorageSize && t.tkb > 1) t.tkb /= 2;
  return t;
}

/**
 * The shader's resources by name, in `@binding` order: index i is `@binding(i)` in w4a8_matmul.wgsl
 * (qw = packed weight slice, sw = per-channel weight scales). The one place the TypeScript side writes
 * these numbers.
 */
export const W4_MATMUL_BINDINGS = ['params', 'xq', 'sx', 'qw', 'sw', 'y', 'bias', 'tpart', 'lb', 'acc_dbg', 'lb_scale'] as const;
export type W4MatmulBinding = (typeof W4_MATMUL_BINDINGS)[number];

/** Side-path segments a kernel B handles at most (q|k|v needs 3). */
export const W4_MAX_SEGMENTS = 4;

/**
 * One linear of a stacked group (q|k|v, gate|up): output rows [rowStart, rowStart + rows) of the
 * stacked layer, side-path rank `rank` reading t's columns [rankOffset, rankOffset + rank). Its L_B
 * ([rank, rows] row-major) follows the previous segments' in the stacked L_B buffer.
 */
export interface W4Segment {
  rowStart: number;
  rows: number;
  rankOffset: number;
  rank: number;
}

/** Elements of the stacked L_B: Σ rank_s · rows_s (no block-diagonal zeros). */
export function w4SegmentsLbElements(segments: readonly W4Segment[]): number {
  return segments.reduce((n, s) => n + s.rank * s.rows, 0);
}

/** The one segment of a plain (unstacked) linear. */
export function singleSegment(outFeatures: number, rank: number): W4Segment[] {
  return [{ rowStart: 0, rows: outFeatures, rankOffset: 0, rank }];
}

export interface W4MatmulShape {
  tokens: number;
  inFeatures: number;
  /** The layer's output features: the row stride of y, s_w, bias and L_B. */
  outFeatures: number;
  /** This weight slice: output rows [rowStart, rowStart + rows). */
  rowStart: number;
  rows: number;
  /** Side-path rank of the epilogue (0: none). */
  rank: number;
  /** Kernel A's partial t: rankPad columns (w4a8_act_quant.ts paddedRank), `splits` partial sums per token. */
  rankPad: number;
  splits: number;
  /** Side-path segments (default: one covering every row with the whole rank); ranks sum to `rank`. */
  segments?: readonly W4Segment[];
}

export interface W4MatmulOptions {
  /** 4 (default): int4 weights in core/w4-layout.ts; 8: per-channel int8 in core/w8-layout.ts. */
  weightBits?: WeightBits;
  hasBias: boolean;
  /** The epilogue adds into y instead of storing (the residual add after o_proj / down_proj). */
  residual?: boolean;
  /** L_B's storage; 'none' exactly when the shape's rank is 0. */
  lowRank: LowRankFormat;
  /** Capacity of the GEMV's t vector in workgroup memory (≥ rank). */
  tMax: number;
  /** Also write the exact int32 accumulators (tests). */
  debugAcc: boolean;
  tiling: W4MatmulTiling;
  /** The adapter's maxComputeWorkgroupsPerDimension (default: the WebGPU minimum); shapes the grid only. */
  maxWorkgroupsPerDim?: number;
}

export type W4MatmulBuffers = BindingBytes<W4MatmulBinding>;
export type W4MatmulPlan = SizedKernelPlan<W4MatmulBinding>;

/** GEMV for a few tokens (decode), tiled GEMM past tiling.gemvMaxTokens. */
export function planW4Matmul(s: W4MatmulShape, o: W4MatmulOptions): W4MatmulPlan {
  const lowRank = s.rank > 0;
  if (lowRank !== (o.lowRank !== 'none')) throw new RangeError(`planW4Matmul: rank ${s.rank} with low-rank storage '${o.lowRank}'`);
  const gemv = s.tokens <= o.tiling.gemvMaxTokens;
  const maxPerDim = o.maxWorkgroupsPerDim ?? MAX_WORKGROUPS_PER_DIM;
  const optional: Partial<Record<W4MatmulBinding, boolean>> = { bias: o.hasBias, tpart: lowRank, lb: lowRank, acc_dbg: o.debugAcc, lb_scale: o.lowRank === 'int8' };
  return {
    spec: w4MatmulSpec(gemv ? 'gemv' : 'gemm', o),
    workgroups: gemv ? w4GemvDispatch(s.rows, s.tokens, o.tiling, maxPerDim) : w4GemmDispatch(s.rows, s.tokens, o.tiling),
    uniforms: w4MatmulUniforms(s),
    bindings: bindingsInOrder(W4_MATMUL_BINDINGS, (b) => optional[b] ?? true),
    buffers: w4MatmulBuffers(s, o),
    reads: w4MatmulReads(s, o),
  };
}

/** Bytes one dispatch reads: this slice's packed rows and its rows of s_w, bias and L_B; y (and acc_dbg) are only written. */
export function w4MatmulReads(s: W4MatmulShape, o: Pick<W4MatmulOptions, 'hasBias' | 'lowRank' | 'debugAcc'>): Omit<W4MatmulBuffers, 'params'> {
  const b = w4MatmulBuffers(s, o);
  const lowRank = s.rank > 0 && o.lowRank !== 'none';
  return {
    ...b, y: 0, acc_dbg: 0, sw: s.rows * 4, bias: o.hasBias ? s.rows * 4 : 0,
    lb: lowRank ? s.rank * s.rows * lowRankValueBytes(o.lowRank) : 0,
  };
}

/** The bytes planW4Matmul binds (its `buffers`), without the spec: what memory plans size. */
export function w4MatmulBuffers(s: W4MatmulShape, o: Pick<W4MatmulOptions, 'hasBias' | 'lowRank' | 'debugAcc' | 'weightBits'>): W4MatmulBuffers {
  const lowRank = s.rank > 0 && o.lowRank !== 'none';
  return {
    xq: s.tokens * activationWordsPerRow(s.inFeatures) * 4,
    sx: s.tokens * 4,
    qw: s.rows * w4Blocks(s.inFeatures) * weightWordsPerBlock(o.weightBits ?? 4) * 4,
    sw: s.outFeatures * 4,
    y: s.tokens * s.outFeatures * 4,
    bias: o.hasBias ? s.outFeatures * 4 : 0,
    tpart: lowRank ? s.tokens * s.splits * s.rankPad * 4 : 0,
    // int8: 4 lanes a u32 word, the whole stacked L_B rounded up to a word.
    lb: lowRank ? Math.ceil(w4SegmentsLbElements(s.segments ?? singleSegment(s.outFeatures, s.rank)) * lowRankValueBytes(o.lowRank) / 4) * 4 : 0,
    acc_dbg: o.debugAcc ? s.tokens * s.outFeatures * 4 : 0,
    lb_scale: lowRank && o.lowRank === 'int8' ? s.rank * 4 : 0,
  };
}

/** Output rows per weight slice: as many whole packed rows as fit `maxSliceBytes` (one binding). */
export function w4RowsPerSlice(inFeatures: number, maxSliceBytes: number, weightBits: WeightBits = 4): number {
  return Math.floor(maxSliceBytes / (weightWordsPerBlock(weightBits) * 4 * w4Blocks(inFeatures)));
}

/** Smallest power of two ≥ max(rank, 16): few distinct pipelines across layers of different ranks. */
export function rankCapacity(rank: number): number {
  let c = 16;
  while (c < rank) c *= 2;
  return c;
}

/** One entry point's spec (planW4Matmul picks the entry; the runtime compiles both up front). */
export function w4MatmulSpec(entry: 'gemv' | 'gemm', o: W4MatmulOptions): KernelSpec {
  const t = o.tiling;
  const w8 = o.weightBits === 8;
  const defines = {
    W8: w8,
    W_WORDS_PER_BLOCK: weightWordsPerBlock(o.weightBits ?? 4),
    HAS_BIAS: o.hasBias,
    RESIDUAL: !!o.residual,
    HAS_LR: o.lowRank !== 'none',
    LR_F16: o.lowRank === 'f16',
    LR_I8: o.lowRank === 'int8',
    DEBUG_ACC: o.debugAcc,
    T_MAX: o.tMax,
    MAX_SEGS: W4_MAX_SEGMENTS,
    GEMV_ROWS: t.gemvRows,
    GEMV_KSPLIT: t.gemvKsplit,
    GEMV_RPT: t.gemvRowsPerThread,
    // SWAR's bounds hold for 4-bit weights only: W8 takes the plain multiply-adds instead.
    GEMV_SWAR: t.gemvInner === 'swar' && !w8,
    GEMV_IMAD: t.gemvInner === 'imad' || (t.gemvInner === 'swar' && w8),
    GEMV_F32: t.gemvInner === 'f32',
    TM: t.tm,
    TN: t.tn,
    TKB: t.tkb,
    RM: t.rm,
    RN: t.rn,
    RC2: t.rc2,
  };
  const flags = [
    w8 ? 'w8' : '',
    o.hasBias ? 'bias' : '',
    o.residual ? 'residual' : '',
    o.lowRank === 'none' ? '' : `lr${o.lowRank}`,
    o.debugAcc ? 'dbg' : '',
    entry === 'gemv' ? `${w8 && t.gemvInner === 'swar' ? 'imad' : t.gemvInner}_r${t.gemvRows}x${t.gemvRowsPerThread}k${t.gemvKsplit}` : `t${t.tm}x${t.tn}x${t.tkb * W4_BLOCK_K}`,
  ];
  return { shader: 'w4a8_matmul.wgsl', entryPoint: entry, defines, label: `w4a8_matmul_${entry}_${flags.filter(Boolean).join('_')}` };
}

/**
 * Params uniform, field for field as in the WGSL struct: in_blocks, words_per_row, out_total,
 * out_offset, slice_rows, rank, rank_pad, n_segs, then per segment (row_start, row_end, rank_off,
 * rank), (lb_off, 0, 0, 0). Token counts are not in it (kernels read arrayLength).
 */
export function w4MatmulUniforms(s: Omit<W4MatmulShape, 'tokens' | 'splits'>): ArrayBuffer {
  const blocks = Math.ceil(s.inFeatures / W4_BLOCK_K);
  const segments = checkSegments(s);
  const table = new Array<number>(8 * W4_MAX_SEGMENTS).fill(0);
  let lbOff = 0;
  segments.forEach((g, i) => {
    table.splice(8 * i, 8, g.rowStart, g.rowStart + g.rows, g.rankOffset, g.rank, lbOff, 0, 0, 0);
    lbOff += g.rank * g.rows;
  });
  const head = [blocks, blocks * 8, s.outFeatures, s.rowStart, s.rows, s.rank, s.rankPad, s.rank > 0 ? segments.length : 0];
  return packUniforms([...head, ...table], 'u'.repeat(head.length + table.length));
}

/** The shape's segments, checked: they tile [0, outFeatures) in order and their ranks sum to `rank`. */
function checkSegments(s: Pick<W4MatmulShape, 'outFeatures' | 'rank' | 'segments'>): readonly W4Segment[] {
  const segments = s.segments ?? singleSegment(s.outFeatures, s.rank);
  if (segments.length < 1 || segments.length > W4_MAX_SEGMENTS) throw new RangeError(`w4a8_matmul: ${segments.length} side-path segments (1..${W4_MAX_SEGMENTS})`);
  let row = 0, rank = 0;
  for (const g of segments) {
    if (g.rowStart !== row || g.rows < 1 || g.rankOffset !== rank || g.rank < 0) {
      throw new RangeError(`w4a8_matmul: segment rows [${g.rowStart}, +${g.rows}) rank [${g.rankOffset}, +${g.rank}) does not follow rows ${row}, rank ${rank}`);
    }
    row += g.rows;
    rank += g.rank;
  }
  if (row !== s.outFeatures || rank !== s.rank) throw new RangeError(`w4a8_matmul: segments cover ${row} rows and rank ${rank}, expected ${s.outFeatures} and ${s.rank}`);
  return segments;
}

function w4GemvDispatch(sliceRows: number, tokens: number, t: W4MatmulTiling, maxPerDim: number): [number, number, number] {
  const [gx, gz] = spreadGroups(Math.ceil(sliceRows / (t.gemvRows * t.gemvRowsPerThread)), maxPerDim);
  return [gx, tokens, gz];
}

function w4GemmDispatch(sliceRows: number, tokens: number, t: W4MatmulTiling): [number, number, number] {
  return [Math.ceil(sliceRows / t.tn), Math.ceil(tokens / t.tm), 1];
}
