/// <reference types="@webgpu/types" />
// The transformer executor: runs a LLaMA-family ModelSource on the GPU, f32 or f16 weights, f32
// activations. It owns every buffer, pipeline and bind group of the forward (created once in
// `create`, sized for maxBatchTokens and maxSeqLen) and records a forward chunk as one command
// buffer with one compute pass:
//
//   embedding → [rmsnorm] → per layer: q|k|v → rope_kv (RoPE + KV-cache write) → attention → o_proj
//   → rmsnorm_add (residual + post-attention norm) → gate|up → swiglu → down_proj
//   → rmsnorm_add (residual + next layer's input norm, or the final norm) → classifier
//
// Dense layers run q|k|v and gate|up as one projection each (weights stacked by rows); linears that
// linearFactory supplies (the quantized path) run one op per linear with the same kernels around them.
// Residual adds ride in the norm that follows them. The last layer's add is fused into the final
// norm, which runs only on the rows that need logits: the last row for `forward`, the scored rows for
// `nll` (whose log-softmax and target NLL run on the GPU too; full logit rows are never read back).
import { createBufferChecked } from './device.js';
import { GpuDeviceLostError, GpuOutOfMemoryError } from '../core/errors.js';
import { type GpuContext } from '../core/gpu.js';
import type { LinearOp } from './linear.js';
import { BLOCK_LINEARS, layerTensorName, type BlockLinearName, type LinearInputKind, type ModelConfig, type ModelSource } from '../core/model.js';
import { PipelineCache } from './pipelines.js';
import { createBuffer, readMappedF32, uploadBuffer } from './buffers.js';
import { bytesToF32, readTensorF32 } from '../core/dtype.js';
import { createDenseLinearStreamed, type DenseWeights } from './dense-linear.js';
import { QUANTIZED_SCRATCH_LABEL } from './quantized-linear.js';
import { ScratchPool } from './scratch-pool.js';
import { stackRows, tensorRows, type WeightRows } from './weight-rows.js';
import { WeightUploader, type UploadStats } from './weight-upload.js';
import { KvCache } from './kv-cache.js';
import type { GpuTimer } from './profiler.js';
import type { KernelPlan } from '../kernels/kernel_plan.js';
import { embeddingParts, planEmbedding } from '../kernels/embedding.js';
import { planRmsnorm } from '../kernels/rmsnorm.js';
import { planRopeKv, ropeTable } from '../kernels/rope_kv.js';
import { attentionVariant, planAttention, type AttentionVariant } from '../kernels/attention.js';
import { isCpuAdapter } from '../kernels/matmul_dense.js';
import { planSwiglu } from '../kernels/swiglu.js';
import { planLogsoftmaxNll, UNSCORED_TARGET } from '../kernels/logsoftmax_nll.js';
import { NumericsChecker } from './numerics.js';

export type ExecutorDType = 'f32' | 'f16';

/**
 * Returns a LinearOp to use for a block linear instead of the dense one, or undefined for dense.
 * `scratch` is the executor's pool for temporaries shared by such ops (quantized linears pass it as
 * their `scratch` option); the executor frees it and reports it as w4a8Scratch.
 */
export type LinearFactory = (layer: number, name: BlockLinearName, w: DenseWeights, scratch: ScratchPool) => LinearOp | undefined;

export interface ExecutorOptions {
  /** Weight storage of the dense path; 'f16' needs the shader-f16 feature. Activations are always f32. */
  dtype: ExecutorDType;
  /** KV-cache length (default min(config.maxSeqLen, 2048)); never more than config.maxSeqLen. */
  maxSeqLen?: number;
  /** Tokens per prefill dispatch (default min(512, maxSeqLen)); longer inputs run in chunks. */
  maxBatchTokens?: number;
  /** KV-cache element type (default: 'f16' when dtype is 'f16', else 'f32'). */
  kvDtype?: ExecutorDType;
  linearFactory?: LinearFactory;
  /** Rows per classifier sub-chunk in nll() (default: as many as fit 64 MiB of f32 logits, ≤ maxBatchTokens). */
  headRows?: number;
  /**
   * Fuse q|k|v and gate|up of dense layers into one projection each (default true): fewer, larger
   * dispatches. Layers whose linears come from linearFactory always run them separately.
   */
  fuseProjections?: boolean;
  /** Attention kernel variant (default 'auto': by adapter and rows per chunk; see kernels/attention.ts). */
  attention?: 'auto' | AttentionVariant;
  /** Share a pipeline cache with other users of the device (default: the executor's own). */
  pipelines?: PipelineCache;
  /**
   * Check every op output of every block for NaN/Inf (one submit and readback per layer: slow, for
   * debugging); the error names the first bad layer and op. Off by default, and then free.
   */
  checkNumerics?: boolean;
  /**
   * Where the embedding table lives (default 'auto': 'host' when it has ≥ 2^26 values, i.e. would not
   * fit the default 128 MiB binding even in f16, as for LLaMA-3's 128256 × 4096). 'host': rows a chunk
   * needs are read from the model and uploaded into the residual stream, no table on the GPU. A tied
   * classifier still gets its own copy of the matrix on the GPU.
   */
  embedding?: 'auto' | 'gpu' | 'host';
  /** Source bytes per streamed weight upload chunk (default 16 MiB; tests force many chunks with it). */
  uploadChunkBytes?: number;
}

/** Embedding tables with at least this many values stay on the host by default. */
export const HOST_EMBEDDING_MIN_VALUES = 1 << 26;

/** Bad options, a model the executor cannot run, or a call it cannot serve; the message says which. */
export class ExecutorError extends Error {
  override name = 'ExecutorError';
}

/** More tokens than the KV cache holds. */
export class ContextOverflowError extends ExecutorError {
  override name = 'ContextOverflowError';
}

/** NaN or ±Inf in the final logits, or (with checkNumerics) in a block's output; `where` says where. */
export class NonFiniteError extends ExecutorError {
  override name = 'NonFiniteError';
  constructor(
    message: string,
    readonly where: { step?: number; position?: number; layer?: number; op?: string } = {},
  ) {
    super(message);
  }
}

export type LinearInputCallback = (layer: number, kind: LinearInputKind, x: Float32Array, firstRow: number) => void | Promise<void>;

/**
 * The residual stream of a token sequence after layer `afterLayer`: `x` and its normed copy `xn` (the
 * next layer's input), each [tokens, dim] f32. Layer-by-layer calibration carries it from one pass to
 * the next so that a pass runs only its own layers, not every layer below them again.
 */
export interface ResidualState {
  afterLayer: number;
  x: Float32Array;
  xn: Float32Array;
}

export interface CaptureOptions {
  /** Layers to report; the forward stops after the last of them. */
  layers?: Iterable<number>;
  /** Start after `from.afterLayer` from this state of the same tokens instead of at the embedding. */
  from?: ResidualState;
  /** Return the state after the last layer run (undefined when that is the model's last layer). */
  keepState?: boolean;
}

export interface ExecutorMemory {
  /** blockLinears + embedding + classifier + norms. */
  weights: number;
  /** Block linear ops (dense, or whatever linearFactory returned) with their biases and params uniforms. */
  blockLinears: number;
  /** GPU embedding table (0 when kept on the host). */
  embedding: number;
  classifier: number;
  norms: number;
  kvCache: number;
  activations: number;
  /** Scratch shared by the quantized linears of this executor (its ScratchPool; runtime/quantized-linear.ts). */
  w4a8Scratch: number;
  total: number;
}

