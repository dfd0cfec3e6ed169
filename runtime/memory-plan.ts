// GPU memory a model will need before anything is allocated: weights (dense or W4A8 + low-rank side
// path), embedding and classifier, KV cache and the executor's activation buffers, in bytes, plus the
// tensors too large for one storage binding (those are split by rows across bindings). Pure arithmetic
// on a ModelConfig; the figures follow the buffers runtime/executor.ts creates, and for the W4A8
// linears they are the sums of what their kernels' plans bind (kernels/w4a8_*.ts) and of the scratch
// runtime/quantized-linear.ts reserves.
import { BLOCK_LINEARS, type BlockLinearName, type ModelConfig } from '../core/model.js';
import { w4Blocks, w4WordCount } from '../core/w4-layout.js';
import { weightWordsPerBlock } from '../core/w8-layout.js';
import { classifierWeightBits, DEFAULT_CLASSIFIER_FORMAT, type ClassifierFormat } from '../core/quantized.js';
import { denseMatmulUniforms, denseRowStride } from '../kernels/matmul_dense.js';
import {
  actQuantBuffers, actQuantUniforms, paddedRank, type ActQuantTiling, type LowRankFormat,
} from '../kernels/w4a8_act_quant.js';
import { w4MatmulBuffers, w4MatmulUniforms, w4RowsPerSlice, type W4Segment } from '../kernels/w4a8_matmul.js';
import { quantizedLinearScratch, type QuantizedScratchName } from './quantized-linear.js';
import { MemoryPlanError } from './errors.js';

export type PlanWeights = 'f32' | 'f16' | 'w4a8';

export interface MemoryPlanOptions {
  /** Block linears: dense f32/f16, or packed int4 + per-channel scales + f16 L_A/L_B + smoothing. */
  weights: PlanWeights;
  /**
   * w4a8 side-path rank: one for every block linear, or one per linear in layer-major, BLOCK_LINEARS
   * order (nLayers·7 values, e.g. from an artifact's manifest). Wins over `alpha`.
   */
  rank?: number | number[];
  /** ASER rank threshold α: the rank is the mean-rank estimate meanRankForAlpha(α, dim). */
  alpha?: number;
  /** Outlier channels per linear kept in floating point: extra side-path columns on top of the rank (default 0). */
  outliers?: number;
  /** Per-input-channel smoothing vectors (w4a8; default true). */
  smoothing?: boolean;
  /**
   * L_A/L_B element type on the GPU: f16 where shader-f16 is granted (default), f32 otherwise, int8
   * for an artifact written with `--lowrank-dtype int8` (the unfused path's dense side path stays f16).
   */
  lowRankDtype?: 'f16' | 'f32' | 'int8';
  /** KV-cache length in tokens (the executor's maxSeqLen). */
  ctx: number;
  kvDtype: 'f32' | 'f16';
  /** Tokens per prefill chunk (the executor's maxBatchTokens): sizes the activation buffers. */
  maxBatchTokens: number;
  /**
   * The classifier: 'dense' in tableDtype, or an artifact's format ('f16' dense; 'int8'/'int4' packed
   * rows + per-row scales through the integer kernels). Default: DEFAULT_CLASSIFIER_FORMAT for w4a8
   * (what `aser quantize` writes), 'dense' otherwise.
   */
  classifier?: 'dense' | ClassifierFormat;
  /** Embedding/classifier storage (default: f32 for f32 weights, else f16). */
  tableDtype?: 'f32' | 'f16';
  /**
   * 'gpu': the whole table on the GPU. 'host': rows are gathered on the CPU and uploaded per chunk, so
   * only the classifier holds vocab·dim on the GPU. 'auto' (default): the executor's rule, host when
   * vocab·dim ≥ 2^26 (runtime/executor.ts HOST_EMBEDDING_MIN_VALUES).
   */
  embedding?: 'auto' | 'gpu' | 'host';
  /** w4a8: the fused two-kernel path (default, the executor's) or the unfused baseline (dense L_A/L_B ops, t/y2 scratch). */
  fused?: boolean;
  /**
   * w4a8, fused: q|k|v and gate|up run as one group each (one smoothing vector, L_A's columns side by
   * side, one kernel A/B pair over the stacked rows), as the executor runs an artifact whose linears
   * of one input share aBits and smoothing (default true on the fused path).
   */
  groups?: boolean;
  /**
   * Kernel A's tiling (kernels/w4a8_act_quant.ts actQuantTiling): sets L_A's column padding and the
   * partial-product scratch. Default: the GPU tiling (rank chunk 8, 256 target workgroups).
   */
  actQuantTiling?: ActQuantTiling;
  /** Largest storage binding (default 128 MiB, the WebGPU default limit). */
  maxStorageBufferBindingSize?: number;
}

