/// <reference types="@webgpu/types" />
// Quantized W4A8/A6/A4 LinearOp with ASER's low-rank side path.
//   fused (default): kernel A (w4a8_act_quant: smoothing, per-token absmax, int8 lanes, s_x, and
//                    t = x̃·L_A) then kernel B (w4a8_matmul: dot4I8Packed GEMV/GEMM with the epilogue
//                    y = s_x·s_w·acc + t·L_B + bias). Two dispatches per layer.
//   unfused:         act-quant, int matmul, x·L_A, ·L_B and an add as separate dispatches (the baseline
//                    the fused path is measured against; L_A has the smoothing folded into its rows).
// Scratch (quantized activations, s_x, partial t) is shared by every quantized layer on a device:
// layers run one after another, so one set sized for the largest layer serves all of them.
import type { GpuContext } from '../core/gpu.js';
import type { LinearOp } from './linear.js';
import type { PipelineCache } from './pipelines.js';
import { ACTIVATION_BITS_TEXT, isActivationBits, type QuantizedLinear } from '../core/quantized.js';
import { createBuffer, uniformBuffer, uploadBuffer } from './buffers.js';
import { f32ToF16Array } from '../core/dtype.js';
import { createDenseLinear } from './dense-linear.js';
import { BindGroupCache, checkActivationBuffers, tokenChunks, type TokenChunk } from './linear-support.js';
import { sliceW4Rows, w4Blocks, w4WordCount, W4_WORDS_PER_BLOCK } from '../core/w4-layout.js';
import { actQuantDispatch, actQuantParams, actQuantSpec, actQuantSplits, actQuantTiling, activationQmax, activationWordsPerRow, inverseSmoothing, lowRankFormat, rankChunks, regroupLowRankA, type ActQuantTiling, type LowRankFormat } from '../kernels/w4a8_act_quant.js';
import { rankCapacity, w4GemmDispatch, w4GemvDispatch, w4MatmulParams, w4MatmulSpec, w4MatmulTiling, type W4MatmulTiling } from '../kernels/w4a8_matmul.js';
import { vecAddDispatch, vecAddSpec } from '../kernels/vec_add.js';
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

// ---------------------------------------------------------------- shared scratch
interface ScratchSizes {
  xq: number;
  sx: number;
  tpart: number;
  t: number;
  y2: number;
}
const SCRATCH_KEYS: Array<keyof ScratchSizes> = ['xq', 'sx', 'tpart', 't', 'y2'];

/** One set of scratch buffers per device, grown (and re-created, bumping `generation`) when a new layer needs more. */
class ScratchPool {
  private sizes: ScratchSizes = { xq: 4, sx: 4, tpart: 4, t: 4, y2: 4 };
  private buffers?: Record<keyof ScratchSizes, GPUBuffer>;
  generation = 0;
  constructor(private readonly device: GPUDevice) {}

  reserve(need: ScratchSizes): void {
    let grew = false;
    for (const k of SCRATCH_KEYS) {
      if (need[k] > this.sizes[k]) {
        this.sizes[k] = need[k];
        grew = true;
      }
    }
    if (grew && this.buffers) {
      // Only happens while layers are being created (before a forward is encoded).
      for (const k of SCRATCH_KEYS) this.buffers[k].destroy();
      this.buffers = undefined;
      this.generation++;
    }
  }

  get(): Record<keyof ScratchSizes, GPUBuffer> {
    if (!this.buffers) {
      const b = {} as Record<keyof ScratchSizes, GPUBuffer>;
      for (const k of SCRATCH_KEYS) b[k] = createBuffer(this.device, this.sizes[k], `quantized-linear/scratch/${k}`);
      this.buffers = b;
    }
    return this.buffers;
  }

  get byteSize(): number {
    return this.buffers ? SCRATCH_KEYS.reduce((n, k) => n + this.buffers![k].size, 0) : 0;
  }

  release(): void {
    if (this.buffers) for (const k of SCRATCH_KEYS) this.buffers[k].destroy();
    this.buffers = undefined;
    this.generation++;
  }
}

const pools = new WeakMap<GPUDevice, ScratchPool>();
function scratchPool(device: GPUDevice): ScratchPool {
  let p = pools.get(device);
  if (!p) {
    p = new ScratchPool(device);
    pools.set(device, p);
  }
  return p;
}