const DEFAULT_MAX_SEQ_LEN = 2048;
const DEFAULT_MAX_BATCH_TOKENS = 512;
/** Cap on the [rows, vocab] f32 logits scratch used by nll(): rows are classified in sub-chunks. */
const MAX_LOGITS_BYTES = 64 << 20;
// MAP_READ | COPY_DST and UNIFORM | COPY_DST as literals (globals may be absent at import time).
const READBACK_USAGE = 0x0001 | 0x0008;
const UNIFORM_USAGE = 0x0040 | 0x0008;

/** A projection op of a layer and the activation buffer it writes. */
interface Projection {
  op: LinearOp;
  /** Profile label: the linear's short name, or qkv_proj / gate_up_proj when fused. */
  kind: string;
  out: GPUBuffer;
}

interface Layer {
  /** q|k|v fused into one op (dense layers), or the three ops. */
  attnIn: Projection[];
  oProj: LinearOp;
  /** gate|up fused into one op (dense layers), or the two ops. */
  mlpIn: Projection[];
  downProj: LinearOp;
  qkvFused: boolean;
  gateUpFused: boolean;
  ropeKv: GPUBindGroup;
  swiglu: GPUBindGroup;
  attention: Record<AttentionVariant, GPUBindGroup>;
  /** x += o; xn = norm(x) · post_attention_layernorm */
  normPostAttn: GPUBindGroup;
  /** x += down; xn = norm(x) · next layer's input_layernorm (absent in the last layer) */
  normNext?: GPUBindGroup;
}

interface Pipelines {
  embedding: GPUComputePipeline;
  norm: GPUComputePipeline;
  normAdd: GPUComputePipeline;
  /** Indexed by whether q|k|v (gate|up) arrive fused in one buffer. */
  ropeKv: { fused: GPUComputePipeline; separate: GPUComputePipeline };
  attention: Record<AttentionVariant, GPUComputePipeline>;
  swiglu: { fused: GPUComputePipeline; separate: GPUComputePipeline };
  nll: GPUComputePipeline;
}

/** Classifier sub-chunk slot: its own uniforms, so several sub-chunks can share one submit. */
interface HeadSlot {
  normUniform: GPUBuffer;
  nllUniform: GPUBuffer;
  norm: GPUBindGroup;
  nll: GPUBindGroup;
}

/**
 * One command encoder; compute passes begin lazily and end around buffer copies. With a timer in
 * per-op mode every op gets its own timed pass (a profile by kernel); otherwise one pass is timed.
 */
class Recorder {
  readonly encoder: GPUCommandEncoder;
  private current?: GPUComputePassEncoder;
  constructor(
    device: GPUDevice,
    private readonly label: string,
    private readonly timer?: GpuTimer,
    private readonly perOp = false,
  ) {
    this.encoder = device.createCommandEncoder({ label });
  }
  private begin(label: string): GPUComputePassEncoder {
    const timestampWrites = this.timer?.passWrites(label);
    return this.encoder.beginComputePass(timestampWrites ? { label, timestampWrites } : { label });
  }
  /** Records one op (any number of dispatches) under `label`. */
  op(label: string, record: (pass: GPUComputePassEncoder) => void): void {
    if (this.perOp) {
      this.endPass();
      const pass = this.begin(label);
      record(pass);
      pass.end();
      return;
    }
    this.current ??= this.begin(this.label);
    record(this.current);
  }
  dispatch(label: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, workgroups: [number, number, number]): void {
    this.op(label, (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...workgroups);
    });
  }
  linear(op: LinearOp, kind: string, x: GPUBuffer, y: GPUBuffer, tokens: number): void {
    this.op(kind, (pass) => op.encode(pass, x, y, tokens));
  }
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, dstOffset = 0): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src, 0, dst, dstOffset, bytes);
  }
  endPass(): void {
    this.current?.end();
    this.current = undefined;
  }
  finish(): GPUCommandBuffer {
    this.endPass();
    return this.encoder.finish();
  }
}

export class Executor {
  readonly config: ModelConfig;
  readonly dtype: ExecutorDType;
  readonly kvDtype: ExecutorDType;
  readonly maxSeqLen: number;
  readonly maxBatchTokens: number;
  /** Rows per classifier sub-chunk in nll() (bounded by MAX_LOGITS_BYTES). */
  readonly headRows: number;

  private readonly device: GPUDevice;
  private readonly ownedBuffers: GPUBuffer[] = [];
  private readonly scratch: ScratchPool;
  private layers: Layer[] = [];
  private classifier!: LinearOp;
  private pipelines!: Pipelines;
  private kv!: KvCache;
  private embedParts: Array<{ rowStart: number; rowCount: number; uniform: GPUBuffer; bindGroup: GPUBindGroup }> = [];
  private normFirst!: GPUBindGroup;
  private slots: HeadSlot[] = [];
  private uniforms!: {
    norm: GPUBuffer;
    ropeKv: GPUBuffer;
    /** Attention reading q from `q` (row stride nHeads·headDim) and from `qkv` (its wider rows). */
    attention: GPUBuffer;
    attentionQkv: GPUBuffer;
    swiglu: GPUBuffer;
  };
  private buf!: {
    ids: GPUBuffer; // u32 [B]
    x: GPUBuffer; // f32 [B, dim] residual stream
    xn: GPUBuffer; // f32 [B, dim] normed input of q/k/v and of gate/up
    q?: GPUBuffer; // f32 [B, nHeads·headDim] (layers with separate projections; rotated in place)
    k?: GPUBuffer; // f32 [B, kvDim]
    v?: GPUBuffer; // f32 [B, kvDim]
    qkv?: GPUBuffer; // f32 [B, nHeads·headDim + 2·kvDim] fused q|k|v output, q rotated in place (fused layers)
    att: GPUBuffer; // f32 [B, nHeads·headDim] attention output (o_proj input)
    delta: GPUBuffer; // f32 [B, dim] o_proj / down_proj output, added to x by the next norm
    gate?: GPUBuffer; // f32 [B, hidden] (layers with separate projections)
    up?: GPUBuffer; // f32 [B, hidden]
    gateUp?: GPUBuffer; // f32 [B, 2·hidden] fused projection output (fused layers)
    act: GPUBuffer; // f32 [B, hidden] swiglu output (down_proj input)
    rope: GPUBuffer; // vec2<f32> [maxSeqLen, headDim/2] (cos, sin)
    headIn: GPUBuffer; // f32 [headRows, dim] final-normed rows fed to the classifier
    logits: GPUBuffer; // f32 [headRows, vocab]
    targets: GPUBuffer; // u32 [maxSeqLen] nll targets of the current call
    nllOut: GPUBuffer; // f32 [maxSeqLen, 2] (nll, non-finite count)
    logitsRead: GPUBuffer; // MAP_READ [vocab] f32
    nllRead: GPUBuffer; // MAP_READ [maxSeqLen, 2] f32
  };

  private pos = 0;
  /** Set when the device is lost: every later call fails with GpuDeviceLostError. */
  private lost?: GPUDeviceLostInfo;
  /** Row of `logits` holding the last processed token's logits, or -1 when none is valid. */
  private lastLogitsRow = -1;
  private steps = 0;
  private timer?: GpuTimer;
  private timePerOp = false;
  private numerics?: NumericsChecker;
  private chain: Promise<unknown> = Promise.resolve();
  private destroyed = false;
  private weightBytes = 0;
  private readonly bytes = { blockLinears: 0, embedding: 0, classifier: 0, norms: 0 };
  /** Where the embedding table lives (resolved from ExecutorOptions.embedding). */
  readonly embedding: 'gpu' | 'host';
  /** What loading read from the model and how (bf16 widened on the GPU or not), for reports. */
  loadStats?: UploadStats;
  private embedHost?: WeightRows;
  private readonly attentionChoice: (rows: number) => AttentionVariant;
  /** CPU adapter (llvmpipe & co.): kernels pick barrier-light workgroup shapes. */
  private readonly cpu: boolean;