/** One line of the breakdown. */
export interface MemoryPlanItem {
  key: 'weights' | 'scales' | 'lowRank' | 'smoothing' | 'biases' | 'uniforms' | 'norms' | 'embedding' | 'classifier' | 'kvCache' | 'activations' | 'w4a8Scratch';
  label: string;
  bytes: number;
  /** How the figure is computed, in words. */
  note: string;
}

/** A tensor (or a family of identically shaped ones) larger than one storage binding. */
export interface SplitTensor {
  name: string;
  /** How many tensors of this shape the model has. */
  count: number;
  bytes: number;
  /** Bindings one such tensor is split across (by rows). */
  bindings: number;
}

export interface MemoryPlan {
  config: ModelConfig;
  options: Required<Omit<MemoryPlanOptions, 'rank' | 'alpha' | 'embedding'>> & { rank?: number | number[]; alpha?: number; embedding: 'gpu' | 'host' };
  /** Mean side-path columns per block linear (rank + outliers); 0 for dense weights. */
  meanRank: number;
  /** Where the rank came from. */
  rankSource: 'none' | 'rank' | 'alpha';
  items: MemoryPlanItem[];
  total: number;
  largestTensor: { name: string; bytes: number };
  split: SplitTensor[];
}

/** The WebGPU default maxStorageBufferBindingSize: what every adapter grants without raised limits. */
export const DEFAULT_MAX_BINDING_BYTES = 128 * 1024 * 1024;

/** Kernel A's tiling on GPUs (kernels/w4a8_act_quant.ts actQuantTiling for a non-CPU adapter). */
export const GPU_ACT_QUANT_TILING: ActQuantTiling = { wg: 128, rankChunk: 8, targetWorkgroups: 256, minBlocksPerSplit: 2 };
/** Same value as runtime/executor.ts HOST_EMBEDDING_MIN_VALUES (not imported: the plan stays free of GPU code). */
const HOST_EMBEDDING_MIN_VALUES = 1 << 26;
/** Bytes of one dense weight slice's params uniform (kernels/matmul_dense.ts: 8 u32, whatever the shape). */
const SLICE_PARAMS_BYTES = denseMatmulUniforms({ inFeatures: 1, outFeatures: 1, rowStart: 0, rows: 1 }).byteLength;
/** What createBuffer allocates for n bytes (runtime/buffers.ts); nothing where nothing is bound. */
const allocated = (n: number) => (n > 0 ? Math.max(4, Math.ceil(n / 4) * 4) : 0);

/**
 * ASER paper Table 4 (Qwen-7B, d = 4096): α → mean rank over all linears. 0 → 0 added as the end point.
 */
export const ALPHA_MEAN_RANK_D4096: ReadonlyArray<readonly [number, number]> = [
  [0, 0], [0.015, 5.41], [0.03, 14.0], [0.05, 30.58], [0.075, 49.6], [0.1, 59.93],
];

/**
 * Mean side-path rank for threshold α: linear interpolation in Table 4 (measured at d = 4096), scaled
 * by dim/4096 for other widths (an assumption: rank grows with width). α outside [0, 0.1] has no
 * measured estimate; pass an explicit rank instead.
 */