/** GPU bytes of the scratch shared by all quantized layers on this device. */
export function quantizedScratchBytes(device: GPUDevice): number {
  return pools.get(device)?.byteSize ?? 0;
}

/** Frees the shared scratch (after every quantized layer of the device is destroyed or idle). */
export function releaseQuantizedScratch(device: GPUDevice): void {
  pools.get(device)?.release();
}

// ---------------------------------------------------------------- validation
function validate(q: QuantizedLinear, label: string): void {
  const bad = (reason: string): never => {
    throw new LinearConfigError(label, reason);
  };
  const { inFeatures: K, outFeatures: N } = q;
  if (!Number.isInteger(K) || !Number.isInteger(N) || K < 1 || N < 1) bad(`shape [${N}, ${K}] must be positive integers`);
  if (q.wBits !== 4) bad(`wBits = ${q.wBits}; only 4-bit weights are supported`);
  if (!isActivationBits(q.aBits)) bad(`aBits = ${q.aBits}; expected ${ACTIVATION_BITS_TEXT}`);
  if (q.qweight.length !== w4WordCount(N, K)) bad(`qweight has ${q.qweight.length} words, expected ${w4WordCount(N, K)} for [${N}, ${K}] (core/w4-layout.ts)`);
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
  if (K > 150_000) bad(`in = ${K} exceeds 150000, where the int32 accumulator (16·Σ|q_x·q_w|) could overflow`);
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

// ---------------------------------------------------------------- the op
export function createQuantizedLinear(gpu: GpuContext, cache: PipelineCache, q: QuantizedLinear, opts: QuantizedLinearOptions): QuantizedLinearOp {
  const label = opts.label;
  validate(q, label);
  if (!gpu.features.packedDot4) throw new LinearConfigError(label, 'this adapter lacks WGSL packed_4x8_integer_dot_product (dot4I8Packed)');
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new LinearConfigError(label, `maxTokens = ${opts.maxTokens} must be a positive integer`);
  activationQmax(q.aBits);

  const device = gpu.device;
  const fused = opts.fused ?? true;
  const K = q.inFeatures;
  const N = q.outFeatures;
  const rank = q.rank;
  const lowRank = lowRankFormat(gpu, rank);
  const aTiling: ActQuantTiling = { ...actQuantTiling(gpu), ...opts.actQuantTiling };
  const mTiling: W4MatmulTiling = { ...w4MatmulTiling(gpu), ...opts.matmulTiling };
  const wordsPerRow = activationWordsPerRow(K);
  const rankPad = rankChunks(rank, aTiling) * aTiling.rankChunk;
  const maxBinding = Math.min(opts.maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize);
  const maxPerDim = gpu.limits.maxComputeWorkgroupsPerDimension;
  const owned: GPUBuffer[] = [];
  const own = (b: GPUBuffer) => (owned.push(b), b);

  // Weight slices along `out` (each re-packed on its own, so a slice is a whole layout of its rows).
  const blockBytes = W4_WORDS_PER_BLOCK * 4 * w4Blocks(K);
  const maxSlice = Math.min(opts.maxSliceBytes ?? gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const rowsPerSlice = Math.floor(maxSlice / blockBytes);
  if (rowsPerSlice < 1) throw new LinearConfigError(label, `one packed row (${blockBytes} bytes) exceeds the ${maxSlice}-byte binding limit`);
  const slices: Slice[] = [];
  for (let rowStart = 0; rowStart < N; rowStart += rowsPerSlice) {
    const rows = Math.min(rowsPerSlice, N - rowStart);
    const words = rows === N ? q.qweight : sliceW4Rows(q.qweight, N, K, rowStart, rowStart + rows);
    const name = rows === N ? `${label}/qweight` : `${label}/qweight[${rowStart}:${rowStart + rows}]`;
    slices.push({
      rowStart,
      rows,
      qweight: own(uploadBuffer(device, words, name)),
      params: own(uniformBuffer(device, w4MatmulParams(K, N, rowStart, rows, fused ? rank : 0, rankPad), 'uuuuuuuu', `${name}/params`)),
    });
  }
  const wScale = own(uploadBuffer(device, q.wScale, `${label}/wScale`));
  const bias = q.bias ? own(uploadBuffer(device, q.bias, `${label}/bias`)) : undefined;
  const invSmooth = q.smooth ? inverseSmoothing(q.smooth) : undefined;
  const invSmoothBuf = invSmooth ? own(uploadBuffer(device, invSmooth, `${label}/invSmooth`)) : undefined;
  const aParams = own(uniformBuffer(device, actQuantParams(K, fused ? rank : 0, aTiling), 'uuuu', `${label}/act_quant/params`));
  const accDbg = opts.debugAcc ? own(createBuffer(device, opts.maxTokens * N * 4, `${label}/acc_dbg`)) : undefined;

  // Side path: fused keeps L_A regrouped for kernel A and L_B [r, out] for the epilogue; unfused runs
  // it as two dense products (L_A with the smoothing folded into its rows) and an add.
  let laBuf: GPUBuffer | undefined;
  let lbBuf: GPUBuffer | undefined;
  let denseA: LinearOp | undefined;
  let denseB: LinearOp | undefined;
  if (rank > 0 && fused) {
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

  // Scratch needs of this layer, for any token count up to maxTokens.
  let tpartRows = opts.maxTokens;
  for (let t = 1; t <= Math.min(opts.maxTokens, aTiling.targetWorkgroups); t++) tpartRows = Math.max(tpartRows, t * actQuantSplits(t, K, aTiling));
  const pool = scratchPool(device);
  pool.reserve({
    xq: opts.maxTokens * wordsPerRow * 4,
    sx: opts.maxTokens * 4,
    tpart: fused && rank > 0 ? tpartRows * rankPad * 4 : 4,
    t: !fused && rank > 0 ? opts.maxTokens * rank * 4 : 4,
    y2: !fused && rank > 0 ? opts.maxTokens * N * 4 : 4,
  });

  const lrActive: LowRankFormat = fused ? lowRank : 'none';
  const aPipeline = cache.get(actQuantSpec({ aBits: q.aBits, smooth: !!invSmoothBuf, lowRank: lrActive, subgroups: gpu.features.subgroups, tiling: aTiling }));
  const bOpts = { hasBias: !!bias, lowRank: lrActive, tMax: rankCapacity(rank), debugAcc: !!accDbg, tiling: mTiling };
  const gemv = cache.get(w4MatmulSpec('gemv', bOpts));
  const gemm = cache.get(w4MatmulSpec('gemm', bOpts));
  const addPipeline = denseB ? cache.get(vecAddSpec()) : undefined;

  interface Step {
    stage: 'act_quant' | 'matmul';
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    workgroups: [number, number, number];
  }
  const bindGroups = new BindGroupCache<Step[]>();
  let generation = -1;

  const rowBytes = 4 * Math.max(K, N, wordsPerRow);
  const build = (x: GPUBuffer, y: GPUBuffer, tokens: number): Step[] => {
    const s = pool.get();
    const steps: Step[] = [];
    const chunks = tokenChunks(tokens, rowBytes, maxBinding);
    for (const c of chunks) steps.push(...buildChunk(s, x, y, c));
    return steps;
  };

  const buildChunk = (s: Record<keyof ScratchSizes, GPUBuffer>, x: GPUBuffer, y: GPUBuffer, c: TokenChunk): Step[] => {
    const steps: Step[] = [];
    const n = c.count;
    const splits = actQuantSplits(n, K, aTiling);
    const xRange = { buffer: x, offset: c.t0 * K * 4, size: n * K * 4 };
    const yRange = { buffer: y, offset: c.t0 * N * 4, size: n * N * 4 };
    // Scratch is bound from offset 0 for every chunk: chunks run one after another in the pass.
    const xqRange = { buffer: s.xq, offset: 0, size: n * wordsPerRow * 4 };
    const sxRange = { buffer: s.sx, offset: 0, size: n * 4 };
    const tpartRange = { buffer: s.tpart, offset: 0, size: n * splits * rankPad * 4 };

    const aEntries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: aParams } },
      { binding: 1, resource: xRange },
      { binding: 2, resource: xqRange },
      { binding: 3, resource: sxRange },
    ];
    if (invSmoothBuf) aEntries.push({ binding: 4, resource: { buffer: invSmoothBuf } });
    if (laBuf) aEntries.push({ binding: 5, resource: { buffer: laBuf } }, { binding: 6, resource: tpartRange });
    steps.push({
      stage: 'act_quant',
      pipeline: aPipeline,
      bindGroup: device.createBindGroup({ layout: aPipeline.getBindGroupLayout(0), entries: aEntries, label: `${label}/act_quant` }),
      workgroups: actQuantDispatch(splits, n, maxPerDim),
    });

    const useGemv = n <= mTiling.gemvMaxTokens;
    const bPipeline = useGemv ? gemv : gemm;
    for (const sl of slices) {
      const entries: GPUBindGroupEntry[] = [
        { binding: 0, resource: { buffer: sl.params } },
        { binding: 1, resource: xqRange },
        { binding: 2, resource: sxRange },
        { binding: 3, resource: { buffer: sl.qweight } },
        { binding: 4, resource: { buffer: wScale } },
        { binding: 5, resource: yRange },
      ];
      if (bias) entries.push({ binding: 6, resource: { buffer: bias } });
      if (lbBuf) entries.push({ binding: 7, resource: tpartRange }, { binding: 8, resource: { buffer: lbBuf } });
      if (accDbg) entries.push({ binding: 9, resource: { buffer: accDbg, offset: 0, size: n * N * 4 } });
      steps.push({
        stage: 'matmul',
        pipeline: bPipeline,
        bindGroup: device.createBindGroup({ layout: bPipeline.getBindGroupLayout(0), entries, label: `${label}/w4a8_matmul` }),
        workgroups: useGemv ? w4GemvDispatch(sl.rows, n, mTiling, maxPerDim) : w4GemmDispatch(sl.rows, n, mTiling),
      });
    }
    return steps;
  };

  // Unfused tail: t = x·(diag(1/m)L_A), y2 = t·L_B, y += y2 (add chunked like everything else).
  const addSteps = new BindGroupCache<Step[]>();
  const buildAdd = (y: GPUBuffer, y2: GPUBuffer, tokens: number): Step[] =>
    tokenChunks(tokens, N * 4, maxBinding).map((c) => ({
      stage: 'matmul' as const,
      pipeline: addPipeline!,
      bindGroup: device.createBindGroup({
        layout: addPipeline!.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: y, offset: c.t0 * N * 4, size: c.count * N * 4 } },
          { binding: 1, resource: { buffer: y2, offset: c.t0 * N * 4, size: c.count * N * 4 } },
        ],
        label: `${label}/vec_add`,
      }),
      workgroups: vecAddDispatch(c.count * N, maxPerDim),
    }));

  const run = (pass: GPUComputePassEncoder, steps: Step[], only?: Step['stage']) => {
    for (const st of steps) {
      if (only && st.stage !== only) continue;
      pass.setPipeline(st.pipeline);
      pass.setBindGroup(0, st.bindGroup);
      pass.dispatchWorkgroups(...st.workgroups);
    }
  };

  const prepare = (x: GPUBuffer, y: GPUBuffer, tokens: number): Step[] => {
    checkActivationBuffers(label, x, y, tokens, K, N, opts.maxTokens);
    if (generation !== pool.generation) {
      bindGroups.clear();
      addSteps.clear();
      generation = pool.generation;
    }
    return bindGroups.get(x, y, tokens, () => build(x, y, tokens));
  };
  const encodeSide = (pass: GPUComputePassEncoder, x: GPUBuffer, y: GPUBuffer, tokens: number) => {
    if (!denseA || !denseB) return;
    const s = pool.get();
    denseA.encode(pass, x, s.t, tokens);
    denseB.encode(pass, s.t, s.y2, tokens);
    run(pass, addSteps.get(y, s.y2, tokens, () => buildAdd(y, s.y2, tokens)));
  };

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
      const s = pool.get();
      return {
        xq: s.xq,
        sx: s.sx,
        tpart: fused && rank > 0 ? s.tpart : undefined,
        acc: accDbg,
        wordsPerRow,
        rankPad,
        splits: (tokens) => actQuantSplits(tokens, K, aTiling),
      };
    },
    encode(pass, x, y, tokens) {
      run(pass, prepare(x, y, tokens));
      encodeSide(pass, x, y, tokens);
    },
    encodeStage(pass, x, y, tokens, stage) {
      const steps = prepare(x, y, tokens);
      if (stage === 'side') encodeSide(pass, x, y, tokens);
      else run(pass, steps, stage);
    },
    destroy() {
      for (const b of owned) b.destroy();
      denseA?.destroy();
      denseB?.destroy();
      bindGroups.clear();
      addSteps.clear();
      byteSize = 0;
    },
  };
  return op;
}