  private constructor(
    private readonly gpu: GpuContext,
    private readonly model: ModelSource,
    private readonly cache: PipelineCache,
    opts: ExecutorOptions,
  ) {
    const c = model.config;
    this.config = c;
    this.device = gpu.device;
    this.scratch = new ScratchPool(gpu.device, QUANTIZED_SCRATCH_LABEL);
    this.dtype = opts.dtype;
    this.kvDtype = opts.kvDtype ?? opts.dtype;
    this.maxSeqLen = opts.maxSeqLen ?? Math.min(c.maxSeqLen, DEFAULT_MAX_SEQ_LEN);
    this.maxBatchTokens = opts.maxBatchTokens ?? Math.min(DEFAULT_MAX_BATCH_TOKENS, this.maxSeqLen);
    const cpu = (this.cpu = isCpuAdapter(gpu));
    const fixed = opts.attention && opts.attention !== 'auto' ? opts.attention : undefined;
    this.attentionChoice = (rows) => fixed ?? attentionVariant(rows, cpu);
    gpu.device.lost.then((info) => (this.lost = info));
    if (opts.checkNumerics) this.numerics = new NumericsChecker(gpu.device, model.id);
    const choice = opts.embedding ?? 'auto';
    this.embedding = choice === 'auto' ? (c.vocabSize * c.dim >= HOST_EMBEDDING_MIN_VALUES ? 'host' : 'gpu') : choice;
    this.headRows = opts.headRows ?? Math.max(1, Math.min(this.maxBatchTokens, Math.floor(Math.min(MAX_LOGITS_BYTES, gpu.limits.maxStorageBufferBindingSize) / (c.vocabSize * 4))));
  }

  static async create(gpu: GpuContext, model: ModelSource, opts: ExecutorOptions): Promise<Executor> {
    validate(gpu, model, opts);
    const ex = new Executor(gpu, model, opts.pipelines ?? new PipelineCache(gpu.device), opts);
    gpu.device.pushErrorScope('out-of-memory');
    gpu.device.pushErrorScope('validation');
    try {
      await ex.init(opts.linearFactory, opts.fuseProjections ?? true, opts.uploadChunkBytes);
    } catch (err) {
      await gpu.device.popErrorScope();
      await gpu.device.popErrorScope();
      ex.destroy();
      throw err;
    }
    const validation = await gpu.device.popErrorScope();
    const oom = await gpu.device.popErrorScope();
    if (validation || oom) {
      const need = ex.memory().total;
      ex.destroy();
      if (oom) throw new GpuOutOfMemoryError(`${model.id}: out of GPU memory while allocating the model (~${(need / 2 ** 20).toFixed(0)} MiB planned): ${oom.message.split('\n')[0]}`);
      throw new ExecutorError(`${model.id}: GPU setup failed: ${validation!.message}`);
    }
    return ex;
  }

  /** Tokens in the KV cache; the next forward starts here. */
  get position(): number {
    return this.pos;
  }

  /** Empties the KV cache (no GPU work). */
  reset(): void {
    this.pos = 0;
    this.lastLogitsRow = -1;
  }

  /** Drops the cache beyond `position` (e.g. to score several continuations of one prompt). */
  rewind(position: number): void {
    if (!Number.isInteger(position) || position < 0 || position > this.pos) {
      throw new ExecutorError(`rewind(${position}): position must be an integer in 0..${this.pos}`);
    }
    this.pos = position;
    this.lastLogitsRow = -1;
  }

  /**
   * Times the forward's compute passes from now on (GpuTimer.read() sums them); undefined stops.
   * `perOp` gives every kernel/linear its own pass, labelled by op (slower; for profiles).
   */
  setTimer(timer: GpuTimer | undefined, opts: { perOp?: boolean } = {}): void {
    this.timer = timer;
    this.timePerOp = !!opts.perOp;
  }

  /** Appends `tokens` to the cache and computes the logits of the last one (read them with logits()). */
  forward(tokens: ArrayLike<number>): Promise<void> {
    return this.serial(async () => {
      const ids = this.checkTokens(tokens, 'forward');
      await this.runForward(ids, undefined);
    });
  }

  /** The logits of the last token processed by forward() or nll(), [vocab]; throws on NaN/Inf. */
  logits(): Promise<Float32Array> {
    return this.serial(async () => {
      if (this.lastLogitsRow < 0) throw new ExecutorError('logits(): no forward() since the last reset/rewind/capture');
      const vocab = this.config.vocabSize;
      const enc = this.device.createCommandEncoder({ label: 'logits/read' });
      enc.copyBufferToBuffer(this.buf.logits, this.lastLogitsRow * vocab * 4, this.buf.logitsRead, 0, vocab * 4);
      this.device.queue.submit([enc.finish()]);
      const out = await readMappedF32(this.buf.logitsRead, vocab * 4);
      let bad = 0;
      for (let i = 0; i < vocab; i++) if (!Number.isFinite(out[i]!)) bad++;
      if (bad) {
        throw new NonFiniteError(
          `${this.model.id}: ${bad} of ${vocab} logits are NaN/Inf at position ${this.pos - 1} (step ${this.steps}, ${this.dtype} weights, ${this.kvDtype} KV cache)` +
            (this.numerics ? '' : '; rerun with --check-numerics to find the first bad layer'),
          { step: this.steps, position: this.pos - 1 },
        );
      }
      return out;
    });
  }