export function meanRankForAlpha(alpha: number, dim = 4096): number {
  const table = ALPHA_MEAN_RANK_D4096;
  const last = table[table.length - 1]![0];
  if (!(alpha >= 0 && alpha <= last)) throw new MemoryPlanError(`α = ${alpha} is outside [0, ${last}], where the paper's Table 4 gives mean ranks; give a rank instead`);
  let i = 1;
  while (table[i]![0] < alpha) i++;
  const [a0, r0] = table[i - 1]!;
  const [a1, r1] = table[i]!;
  return (r0 + ((alpha - a0) / (a1 - a0)) * (r1 - r0)) * (dim / 4096);
}

/** [in, out] of each block linear. */
export function linearShapes(c: ModelConfig): Record<BlockLinearName, { in: number; out: number }> {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  return {
    'self_attn.q_proj': { in: c.dim, out: q },
    'self_attn.k_proj': { in: c.dim, out: kv },
    'self_attn.v_proj': { in: c.dim, out: kv },
    'self_attn.o_proj': { in: q, out: c.dim },
    'mlp.gate_proj': { in: c.dim, out: c.hiddenDim },
    'mlp.up_proj': { in: c.dim, out: c.hiddenDim },
    'mlp.down_proj': { in: c.hiddenDim, out: c.dim },
  };
}

/** Rows of logits the classifier computes at once: as many as fit 64 MiB (the executor's MAX_LOGITS_BYTES). */
function headRows(vocab: number, maxBatchTokens: number, maxBinding: number): number {
  return Math.max(1, Math.min(maxBatchTokens, Math.floor(Math.min(64 << 20, maxBinding) / (vocab * 4))));
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new MemoryPlanError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Per-linear side-path ranks (error rank only, before outliers), layer-major, BLOCK_LINEARS order. */
function resolveRanks(c: ModelConfig, o: MemoryPlanOptions): { ranks: number[]; source: MemoryPlan['rankSource'] } {
  const n = c.nLayers * BLOCK_LINEARS.length;
  if (o.weights !== 'w4a8') {
    if (o.rank !== undefined || o.alpha !== undefined) throw new MemoryPlanError(`a rank or α only applies to w4a8 weights, not ${o.weights}`);
    return { ranks: [], source: 'none' };
  }
  const shapes = linearShapes(c);
  const cap = (i: number) => { const s = shapes[BLOCK_LINEARS[i % BLOCK_LINEARS.length]!.name]; return Math.min(s.in, s.out); };
  if (Array.isArray(o.rank)) {
    if (o.rank.length !== n) throw new MemoryPlanError(`${o.rank.length} per-linear ranks given; the model has ${c.nLayers} layers × ${BLOCK_LINEARS.length} linears = ${n}`);
    o.rank.forEach((r, i) => {
      if (!(Number.isInteger(r) && r >= 0 && r <= cap(i))) throw new MemoryPlanError(`rank[${i}] = ${r} must be an integer in 0..${cap(i)}`);
    });
    return { ranks: [...o.rank], source: 'rank' };
  }
  if (o.rank !== undefined) {
    if (!(Number.isFinite(o.rank) && o.rank >= 0)) throw new MemoryPlanError(`rank must be a non-negative number, got ${o.rank}`);
    return { ranks: Array.from({ length: n }, (_, i) => Math.min(o.rank as number, cap(i))), source: 'rank' };
  }
  if (o.alpha !== undefined) {
    const r = meanRankForAlpha(o.alpha, c.dim);
    return { ranks: Array.from({ length: n }, (_, i) => Math.min(r, cap(i))), source: 'alpha' };
  }
  return { ranks: Array.from({ length: n }, () => 0), source: 'none' };
}

/** The breakdown of GPU memory for `config` run with `options`. */
export function planMemory(config: ModelConfig, options: MemoryPlanOptions): MemoryPlan {
  const c = config;
  const ctx = positiveInt('ctx', options.ctx);
  const B = positiveInt('maxBatchTokens', options.maxBatchTokens);
  if (options.weights !== 'f32' && options.weights !== 'f16' && options.weights !== 'w4a8') throw new MemoryPlanError(`weights must be f32, f16 or w4a8, got ${String(options.weights)}`);
  const outliers = options.outliers ?? 0;
  if (!(Number.isInteger(outliers) && outliers >= 0)) throw new MemoryPlanError(`outliers must be a non-negative integer, got ${outliers}`);
  const maxBinding = options.maxStorageBufferBindingSize ?? DEFAULT_MAX_BINDING_BYTES;
  positiveInt('maxStorageBufferBindingSize', maxBinding);
  const w4 = options.weights === 'w4a8';
  const resolved: MemoryPlan['options'] = {
    ...options,
    weights: options.weights,
    outliers: w4 ? outliers : 0,
    smoothing: w4 && (options.smoothing ?? true),
    lowRankDtype: options.lowRankDtype ?? 'f16',
    ctx, kvDtype: options.kvDtype, maxBatchTokens: B,
    tableDtype: options.tableDtype ?? (options.weights === 'f32' ? 'f32' : 'f16'),
    embedding: (options.embedding ?? 'auto') === 'auto' ? (c.vocabSize * c.dim >= HOST_EMBEDDING_MIN_VALUES ? 'host' : 'gpu') : (options.embedding as 'gpu' | 'host'),
    fused: options.fused ?? true,
    classifier: options.classifier ?? (options.weights === 'w4a8' ? DEFAULT_CLASSIFIER_FORMAT : 'dense'),
    groups: options.groups ?? true,
    actQuantTiling: options.actQuantTiling ?? GPU_ACT_QUANT_TILING,
    maxStorageBufferBindingSize: maxBinding,
  };
  if (resolved.kvDtype !== 'f32' && resolved.kvDtype !== 'f16') throw new MemoryPlanError(`kvDtype must be f32 or f16, got ${String(resolved.kvDtype)}`);
  const { ranks, source } = resolveRanks(c, options);

  const shapes = linearShapes(c);
  // The unfused path's dense x·L_A and t·L_B (int8 factors run there as f16).
  const lrBytes = resolved.lowRankDtype === 'f32' ? 4 : 2;
  const denseBytes = options.weights === 'f32' ? 4 : 2;
  const tiling = resolved.actQuantTiling;
  // Weight slices along `out`, each with its own params uniform (runtime/dense-linear.ts, quantized-linear.ts).
  const slicesOf = (rows: number, rowBytes: number) => Math.ceil(rows / Math.max(1, Math.floor(maxBinding / rowBytes)));
  const denseRowBytes = (inF: number, bytes: number) => denseRowStride(inF) * bytes;
  let weights = 0, scales = 0, lowRank = 0, smoothing = 0, sideCols = 0, maxSide = 0, uniforms = 0;
  // Scratch shared by every quantized linear (the executor's ScratchPool): per buffer, the max over linears.
  const scratch: Partial<Record<QuantizedScratchName, number>> = {};
  const scratchByShape = new Map<string, Record<QuantizedScratchName, number>>();
  for (let l = 0; l < c.nLayers; l++) {
    if (!w4) {
      // The executor fuses q|k|v and gate|up of dense layers: one op (and slice set) per group.
      const groups: BlockLinearName[][] = [['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], ['self_attn.o_proj'], ['mlp.gate_proj', 'mlp.up_proj'], ['mlp.down_proj']];
      for (const g of groups) {
        const inF = shapes[g[0]!].in;
        const out = g.reduce((n, name) => n + shapes[name].out, 0);
        weights += out * denseRowBytes(inF, denseBytes);
        uniforms += slicesOf(out, denseRowBytes(inF, denseBytes)) * SLICE_PARAMS_BYTES;
      }
      continue;
    }
    // Ops of the layer: a group's members' side-path columns, each rounded up as its linear's.
    const colsOf = (name: BlockLinearName) => ranks[l * BLOCK_LINEARS.length + BLOCK_LINEARS.findIndex((b) => b.name === name)]! + resolved.outliers;
    const grouped = resolved.fused && resolved.groups;
    const ops: BlockLinearName[][] = grouped
      ? [['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], ['self_attn.o_proj'], ['mlp.gate_proj', 'mlp.up_proj'], ['mlp.down_proj']]
      : BLOCK_LINEARS.map(({ name }) => [name]);
    for (const names of ops) {
      const s = { in: shapes[names[0]!].in, out: names.reduce((n, name) => n + shapes[name].out, 0) };
      const cols = names.reduce((n, name) => n + colsOf(name), 0);
      const whole = names.reduce((n, name) => n + Math.ceil(colsOf(name)), 0); // a fractional mean-rank estimate rounds up per linear
      const segments = names.length > 1 ? names.reduce<W4Segment[]>((segs, name) => {
        const prev = segs[segs.length - 1];
        const rowStart = prev ? prev.rowStart + prev.rows : 0;
        const rankOffset = prev ? prev.rankOffset + prev.rank : 0;
        return [...segs, { rowStart, rows: shapes[name].out, rankOffset, rank: Math.ceil(colsOf(name)) }];
      }, []) : undefined;
      const lrFormat: LowRankFormat = whole > 0 ? resolved.lowRankDtype : 'none';
      // What the kernels bind (runtime/quantized-linear.ts): the fused path carries the side path in
      // them (L_A regrouped and padded to whole rank chunks, L_B [r, out]); the unfused one runs them at
      // rank 0 next to two dense ops. Sizes do not depend on the token count used here, nor on bias
      // (counted under `biases`).
      const kernelRank = resolved.fused ? whole : 0;
      const kernelLowRank: LowRankFormat = kernelRank > 0 ? lrFormat : 'none';
      const rankPad = paddedRank(whole, tiling);
      const a = actQuantBuffers({ tokens: B, inFeatures: s.in, rank: kernelRank }, { smooth: resolved.smoothing, lowRank: kernelLowRank, tiling });
      smoothing += allocated(a.inv_m);
      lowRank += allocated(a.la) + allocated(a.la_scale);
      uniforms += actQuantUniforms(s.in, kernelRank, tiling).byteLength;
      // One weight slice (packed rows + params uniform) per binding's worth of rows; s_w and L_B are whole-layer buffers.
      const rowsPerSlice = Math.max(1, w4RowsPerSlice(s.in, maxBinding));
      for (let rowStart = 0; rowStart < s.out; rowStart += rowsPerSlice) {
        const slice = { tokens: B, inFeatures: s.in, outFeatures: s.out, rowStart, rows: Math.min(rowsPerSlice, s.out - rowStart), rank: kernelRank, rankPad, splits: 1, segments: kernelRank > 0 ? segments : undefined };
        const m = w4MatmulBuffers(slice, { hasBias: false, lowRank: kernelLowRank, debugAcc: false });
        weights += allocated(m.qw);
        uniforms += w4MatmulUniforms(slice).byteLength;
        if (rowStart === 0) {
          scales += allocated(m.sw);
          lowRank += allocated(m.lb) + allocated(m.lb_scale);
        }
      }
      if (whole > 0 && !resolved.fused) {
        // Unfused: x·L_A and t·L_B as dense ops (one slice each at these sizes).
        lowRank += whole * denseRowBytes(s.in, lrBytes) + s.out * denseRowBytes(whole, lrBytes);
        uniforms += (slicesOf(whole, denseRowBytes(s.in, lrBytes)) + slicesOf(s.out, denseRowBytes(whole, lrBytes))) * SLICE_PARAMS_BYTES;
      }
      const key = `${s.in}|${s.out}|${whole}`; // linears repeat few shapes; each scans up to B token counts
      let need = scratchByShape.get(key);
      if (!need) scratchByShape.set(key, (need = quantizedLinearScratch({ inFeatures: s.in, outFeatures: s.out, rank: whole, maxTokens: B, fused: resolved.fused }, { smooth: resolved.smoothing, lowRank: lrFormat, tiling })));
      for (const [k, bytes] of Object.entries(need) as Array<[QuantizedScratchName, number]>) scratch[k] = Math.max(scratch[k] ?? 0, bytes);
      sideCols += cols;
      for (const name of names) maxSide = Math.max(maxSide, colsOf(name));
    }
  }
  const nLinears = c.nLayers * BLOCK_LINEARS.length;
  const meanRank = w4 ? sideCols / nLinears : 0;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const biases = c.attentionBias ? c.nLayers * (qDim + 2 * kvDim) * 4 : 0;
  const norms = (2 * c.nLayers + 1) * c.dim * 4;
  const tableBytes = resolved.tableDtype === 'f32' ? 4 : 2;
  // The GPU embedding table is unpadded [vocab, dim]; the classifier is a dense op (rows padded to vec4).
  const embedding = resolved.embedding === 'gpu' ? c.vocabSize * c.dim * tableBytes : 0;
  // The classifier (tied or not, its own copy): dense rows padded to vec4, or packed int8/int4 rows in
  // weight slices with per-row scales and kernel A's params, as runtime/quantized-linear.ts binds them.
  const classifierBits = resolved.classifier === 'dense' ? undefined : classifierWeightBits(resolved.classifier);
  const classifierDenseBytes = resolved.classifier === 'f16' ? 2 : tableBytes;
  const classifierRowBytes = classifierBits ? weightWordsPerBlock(classifierBits) * 4 * w4Blocks(c.dim) : denseRowBytes(c.dim, classifierDenseBytes);
  let classifier = 0;
  if (classifierBits) {
    const rowsPerSlice = Math.max(1, w4RowsPerSlice(c.dim, maxBinding, classifierBits));
    for (let rowStart = 0; rowStart < c.vocabSize; rowStart += rowsPerSlice) {
      const slice = { tokens: 1, inFeatures: c.dim, outFeatures: c.vocabSize, rowStart, rows: Math.min(rowsPerSlice, c.vocabSize - rowStart), rank: 0, rankPad: 0, splits: 1 };
      classifier += allocated(w4MatmulBuffers(slice, { hasBias: false, lowRank: 'none', debugAcc: false, weightBits: classifierBits }).qw);
      uniforms += w4MatmulUniforms(slice).byteLength;
    }
    classifier += allocated(c.vocabSize * 4);
    uniforms += actQuantUniforms(c.dim, 0, tiling).byteLength;
    const need = quantizedLinearScratch({ inFeatures: c.dim, outFeatures: c.vocabSize, rank: 0, maxTokens: headRows(c.vocabSize, B, maxBinding), fused: true }, { smooth: false, lowRank: 'none', tiling });
    for (const [k, bytes] of Object.entries(need) as Array<[QuantizedScratchName, number]>) scratch[k] = Math.max(scratch[k] ?? 0, bytes);
  } else {
    classifier = c.vocabSize * classifierRowBytes;
    uniforms += slicesOf(c.vocabSize, classifierRowBytes) * SLICE_PARAMS_BYTES;
  }
  const kvPerBuffer = ctx * kvDim * (resolved.kvDtype === 'f16' ? 2 : 4);
  const kvCache = 2 * c.nLayers * kvPerBuffer;

  const rows = headRows(c.vocabSize, B, maxBinding);
  const activationParts = {
    ids: B * 4,
    'x, xn, delta': 3 * B * c.dim * 4,
    'q, att': 2 * B * qDim * 4,
    'k, v': 2 * B * kvDim * 4,
    'gate, up, act': 3 * B * c.hiddenDim * 4,
    rope: ctx * (c.headDim / 2) * 8,
    headIn: rows * c.dim * 4,
    logits: rows * c.vocabSize * 4,
    'targets, nll': ctx * 4 + 2 * ctx * 8,
    'logits readback': c.vocabSize * 4,
    'sample scratch, out, readback': 2 * c.vocabSize * 4 + 2 * 8,
  };
  const activations = Object.values(activationParts).reduce((a, b) => a + b, 0);
  const w4a8Scratch = w4 ? Object.values(scratch).reduce((n, bytes) => n + allocated(bytes), 0) : 0;

  const perLinear = `${nLinears} linears`;
  const items: MemoryPlanItem[] = [
    { key: 'weights', label: w4 ? 'W4 weights (packed)' : `${options.weights} weights`, bytes: weights, note: w4 ? `${perLinear}, in·out/2 (in padded to 32)` : `${perLinear}, in·out·${denseBytes}` },
  ];
  if (w4) {
    items.push(
      { key: 'scales', label: 'weight scales', bytes: scales, note: 'f32 per output channel' },
      { key: 'lowRank', label: 'L_A, L_B', bytes: lowRank, note: `${resolved.lowRankDtype} r·(in+out), mean r = ${round2(meanRank)}${resolved.outliers ? ` (incl. ${resolved.outliers} outlier cols)` : ''}` },
      { key: 'smoothing', label: 'smoothing vectors', bytes: smoothing, note: resolved.smoothing ? 'f32 per linear input channel' : 'off' },
    );
  }
  if (biases) items.push({ key: 'biases', label: 'q/k/v biases', bytes: biases, note: 'f32' });
  items.push({ key: 'uniforms', label: 'kernel params', bytes: uniforms, note: 'one uniform per weight slice (+ kernel A per quantized linear)' });
  items.push(
    { key: 'norms', label: 'RMSNorm weights', bytes: norms, note: `f32, ${2 * c.nLayers + 1} × dim` },
    { key: 'embedding', label: 'embedding', bytes: embedding, note: resolved.embedding === 'gpu' ? `${resolved.tableDtype} vocab·dim` : 'kept on the host (rows uploaded per token)' },
    { key: 'classifier', label: 'classifier', bytes: classifier, note: `${classifierBits ? `${resolved.classifier} vocab·dim + f32 scales` : `${resolved.classifier === 'f16' ? 'f16' : resolved.tableDtype} vocab·dim`}${c.tiedEmbeddings ? ' (tied: its own copy of the table)' : ''}` },
    { key: 'kvCache', label: 'KV cache', bytes: kvCache, note: `2·${c.nLayers} layers·${ctx} ctx·${c.nKvHeads}·${c.headDim} ${resolved.kvDtype}` },
    { key: 'activations', label: 'activations', bytes: activations, note: `f32, ${B}-token batch, ${rows} logit rows` },
  );
  if (w4) items.push({ key: 'w4a8Scratch', label: 'w4a8 scratch', bytes: w4a8Scratch, note: resolved.fused ? 'xq, s_x, partial x̃·L_A products' : 'xq, s_x, t = x·L_A, y2 = t·L_B' });
  const total = items.reduce((n, it) => n + it.bytes, 0);

  // Largest single tensors, by family; row-split where one exceeds the binding limit.
  const families: Array<{ name: string; count: number; rows: number; rowBytes: number }> = [];
  for (const { name } of BLOCK_LINEARS) {
    const s = shapes[name];
    const rowBytes = w4 ? w4WordCount(1, s.in) * 4 : denseRowStride(s.in) * denseBytes;
    families.push({ name: `layers.*.${name}.weight`, count: c.nLayers, rows: s.out, rowBytes });
  }
  if (embedding) families.push({ name: 'model.embed_tokens.weight', count: 1, rows: c.vocabSize, rowBytes: c.dim * tableBytes });
  if (classifier) families.push({ name: c.tiedEmbeddings ? 'model.embed_tokens.weight (classifier)' : 'lm_head.weight', count: 1, rows: c.vocabSize, rowBytes: classifierRowBytes });
  families.push({ name: 'kv cache (per layer, K or V)', count: 2 * c.nLayers, rows: ctx, rowBytes: kvDim * (resolved.kvDtype === 'f16' ? 2 : 4) });
  families.push({ name: 'gate/up/act activations', count: 3, rows: B, rowBytes: c.hiddenDim * 4 });
  families.push({ name: 'logits', count: 1, rows, rowBytes: c.vocabSize * 4 });
  let largestTensor = { name: '', bytes: 0 };
  const split: SplitTensor[] = [];
  for (const f of families) {
    const bytes = f.rows * f.rowBytes;
    if (bytes > largestTensor.bytes) largestTensor = { name: f.name, bytes };
    if (bytes > maxBinding) {
      const rowsPerBinding = Math.floor(maxBinding / f.rowBytes);
      if (rowsPerBinding < 1) throw new MemoryPlanError(`one row of ${f.name} (${f.rowBytes} bytes) exceeds the ${maxBinding}-byte binding limit`);
      split.push({ name: f.name, count: f.count, bytes, bindings: Math.ceil(f.rows / rowsPerBinding) });
    }
  }
  return { config: c, options: resolved, meanRank, rankSource: source, items, total, largestTensor, split };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