  /**
   * Appends `tokens` to the cache and returns, for each i, −log softmax(logits_i)[targets[i]] where
   * logits_i follow tokens[0..i]. Computed on the GPU; a target < 0 marks a row as not scored (NaN
   * in the result, and its classifier work is skipped where possible). Throws on NaN/Inf logits.
   */
  nll(tokens: ArrayLike<number>, targets: ArrayLike<number>): Promise<Float64Array> {
    return this.serial(async () => {
      const ids = this.checkTokens(tokens, 'nll');
      if (targets.length !== ids.length) throw new ExecutorError(`nll: ${ids.length} tokens but ${targets.length} targets`);
      const t = new Uint32Array(ids.length);
      const vocab = this.config.vocabSize;
      for (let i = 0; i < ids.length; i++) {
        const v = targets[i]!;
        if (v < 0) t[i] = UNSCORED_TARGET;
        else if (!Number.isInteger(v) || v >= vocab) throw new ExecutorError(`nll: target ${i} = ${v} is not a token id in 0..${vocab - 1}`);
        else t[i] = v;
      }
      this.device.queue.writeBuffer(this.buf.targets, 0, t);
      const start = this.pos;
      await this.runForward(ids, t);
      const bytes = ids.length * 8;
      const enc = this.device.createCommandEncoder({ label: 'nll/read' });
      enc.copyBufferToBuffer(this.buf.nllOut, 0, this.buf.nllRead, 0, bytes);
      this.device.queue.submit([enc.finish()]);
      const raw = await readMappedF32(this.buf.nllRead, bytes);
      const out = new Float64Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        if (t[i] === UNSCORED_TARGET) {
          out[i] = NaN;
          continue;
        }
        if (raw[2 * i + 1]! > 0 || !Number.isFinite(raw[2 * i]!)) {
          throw new NonFiniteError(
            `${this.model.id}: ${raw[2 * i + 1]} of ${vocab} logits are NaN/Inf at position ${start + i} (nll step ${this.steps}, ${this.dtype} weights, ${this.kvDtype} KV cache)` +
              (this.numerics ? '' : '; rerun with --check-numerics to find the first bad layer'),
            { step: this.steps, position: start + i },
          );
        }
        out[i] = raw[2 * i]!;
      }
      return out;
    });
  }

  /**
   * Appends `tokens` to the cache and returns the logits of every one of them, [tokens, vocab]
   * row-major (row i follows tokens[0..i]); for evaluations that need whole distributions (KL
   * divergence). Rows leave the GPU sub-chunk by sub-chunk into one readback buffer. Throws on NaN/Inf.
   */
  logitRows(tokens: ArrayLike<number>): Promise<Float32Array> {
    return this.serial(async () => {
      const ids = this.checkTokens(tokens, 'logitRows');
      const vocab = this.config.vocabSize;
      const bytes = ids.length * vocab * 4;
      if (bytes > this.gpu.limits.maxBufferSize) throw new ExecutorError(`logitRows: ${ids.length} × ${vocab} logits need ${bytes} bytes, over the device's buffer limit; pass fewer tokens`);
      const read = await createBufferChecked(this.device, { size: bytes, usage: READBACK_USAGE, label: 'logit_rows/read' });
      try {
        const start = this.pos;
        await this.runForward(ids, undefined, read);
        const out = await readMappedF32(read, bytes);
        for (let i = 0; i < out.length; i++) {
          if (!Number.isFinite(out[i]!)) {
            throw new NonFiniteError(`${this.model.id}: NaN/Inf logits at position ${start + Math.floor(i / vocab)} (logitRows step ${this.steps}, ${this.dtype} weights, ${this.kvDtype} KV cache)`);
          }
        }
        return out;
      } finally {
        read.destroy();
      }
    });
  }

  /**
   * Calibration hook: a fresh prefill of `tokens` from position 0 that reports, per layer, the inputs of
   * its linears: 'attn_in' (normed input of q/k/v), 'attn_out' (o_proj input), 'mlp_in' (normed input
   * of gate/up), 'mlp_act' (down_proj input), each [rows, in] row-major f32. Rows come in chunks of at
   * most maxBatchTokens (`firstRow` = index of row 0 in `tokens`): one call per (layer, kind) when
   * tokens.length ≤ maxBatchTokens. One layer's activations are held at a time. Leaves the tokens in
   * the cache (position = tokens.length) but no valid logits. With `opts.layers`, only those layers are
   * reported and the forward stops after the last of them (layer-by-layer calibration of deep models);
   * `from` / `keepState` carry the residual stream between such passes (ResidualState).
   */
  captureLinearInputs(tokens: ArrayLike<number>, onInput: LinearInputCallback, opts: CaptureOptions = {}): Promise<ResidualState | undefined> {
    return this.serial(async () => {
      this.pos = 0;
      this.lastLogitsRow = -1;
      const ids = this.checkTokens(tokens, 'captureLinearInputs');
      const c = this.config;
      const wanted = opts.layers ? new Set(opts.layers) : undefined;
      const lastLayer = wanted ? Math.min(c.nLayers - 1, Math.max(-1, ...wanted)) : c.nLayers - 1;
      const from = opts.from;
      const firstLayer = from ? from.afterLayer + 1 : 0;
      if (from && (!Number.isInteger(from.afterLayer) || from.afterLayer < 0 || from.afterLayer >= c.nLayers - 1 ||
          from.x.length !== ids.length * c.dim || from.xn.length !== ids.length * c.dim)) {
        throw new ExecutorError(`captureLinearInputs: the residual state (after layer ${from.afterLayer}, ${from.x.length} values) does not fit ${ids.length} tokens of width ${c.dim} in ${c.nLayers} layers`);
      }
      const keep = opts.keepState === true && lastLayer < c.nLayers - 1;
      const state: ResidualState | undefined = keep
        ? { afterLayer: lastLayer, x: new Float32Array(ids.length * c.dim), xn: new Float32Array(ids.length * c.dim) }
        : undefined;
      const qDim = c.nHeads * c.headDim;
      const cols: Record<LinearInputKind, number> = { attn_in: c.dim, attn_out: qDim, mlp_in: c.dim, mlp_act: c.hiddenDim };
      const rowsMax = Math.min(ids.length, this.maxBatchTokens);
      const staging = {} as Record<LinearInputKind | 'x' | 'xn', GPUBuffer>;
      try {
        for (const kind of [...Object.keys(cols), ...(keep ? ['x', 'xn'] : [])] as Array<keyof typeof staging>) {
          const width = kind === 'x' || kind === 'xn' ? c.dim : cols[kind];
          staging[kind] = await createBufferChecked(this.device, { size: rowsMax * width * 4, usage: READBACK_USAGE, label: `capture/${kind}` });
        }
        for (let t0 = 0; t0 < ids.length; t0 += this.maxBatchTokens) {
          const chunk = ids.subarray(t0, Math.min(ids.length, t0 + this.maxBatchTokens));
          const T = chunk.length;
          this.prepareChunk(chunk, this.pos);
          if (from) {
            // After prepareChunk: the queue runs writes in order, so these replace any embedding rows it wrote.
            this.device.queue.writeBuffer(this.buf.x, 0, from.x.subarray(t0 * c.dim, (t0 + T) * c.dim));
            this.device.queue.writeBuffer(this.buf.xn, 0, from.xn.subarray(t0 * c.dim, (t0 + T) * c.dim));
          }
          for (let l = firstLayer; l <= lastLayer; l++) {
            const rec = new Recorder(this.device, `capture/layer${l}`, this.timer, this.timePerOp);
            if (l === 0) this.encodeInput(rec, T);
            const tapped = !wanted || wanted.has(l);
            this.encodeLayer(rec, l, T, tapped ? (kind, src) => {
              if (kind in cols) rec.copy(src, staging[kind as LinearInputKind], T * cols[kind as LinearInputKind] * 4);
            } : undefined);
            if (state && l === lastLayer) {
              rec.copy(this.buf.x, staging.x, T * c.dim * 4);
              rec.copy(this.buf.xn, staging.xn, T * c.dim * 4);
            }
            this.device.queue.submit([rec.finish()]);
            if (!tapped) continue;
            for (const kind of Object.keys(cols) as LinearInputKind[]) {
              await onInput(l, kind, await readMappedF32(staging[kind], T * cols[kind] * 4), t0);
            }
          }
          if (state) {
            state.x.set(await readMappedF32(staging.x, T * c.dim * 4), t0 * c.dim);
            state.xn.set(await readMappedF32(staging.xn, T * c.dim * 4), t0 * c.dim);
          }
          this.pos += T;
        }
        return state;
      } finally {
        for (const b of Object.values(staging)) b.destroy();
      }
    });
  }

  memory(): ExecutorMemory {
    const kvCache = this.kv?.byteSize ?? 0;
    const activations = this.buf ? Object.values(this.buf).reduce((n, b) => n + (b?.size ?? 0), 0) : 0;
    const w4a8Scratch = this.scratch.byteSize;
    return { weights: this.weightBytes, ...this.bytes, kvCache, activations, w4a8Scratch, total: this.weightBytes + kvCache + activations + w4a8Scratch };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const layer of this.layers) for (const op of [...layer.attnIn.map((p) => p.op), layer.oProj, ...layer.mlpIn.map((p) => p.op), layer.downProj]) op.destroy();
    this.classifier?.destroy();
    this.kv?.destroy();
    this.scratch.release();
    this.numerics?.destroy();
    for (const b of this.ownedBuffers) b.destroy();
    this.ownedBuffers.length = 0;
    this.layers = [];
  }

  // ---- internals -------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.destroyed) throw new ExecutorError('the executor was destroyed');
      if (this.lost) throw this.lostError();
      return fn().catch((err: unknown) => this.asDeviceLoss(err));
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private lostError(): GpuDeviceLostError {
    const info = this.lost!;
    return new GpuDeviceLostError(`${this.model.id}: the GPU device was lost (${info.reason}${info.message ? `: ${info.message.split('\n')[0]}` : ''}); re-create the device and the executor`, info.reason);
  }

  /** A failed GPU call on a device that is being lost (its lost promise may settle a moment later) is a device loss. */
  private async asDeviceLoss(err: unknown): Promise<never> {
    if (!this.lost && !(err instanceof ExecutorError)) {
      await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 250))]);
    }
    if (this.lost) throw this.lostError();
    throw err;
  }

  private checkTokens(tokens: ArrayLike<number>, what: string): Uint32Array {
    const n = tokens.length;
    if (n === 0) throw new ExecutorError(`${what}: no tokens`);
    if (this.pos + n > this.maxSeqLen) {
      throw new ContextOverflowError(
        `${what}: ${n} tokens at position ${this.pos} need ${this.pos + n} cache positions; the KV cache holds ${this.maxSeqLen} (maxSeqLen)`,
      );
    }
    const ids = new Uint32Array(n);
    const vocab = this.config.vocabSize;
    for (let i = 0; i < n; i++) {
      const v = tokens[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new ExecutorError(`${what}: token ${i} = ${v} is not a token id in 0..${vocab - 1}`);
      ids[i] = v;
    }
    return ids;
  }

  /**
   * Forward of `ids` in chunks; with `targets`, classifies scored rows into nllOut (else the last row
   * only); with `rowsOut`, classifies every row and copies its logits there (row i at i·vocab). With
   * checkNumerics, each layer is submitted and its op outputs checked before the next.
   */
  private async runForward(ids: Uint32Array, targets: Uint32Array | undefined, rowsOut?: GPUBuffer): Promise<void> {
    const c = this.config;
    const start = this.pos;
    this.steps++;
    for (let t0 = 0; t0 < ids.length; t0 += this.maxBatchTokens) {
      const chunk = ids.subarray(t0, Math.min(ids.length, t0 + this.maxBatchTokens));
      const T = chunk.length;
      const last = t0 + T === ids.length;
      this.prepareChunk(chunk, start + t0);
      let rec = new Recorder(this.device, `forward/${c.nLayers}L/T${T}`, this.timer, this.timePerOp);
      this.encodeInput(rec, T);
      for (let l = 0; l < c.nLayers; l++) {
        const check = this.numerics;
        if (!check) {
          this.encodeLayer(rec, l, T);
          continue;
        }
        const qkvCols = (c.nHeads + 2 * c.nKvHeads) * c.headDim;
        await check.begin(T * 4 * (5 * c.dim + qkvCols + c.nHeads * c.headDim + 3 * c.hiddenDim));
        this.encodeLayer(rec, l, T, (kind, src, cols) => {
          const { dst, offset, bytes } = check.reserve(kind, T, cols);
          rec.copy(src, dst, bytes, offset);
        });
        this.device.queue.submit([rec.finish()]);
        await check.check(l, T, start + t0, this.steps);
        rec = new Recorder(this.device, `forward/${c.nLayers}L/T${T}/after${l}`, this.timer, this.timePerOp);
      }
      // Rows [first, T) of this chunk go through the final norm and the classifier.
      let first = rowsOut ? 0 : T;
      if (targets) {
        for (let r = 0; r < T; r++) if (targets[t0 + r] !== UNSCORED_TARGET) { first = r; break; }
      }
      if (last) first = Math.min(first, T - 1);
      let slot = 0;
      for (let r0 = first; r0 < T; r0 += this.headRows, slot++) {
        const rows = Math.min(this.headRows, T - r0);
        this.encodeHead(rec, slot, r0, rows, targets ? t0 + r0 : undefined);
        if (rowsOut) rec.copy(this.buf.logits, rowsOut, rows * this.config.vocabSize * 4, (t0 + r0) * this.config.vocabSize * 4);
        if (last && r0 + rows === T) this.lastLogitsRow = rows - 1;
      }
      this.device.queue.submit([rec.finish()]);
      this.pos += T;
    }
  }

  /** Uploads the chunk's ids and the uniforms every layer shares (token count, positions). */
  private prepareChunk(ids: Uint32Array, pos0: number): void {
    const c = this.config;
    const T = ids.length;
    const q = this.device.queue;
    q.writeBuffer(this.buf.ids, 0, ids);
    if (this.embedHost) q.writeBuffer(this.buf.x, 0, this.gatherEmbeddings(ids));
    for (const part of this.embedParts) q.writeBuffer(part.uniform, 0, this.planEmbedding(T, part).uniforms);
    q.writeBuffer(this.uniforms.norm, 0, planRmsnorm({ rows: T, dim: c.dim, eps: c.normEps, cpu: this.cpu, addResidual: false }).uniforms);
    q.writeBuffer(this.uniforms.ropeKv, 0, this.planRopeKv(T, pos0).uniforms);
    q.writeBuffer(this.uniforms.attention, 0, this.planAttention(T, pos0).uniforms);
    q.writeBuffer(this.uniforms.attentionQkv, 0, this.planAttention(T, pos0, undefined, (c.nHeads + 2 * c.nKvHeads) * c.headDim).uniforms);
    q.writeBuffer(this.uniforms.swiglu, 0, planSwiglu({ rows: T, hidden: c.hiddenDim }).uniforms); // same for both variants
  }

  /** The embedding rows of `ids` read from the model on the host, widened to f32: [ids.length, dim]. */
  private gatherEmbeddings(ids: Uint32Array): Float32Array {
    const dim = this.config.dim;
    const src = this.embedHost!;
    const x = new Float32Array(ids.length * dim);
    for (let t = 0; t < ids.length; t++) x.set(bytesToF32(src.read(ids[t]!, 1), src.dtype), t * dim);
    return x;
  }

  private encodeInput(rec: Recorder, T: number): void {
    const c = this.config;
    for (const part of this.embedParts) rec.dispatch('embedding', this.pipelines.embedding, part.bindGroup, this.planEmbedding(T, part).workgroups);
    rec.dispatch('rmsnorm', this.pipelines.norm, this.normFirst, planRmsnorm({ rows: T, dim: c.dim, eps: c.normEps, cpu: this.cpu, addResidual: false }).workgroups);
  }

  /**
   * Records layer `l`. `tap` (calibration capture, --check-numerics) sees op outputs in execution
   * order: attn_in, the q|k|v projection(s), attn_out, o_proj, mlp_in, gate|up, mlp_act, down_proj,
   * and the residual stream after the add (not in the last layer, whose add rides in the final norm).
   */
  private encodeLayer(rec: Recorder, l: number, T: number, tap?: (kind: string, src: GPUBuffer, cols: number) => void): void {
    const c = this.config;
    const b = this.buf;
    const layer = this.layers[l]!;
    const qDim = c.nHeads * c.headDim;
    const normWg = planRmsnorm({ rows: T, dim: c.dim, eps: c.normEps, cpu: this.cpu, addResidual: true }).workgroups;
    tap?.('attn_in', b.xn, c.dim);
    for (const p of layer.attnIn) {
      rec.linear(p.op, p.kind, b.xn, p.out, T);
      tap?.(p.kind, p.out, p.op.outFeatures);
    }
    rec.dispatch('rope_kv', this.pipelines.ropeKv[layer.qkvFused ? 'fused' : 'separate'], layer.ropeKv, this.planRopeKv(T, 0).workgroups);
    const variant = this.attentionChoice(T);
    rec.dispatch('attention', this.pipelines.attention[variant], layer.attention[variant], this.planAttention(T, 0).workgroups);
    tap?.('attn_out', b.att, qDim);
    rec.linear(layer.oProj, 'o_proj', b.att, b.delta, T);
    tap?.('o_proj', b.delta, c.dim);
    rec.dispatch('rmsnorm_add', this.pipelines.normAdd, layer.normPostAttn, normWg);
    tap?.('mlp_in', b.xn, c.dim);
    for (const p of layer.mlpIn) {
      rec.linear(p.op, p.kind, b.xn, p.out, T);
      tap?.(p.kind, p.out, p.op.outFeatures);
    }
    rec.dispatch('swiglu', this.pipelines.swiglu[layer.gateUpFused ? 'fused' : 'separate'], layer.swiglu, planSwiglu({ rows: T, hidden: c.hiddenDim }).workgroups);
    tap?.('mlp_act', b.act, c.hiddenDim);
    rec.linear(layer.downProj, 'down_proj', b.act, b.delta, T);
    tap?.('down_proj', b.delta, c.dim);
    if (layer.normNext) {
      rec.dispatch('rmsnorm_add', this.pipelines.normAdd, layer.normNext, normWg);
      tap?.('residual', b.x, c.dim);
    }
  }

  /**
   * Final residual add + norm of rows [r0, r0+rows) into headIn, the classifier into logits[0, rows),
   * and with `nllFirst` (index of row r0 in the current nll call) the per-row NLL.
   */
  private encodeHead(rec: Recorder, slot: number, r0: number, rows: number, nllFirst: number | undefined): void {
    const c = this.config;
    const s = this.slots[slot]!;
    const q = this.device.queue;
    const norm = planRmsnorm({ rows, dim: c.dim, eps: c.normEps, cpu: this.cpu, rowStart: r0, addResidual: true });
    q.writeBuffer(s.normUniform, 0, norm.uniforms);
    rec.dispatch('rmsnorm_final', this.pipelines.normAdd, s.norm, norm.workgroups);
    rec.linear(this.classifier, 'lm_head', this.buf.headIn, this.buf.logits, rows);
    if (nllFirst !== undefined) {
      const nll = planLogsoftmaxNll({ rows, vocab: c.vocabSize, first: nllFirst, cpu: this.cpu });
      q.writeBuffer(s.nllUniform, 0, nll.uniforms);
      rec.dispatch('logsoftmax_nll', this.pipelines.nll, s.nll, nll.workgroups);
    }
  }

  private planEmbedding(T: number, part: { rowStart: number; rowCount: number }): KernelPlan {
    return planEmbedding({ rows: T, dim: this.config.dim, rowStart: part.rowStart, rowCount: part.rowCount, tableF16: this.dtype === 'f16' });
  }

  private planRopeKv(T: number, pos0: number, qkvFused = false): KernelPlan {
    const c = this.config;
    return planRopeKv({ rows: T, pos0, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, style: c.ropeStyle, kvF16: this.kvDtype === 'f16', qkvFused });
  }

  private planAttention(T: number, pos0: number, variant = this.attentionChoice(T), qStride?: number): KernelPlan {
    const c = this.config;
    return planAttention({ rows: T, pos0, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: this.kvDtype === 'f16', variant, qStride });
  }

  private buffer(bytes: number, label: string, usage?: number): GPUBuffer {
    const b = createBuffer(this.device, bytes, label, usage);
    this.ownedBuffers.push(b);
    return b;
  }

  private upload(data: ArrayBufferView, label: string): GPUBuffer {
    const b = uploadBuffer(this.device, data, label);
    this.ownedBuffers.push(b);
    return b;
  }

  /** Bind group with buffers[i] at binding i; undefined leaves a binding out (unused by the variant). */
  private bind(pipeline: GPUComputePipeline, label: string, buffers: Array<GPUBuffer | undefined>): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.flatMap((buffer, binding) => (buffer ? [{ binding, resource: { buffer } }] : [])),
    });
  }

  /** Reads a tensor as f32 after checking its shape (small tensors: norms, biases). */
  private tensor(name: string, shape: number[]): Float32Array {
    return readTensorF32(this.tensorRef(name, shape));
  }

  private tensorRef(name: string, shape: number[]) {
    if (!this.model.has(name)) throw new ExecutorError(`${this.model.id}: missing tensor ${name}`);
    const t = this.model.tensor(name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ExecutorError(`${this.model.id}: tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return t;
  }

  private async init(linearFactory: LinearFactory | undefined, fuseProjections: boolean, chunkBytes?: number): Promise<void> {
    // Weights stream through one uploader (chunks of raw rows; bf16 widened on the GPU).
    const uploader = new WeightUploader(this.gpu, this.cache, chunkBytes);
    try {
      await this.build(linearFactory, fuseProjections, uploader);
    } finally {
      this.loadStats = uploader.stats;
      uploader.destroy();
    }
  }

  private async build(linearFactory: LinearFactory | undefined, fuseProjections: boolean, uploader: WeightUploader): Promise<void> {
    const c = this.config;
    const { device, gpu } = this;
    const B = this.maxBatchTokens;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const kvF16 = this.kvDtype === 'f16';
    const f16 = this.dtype === 'f16';
    const maxBinding = gpu.limits.maxStorageBufferBindingSize;

    // Block linears first: whether a layer's q|k|v and gate|up can be fused decides the buffers.
    const shapes: Record<BlockLinearName, [number, number]> = {
      'self_attn.q_proj': [qDim, c.dim],
      'self_attn.k_proj': [kvDim, c.dim],
      'self_attn.v_proj': [kvDim, c.dim],
      'self_attn.o_proj': [c.dim, qDim],
      'mlp.gate_proj': [c.hiddenDim, c.dim],
      'mlp.up_proj': [c.hiddenDim, c.dim],
      'mlp.down_proj': [c.dim, c.hiddenDim],
    };
    const dense = (w: DenseWeights, label: string) => createDenseLinearStreamed(gpu, this.cache, { rows: w.rows!, bias: w.bias }, { label, dtype: this.dtype, maxTokens: B }, uploader);
    const plans: Array<{ attnIn: Array<{ op: LinearOp; kind: string }>; mlpIn: Array<{ op: LinearOp; kind: string }>; o: LinearOp; down: LinearOp }> = [];
    for (let l = 0; l < c.nLayers; l++) {
      const weights = {} as Record<BlockLinearName, DenseWeights>;
      const custom = {} as Partial<Record<BlockLinearName, LinearOp>>;
      for (const { name } of BLOCK_LINEARS) {
        const [out, inF] = shapes[name];
        const ref = this.tensorRef(layerTensorName(l, `${name}.weight`), [out, inF]);
        const biasName = layerTensorName(l, `${name}.bias`);
        const bias = this.model.has(biasName) ? this.tensor(biasName, [out]) : undefined;
        // `weight` (f32 on the host) is read only if a linearFactory asks for it; dense ops stream `rows`.
        weights[name] = { inFeatures: inF, outFeatures: out, rows: tensorRows(ref), bias, get weight() { return readTensorF32(ref); } };
        const op = linearFactory?.(l, name, weights[name], this.scratch);
        if (op && (op.inFeatures !== inF || op.outFeatures !== out)) {
          throw new ExecutorError(`${layerTensorName(l, name)}: linearFactory returned a ${op.outFeatures}×${op.inFeatures} op, expected ${out}×${inF}`);
        }
        if (op) custom[name] = op;
      }
      // Ops from linearFactory upload with queue writes: let them land layer by layer, so the host side
      // of those copies stays one layer's worth (the streamed dense path waits per chunk already).
      if (Object.keys(custom).length) await device.queue.onSubmittedWorkDone();
      const single = async (name: BlockLinearName) => ({ op: custom[name] ?? (await dense(weights[name], layerTensorName(l, name))), kind: name.split('.')[1]! });
      const group = async (names: BlockLinearName[], fusedKind: string) => {
        if (!(fuseProjections && names.every((n) => !custom[n]))) {
          const ops = [];
          for (const n of names) ops.push(await single(n));
          return ops;
        }
        return [{ op: await dense(stackLinears(names.map((n) => weights[n])), layerTensorName(l, `${fusedKind}(fused)`)), kind: fusedKind }];
      };
      plans.push({
        attnIn: await group(['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], 'qkv_proj'),
        mlpIn: await group(['mlp.gate_proj', 'mlp.up_proj'], 'gate_up_proj'),
        o: (await single('self_attn.o_proj')).op,
        down: (await single('mlp.down_proj')).op,
      });
      for (const p of plans[l]!.attnIn.concat(plans[l]!.mlpIn)) this.bytes.blockLinears += p.op.byteSize;
      this.bytes.blockLinears += plans[l]!.o.byteSize + plans[l]!.down.byteSize;
    }
    const anyQkvFused = plans.some((p) => p.attnIn.length === 1);
    const anyQkvSeparate = plans.some((p) => p.attnIn.length > 1);
    const anyGateUpFused = plans.some((p) => p.mlpIn.length === 1);
    const anyGateUpSeparate = plans.some((p) => p.mlpIn.length > 1);

    // Pipelines (compiled and checked up front, so shader errors surface here with line numbers).
    const spec = (p: KernelPlan) => this.cache.getChecked(p.spec);
    const normPlan = (addResidual: boolean) => planRmsnorm({ rows: 1, dim: c.dim, eps: c.normEps, cpu: this.cpu, addResidual });
    this.pipelines = {
      embedding: await spec(this.planEmbedding(1, { rowStart: 0, rowCount: 1 })),
      norm: await spec(normPlan(false)),
      normAdd: await spec(normPlan(true)),
      ropeKv: {
        fused: anyQkvFused ? await spec(this.planRopeKv(1, 0, true)) : undefined!,
        separate: anyQkvSeparate ? await spec(this.planRopeKv(1, 0, false)) : undefined!,
      },
      attention: { keys: await spec(this.planAttention(1, 0, 'keys')), rows: await spec(this.planAttention(1, 0, 'rows')) },
      swiglu: {
        fused: anyGateUpFused ? await spec(planSwiglu({ rows: 1, hidden: c.hiddenDim, gateUpFused: true })) : undefined!,
        separate: anyGateUpSeparate ? await spec(planSwiglu({ rows: 1, hidden: c.hiddenDim })) : undefined!,
      },
      nll: await spec(planLogsoftmaxNll({ rows: 1, vocab: c.vocabSize, first: 0, cpu: this.cpu })),
    };

    // Activations, sized for maxBatchTokens rows.
    const f = 4;
    const maybe = (need: boolean, bytes: number, label: string) => (need ? this.buffer(bytes, label) : undefined);
    this.buf = {
      ids: this.buffer(B * 4, 'ids'),
      x: this.buffer(B * c.dim * f, 'x'),
      xn: this.buffer(B * c.dim * f, 'xn'),
      q: maybe(anyQkvSeparate, B * qDim * f, 'q'),
      k: maybe(anyQkvSeparate, B * kvDim * f, 'k'),
      v: maybe(anyQkvSeparate, B * kvDim * f, 'v'),
      qkv: maybe(anyQkvFused, B * (qDim + 2 * kvDim) * f, 'qkv'),
      att: this.buffer(B * qDim * f, 'att'),
      delta: this.buffer(B * c.dim * f, 'delta'),
      gate: maybe(anyGateUpSeparate, B * c.hiddenDim * f, 'gate'),
      up: maybe(anyGateUpSeparate, B * c.hiddenDim * f, 'up'),
      gateUp: maybe(anyGateUpFused, B * 2 * c.hiddenDim * f, 'gate_up'),
      act: this.buffer(B * c.hiddenDim * f, 'act'),
      rope: this.upload(ropeTable(c.headDim, c.ropeTheta, this.maxSeqLen, c.ropeScaling), 'rope_table'),
      headIn: this.buffer(this.headRows * c.dim * f, 'head_in'),
      logits: this.buffer(this.headRows * c.vocabSize * f, 'logits'),
      targets: this.buffer(this.maxSeqLen * 4, 'targets'),
      nllOut: this.buffer(this.maxSeqLen * 8, 'nll'),
      logitsRead: this.buffer(c.vocabSize * 4, 'logits/read', READBACK_USAGE),
      nllRead: this.buffer(this.maxSeqLen * 8, 'nll/read', READBACK_USAGE),
    };
    for (const [name, b] of Object.entries(this.buf)) {
      if (b && b.size > maxBinding) {
        throw new ExecutorError(
          `${this.model.id}: activation buffer ${name} needs ${b.size} bytes, over the ${maxBinding}-byte storage binding limit; lower maxBatchTokens (${B})`,
        );
      }
    }
    const uniform = (label: string) => this.buffer(16 * 2, label, UNIFORM_USAGE);
    this.uniforms = {
      norm: uniform('norm/params'),
      ropeKv: uniform('rope_kv/params'),
      attention: uniform('attention/params'),
      attentionQkv: uniform('attention_qkv/params'),
      swiglu: uniform('swiglu/params'),
    };

    this.kv = new KvCache(device, { nLayers: c.nLayers, maxSeqLen: this.maxSeqLen, kvDim, f16: kvF16 });
    if (this.kv.bytesPerLayerBuffer > maxBinding) {
      throw new ExecutorError(`${this.model.id}: one layer's K cache needs ${this.kv.bytesPerLayerBuffer} bytes, over the ${maxBinding}-byte binding limit; lower maxSeqLen (${this.maxSeqLen})`);
    }

    // Embedding table: on the host (rows gathered per chunk), or on the GPU split by rows where it
    // exceeds one binding, f16 in f16 mode.
    const embed = tensorRows(this.tensorRef('model.embed_tokens.weight', [c.vocabSize, c.dim]));
    if (this.embedding === 'host') this.embedHost = embed;
    const gpuParts = this.embedding === 'gpu' ? embeddingParts(c.vocabSize, c.dim, f16 ? 2 : 4, Math.min(maxBinding, gpu.limits.maxBufferSize)) : [];
    for (const part of gpuParts) {
      const table = await uploader.upload(embed, part.rowStart, part.rowCount, c.dim, f16 ? 'f16' : 'f32', `embed[${part.rowStart}:${part.rowStart + part.rowCount}]`);
      this.ownedBuffers.push(table);
      this.bytes.embedding += table.size;
      const partUniform = uniform('embedding/params');
      this.embedParts.push({ ...part, uniform: partUniform, bindGroup: this.bind(this.pipelines.embedding, 'embedding', [partUniform, this.buf.ids, table, this.buf.x]) });
    }

    // Norm weights stay f32 (tiny); the final norm is shared by every classifier slot.
    const norms = Array.from({ length: c.nLayers }, (_, l) => ({
      input: this.upload(this.tensor(layerTensorName(l, 'input_layernorm.weight'), [c.dim]), `layers.${l}.input_layernorm`),
      post: this.upload(this.tensor(layerTensorName(l, 'post_attention_layernorm.weight'), [c.dim]), `layers.${l}.post_attention_layernorm`),
    }));
    const finalNorm = this.upload(this.tensor('model.norm.weight', [c.dim]), 'model.norm');
    for (const n of norms) this.bytes.norms += n.input.size + n.post.size;
    this.bytes.norms += finalNorm.size;

    const b = this.buf;
    const P = this.pipelines;
    const U = this.uniforms;
    this.normFirst = this.bind(P.norm, 'rmsnorm/layers.0', [U.norm, b.x, norms[0]!.input, b.xn]);
    plans.forEach((p, l) => {
      const qkvFused = p.attnIn.length === 1;
      const gateUpFused = p.mlpIn.length === 1;
      const kc = this.kv.k[l]!, vc = this.kv.v[l]!;
      this.layers.push({
        attnIn: qkvFused ? [{ ...p.attnIn[0]!, out: b.qkv! }] : p.attnIn.map((x, i) => ({ ...x, out: [b.q!, b.k!, b.v!][i]! })),
        oProj: p.o,
        mlpIn: gateUpFused ? [{ ...p.mlpIn[0]!, out: b.gateUp! }] : p.mlpIn.map((x, i) => ({ ...x, out: [b.gate!, b.up!][i]! })),
        downProj: p.down,
        qkvFused,
        gateUpFused,
        ropeKv: qkvFused
          ? this.bind(P.ropeKv.fused, `rope_kv_qkv/layers.${l}`, [U.ropeKv, undefined, b.qkv, undefined, b.rope, kc, vc])
          : this.bind(P.ropeKv.separate, `rope_kv/layers.${l}`, [U.ropeKv, b.q, b.k, b.v, b.rope, kc, vc]),
        swiglu: gateUpFused
          ? this.bind(P.swiglu.fused, `swiglu_fused/layers.${l}`, [U.swiglu, b.gateUp, undefined, b.act])
          : this.bind(P.swiglu.separate, `swiglu/layers.${l}`, [U.swiglu, b.gate, b.up, b.act]),
        attention: {
          keys: this.bind(P.attention.keys, `attention_keys/layers.${l}`, [qkvFused ? U.attentionQkv : U.attention, qkvFused ? b.qkv : b.q, kc, vc, b.att]),
          rows: this.bind(P.attention.rows, `attention_rows/layers.${l}`, [qkvFused ? U.attentionQkv : U.attention, qkvFused ? b.qkv : b.q, kc, vc, b.att]),
        },
        normPostAttn: this.bind(P.normAdd, `rmsnorm_add/layers.${l}.post`, [U.norm, b.x, norms[l]!.post, b.xn, b.delta]),
        normNext: l + 1 < c.nLayers ? this.bind(P.normAdd, `rmsnorm_add/layers.${l + 1}.input`, [U.norm, b.x, norms[l + 1]!.input, b.xn, b.delta]) : undefined,
      });
    });

    // Classifier (lm_head, or the embedding when tied): always dense, in the executor's dtype.
    if (!this.model.has('lm_head.weight') && !c.tiedEmbeddings) throw new ExecutorError(`${this.model.id}: missing tensor lm_head.weight (embeddings are not tied)`);
    const headRows = this.model.has('lm_head.weight') ? tensorRows(this.tensorRef('lm_head.weight', [c.vocabSize, c.dim])) : embed;
    this.classifier = await createDenseLinearStreamed(gpu, this.cache, { rows: headRows }, { label: 'lm_head', dtype: this.dtype, maxTokens: this.headRows }, uploader);
    this.bytes.classifier += this.classifier.byteSize;
    this.weightBytes = this.bytes.blockLinears + this.bytes.embedding + this.bytes.classifier + this.bytes.norms;

    const slotCount = Math.ceil(B / this.headRows);
    for (let s = 0; s < slotCount; s++) {
      const normUniform = uniform(`head[${s}]/norm/params`);
      const nllUniform = uniform(`head[${s}]/nll/params`);
      this.slots.push({
        normUniform,
        nllUniform,
        norm: this.bind(P.normAdd, `rmsnorm_add/model.norm[${s}]`, [normUniform, b.x, finalNorm, b.headIn, b.delta]),
        nll: this.bind(P.nll, `logsoftmax_nll[${s}]`, [nllUniform, b.logits, b.targets, b.nllOut]),
      });
    }
  }
}

/** Stacks linears that read the same input into one [Σ out, in] row source (biases zero-filled where absent). */
function stackLinears(parts: DenseWeights[]): DenseWeights {
  const inFeatures = parts[0]!.inFeatures;
  const outFeatures = parts.reduce((n, p) => n + p.outFeatures, 0);
  const rows = stackRows(parts.map((p) => p.rows!));
  const anyBias = parts.some((p) => p.bias);
  const bias = anyBias ? new Float32Array(outFeatures) : undefined;
  let row = 0;
  for (const p of parts) {
    if (p.bias) bias!.set(p.bias, row);
    row += p.outFeatures;
  }
  return { inFeatures, outFeatures, rows, bias, get weight(): Float32Array { throw new ExecutorError('stacked projections are streamed, not read as f32'); } };
}

function validate(gpu: GpuContext, model: ModelSource, opts: ExecutorOptions): void {
  const c = model.config;
  const id = model.id;
  if (opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new ExecutorError(`dtype ${String(opts.dtype)} is not 'f32' or 'f16'`);
  const kvDtype = opts.kvDtype ?? opts.dtype;
  if ((opts.dtype === 'f16' || kvDtype === 'f16') && !gpu.features.shaderF16) {
    throw new ExecutorError(`f16 weights/KV cache need the shader-f16 feature, which this device (${gpu.describe()}) lacks; use dtype 'f32'`);
  }
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new ExecutorError(`${id}: config ${name} = ${v} must be a positive integer`);
  };
  for (const [k, v] of Object.entries({ dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, vocabSize: c.vocabSize, maxSeqLen: c.maxSeqLen })) positive(k, v);
  if (c.nHeads % c.nKvHeads !== 0) throw new ExecutorError(`${id}: ${c.nHeads} attention heads are not a multiple of ${c.nKvHeads} KV heads`);
  if (c.headDim % 2 !== 0) throw new ExecutorError(`${id}: head dim ${c.headDim} must be even for RoPE`);
  if (c.ropeStyle !== 'interleaved' && c.ropeStyle !== 'half') throw new ExecutorError(`${id}: unknown ropeStyle ${String(c.ropeStyle)}`);
  const maxSeqLen = opts.maxSeqLen ?? Math.min(c.maxSeqLen, DEFAULT_MAX_SEQ_LEN);
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 1 || maxSeqLen > c.maxSeqLen) {
    throw new ExecutorError(`${id}: maxSeqLen ${maxSeqLen} must be an integer in 1..${c.maxSeqLen} (the model's context)`);
  }
  const B = opts.maxBatchTokens ?? Math.min(DEFAULT_MAX_BATCH_TOKENS, maxSeqLen);
  if (!Number.isInteger(B) || B < 1 || B > 65535) throw new ExecutorError(`maxBatchTokens ${B} must be an integer in 1..65535`);
  if (opts.headRows !== undefined && (!Number.isInteger(opts.headRows) || opts.headRows < 1 || opts.headRows > B)) {
    throw new ExecutorError(`headRows ${opts.headRows} must be an integer in 1..${B} (maxBatchTokens)`);
  }
}
