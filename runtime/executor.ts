/// <reference types="@webgpu/types" />
// The transformer executor: runs a LLaMA-family ModelSource on the GPU, f32 or f16 weights, f32
// activations. It owns every buffer, pipeline and bind group of the forward (built once in `create`
// by runtime/forward-build.ts, sized for maxBatchTokens and maxSeqLen), keeps the KV-cache position,
// and serves the public calls: forward/logits, nll, logitRows, and tapLayers (a forward over some
// layers that lets the caller copy op outputs; the quantizer's calibration capture runs on it). Each
// forward chunk is recorded (runtime/recorder.ts) as one command buffer with one compute pass:
//
//   embedding → [rmsnorm] → per layer: q|k|v → rope_kv → attention → o_proj → rmsnorm_add → gate|up
//   → swiglu → down_proj → rmsnorm_add → final norm + classifier on the rows that need logits
//
// Dense layers run q|k|v and gate|up as one projection each; linears that linearFactory supplies
// (the quantized path) run as one group op where its `group` makes one, else one op per linear, and
// quantized layers take the norms, residual adds and SwiGLU into their kernels (10 dispatches per
// layer; runtime/recorder.ts) unless taps need the unfused layer. The last token's logits, a token sampled from them on
// the GPU (forwardSample/sample: the decode step's readback is 8 bytes), the GPU-computed NLLs and
// whole logit rows are read back by runtime/readback.ts; calls on a lost device fail as
// runtime/device-loss.ts says.
import { createBufferChecked } from './device.js';
import { GpuOutOfMemoryError } from '../core/errors.js';
import { type GpuContext } from '../core/gpu.js';
import type { ModelConfig, ModelSource } from '../core/model.js';
import { PipelineCache } from './pipelines.js';
import { QUANTIZED_SCRATCH_LABEL } from './quantized-linear.js';
import { ScratchPool } from './scratch-pool.js';
import { WeightUploader, type UploadStats } from './weight-upload.js';
import type { GpuTimer } from './profiler.js';
import type { TrafficCounter } from './traffic.js';
import { isCpuAdapter } from '../kernels/matmul_dense.js';
import { UNSCORED_TARGET } from '../kernels/logsoftmax_nll.js';
import { NumericsChecker, type NonFiniteReport } from './numerics.js';
import {
  encodeHead, encodeInput, encodeLayer, encodeSample, ForwardKernels, prepareChunk, Recorder, type ForwardGraph,
} from './recorder.js';
import type { SampleDraw } from '../kernels/sample.js';
import { buildForward, type BuiltForward } from './forward-build.js';
import { readLogitRows, readLogitsRow, readNll, readSampled, type Checked, type RunDescription } from './readback.js';
import { DeviceLossWatch } from './device-loss.js';
import {
  resolveOptions, type ExecutorDType, type ExecutorMemory, type ExecutorOptions, type ResolvedOptions,
} from './executor-options.js';
import { ContextOverflowError, ExecutorError, NonFiniteError } from './errors.js';
import { READBACK } from './buffers.js';

/** One layer of a tapLayers pass, as it is recorded. */
export interface TappedLayer {
  readonly layer: number;
  /** Index in the pass's tokens of the chunk's first row, and the chunk's row count. */
  readonly firstRow: number;
  readonly rows: number;
  /** Records a copy of `bytes` from the start of `src` into `dst` at this point of the forward. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, dstOffset?: number): void;
}

/** What a tapLayers pass runs and where its caller looks in. */
export interface LayerTaps {
  /** Names the pass in error messages and command labels (default 'tapLayers'). */
  label?: string;
  /** Last layer run (default the model's last); the pass stops after it and never reaches the classifier. */
  lastLayer?: number;
  /**
   * Start after layer `afterLayer` from this residual stream of the same tokens instead of at the
   * embedding: `x` and its normed copy `xn` (the next layer's input), each [tokens, dim] f32.
   */
  from?: { afterLayer: number; x: Float32Array; xn: Float32Array };
  /** While a layer is recorded, each op output in execution order (runtime/recorder.ts encodeLayer): [rows, cols] f32 in `src`. */
  output?(at: TappedLayer, kind: string, src: GPUBuffer, cols: number): void;
  /** After a layer's last op is recorded: the residual stream `x` and its normed copy `xn` ([rows, dim] f32). */
  end?(at: TappedLayer, x: GPUBuffer, xn: GPUBuffer): void;
  /** After the layer is submitted (copies recorded until then can be read). */
  submitted?(at: TappedLayer): Promise<void>;
}

export class Executor {
  readonly config: ModelConfig;
  readonly dtype: ExecutorDType;
  readonly kvDtype: ExecutorDType;
  readonly maxSeqLen: number;
  readonly maxBatchTokens: number;
  /** Rows per classifier sub-chunk in nll() (bounded by 64 MiB of f32 logits). */
  readonly headRows: number;
  /** KV-cache slots (ExecutorOptions.slots): sequences forwardBatch can hold at once. */
  readonly slots: number;
  /** Where the embedding table lives (resolved from ExecutorOptions.embedding). */
  readonly embedding: 'gpu' | 'host';
  /** What loading read from the model and how (bf16 widened on the GPU or not), for reports. */
  loadStats?: UploadStats;
  /** The device the executor runs on (callers of tapLayers create their copy targets on it). */
  readonly device: GPUDevice;

  private readonly kernels: ForwardKernels;
  /** The built forward (graph, weight bytes, destroy); absent until `create` has built it. */
  private built?: BuiltForward;
  /** built.graph, what every call records from. */
  private graph?: ForwardGraph;
  private readonly loss: DeviceLossWatch;
  /** Temporaries shared by this executor's quantized linears (handed to the linear factory). */
  private readonly scratch: ScratchPool;
  private pos = 0;
  /** Row of `logits` holding the last processed token's logits, or -1 when none is valid. */
  private lastLogitsRow = -1;
  private steps = 0;
  private timer?: GpuTimer;
  private timePerOp = false;
  private traffic?: TrafficCounter;
  private numerics?: NumericsChecker;
  private chain: Promise<unknown> = Promise.resolve();
  /** forwardBatch's logits readback, [slots, vocab] f32, created on first use. */
  private batchRead?: GPUBuffer;
  private destroyed = false;

  private constructor(
    private readonly gpu: GpuContext,
    private readonly model: ModelSource,
    private readonly cache: PipelineCache,
    resolved: ResolvedOptions,
    checkNumerics: boolean,
  ) {
    this.config = model.config;
    this.device = gpu.device;
    this.scratch = new ScratchPool(gpu.device, QUANTIZED_SCRATCH_LABEL);
    this.dtype = resolved.dtype;
    this.kvDtype = resolved.kvDtype;
    this.maxSeqLen = resolved.maxSeqLen;
    this.maxBatchTokens = resolved.maxBatchTokens;
    this.headRows = resolved.headRows;
    this.embedding = resolved.embedding;
    this.slots = resolved.slots;
    this.kernels = new ForwardKernels(model.config, isCpuAdapter(gpu), { tableF16: this.dtype === 'f16', kvF16: this.kvDtype === 'f16' }, resolved.attention);
    this.loss = new DeviceLossWatch(gpu.device, model.id);
    if (checkNumerics) this.numerics = new NumericsChecker(gpu.device, model.id);
  }

  static async create(gpu: GpuContext, model: ModelSource, opts: ExecutorOptions): Promise<Executor> {
    const resolved = resolveOptions(gpu, model, opts);
    const ex = new Executor(gpu, model, opts.pipelines ?? new PipelineCache(gpu.device), resolved, !!opts.checkNumerics);
    gpu.device.pushErrorScope('out-of-memory');
    gpu.device.pushErrorScope('validation');
    try {
      await ex.init(opts, opts.fuseProjections ?? true);
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

  /** Counts the forward's dispatches and the bytes they read from now on (TrafficCounter.take()); undefined stops. */
  setTraffic(counter: TrafficCounter | undefined): void {
    this.traffic = counter;
  }

  /** Appends `tokens` to the cache and computes the logits of the last one (read them with logits()). */
  forward(tokens: ArrayLike<number>): Promise<void> {
    return this.serial(async () => {
      const ids = this.checkTokens(tokens, 'forward');
      await this.runForward(ids, undefined);
    });
  }

  /**
   * Appends `tokens` like forward() and picks the next token from the last one's logits on the GPU
   * with `draw` (runtime/sampler.ts semantics), in the same submit; 8 bytes come back instead of the
   * logits row. The logits stay readable with logits(). Throws on NaN/Inf logits.
   */
  forwardSample(tokens: ArrayLike<number>, draw: SampleDraw): Promise<number> {
    return this.serial(async () => {
      const ids = this.checkTokens(tokens, 'forwardSample');
      await this.runForward(ids, undefined, undefined, draw);
      return this.checked(await readSampled(this.graph!.buf.sampleRead, this.config.vocabSize, this.pos - 1, this.run()));
    });
  }

  /** Picks the next token on the GPU from the logits of the last token processed (those logits() reads). */
  sample(draw: SampleDraw): Promise<number> {
    return this.serial(async () => {
      if (this.lastLogitsRow < 0) throw new ExecutorError('sample(): no forward() since the last reset/rewind/capture');
      const rec = this.recorder('sample', this.pos);
      encodeSample(rec, this.graph!, this.device.queue, this.lastLogitsRow, draw);
      this.device.queue.submit([rec.finish()]);
      return this.checked(await readSampled(this.graph!.buf.sampleRead, this.config.vocabSize, this.pos - 1, this.run()));
    });
  }

  /** The logits of the last token processed by forward() or nll(), [vocab]; throws on NaN/Inf. */
  logits(): Promise<Float32Array> {
    return this.serial(async () => {
      if (this.lastLogitsRow < 0) throw new ExecutorError('logits(): no forward() since the last reset/rewind/capture');
      const { buf } = this.graph!;
      return this.checked(await readLogitsRow(this.device, buf.logits, this.lastLogitsRow, this.config.vocabSize, buf.logitsRead, this.pos - 1, this.run()));
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
      const { buf } = this.graph!;
      this.device.queue.writeBuffer(buf.targets, 0, t);
      const start = this.pos;
      await this.runForward(ids, t);
      return this.checked(await readNll(this.device, buf.nllOut, buf.nllRead, t, vocab, start, this.run()));
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
      const read = await createBufferChecked(this.device, { size: bytes, usage: READBACK, label: 'logit_rows/read' });
      try {
        const start = this.pos;
        await this.runForward(ids, undefined, read);
        return this.checked(await readLogitRows(read, bytes, vocab, start, this.run()));
      } finally {
        read.destroy();
      }
    });
  }

  /**
   * A fresh prefill of `tokens` from position 0 (or, with `taps.from`, from a residual stream after
   * some layer) through layers up to `taps.lastLayer`, in chunks of at most maxBatchTokens rows, one
   * submit per layer, with `taps` seeing each layer's op outputs as it is recorded and each submit.
   * Leaves the tokens in the cache (position = tokens.length) but no valid logits.
   */
  tapLayers(tokens: ArrayLike<number>, taps: LayerTaps): Promise<void> {
    return this.serial(async () => {
      this.pos = 0;
      this.lastLogitsRow = -1;
      const label = taps.label ?? 'tapLayers';
      const ids = this.checkTokens(tokens, label);
      const c = this.config;
      const g = this.graph!;
      const lastLayer = Math.min(c.nLayers - 1, taps.lastLayer ?? c.nLayers - 1);
      const from = taps.from;
      const firstLayer = from ? from.afterLayer + 1 : 0;
      if (from && (!Number.isInteger(from.afterLayer) || from.afterLayer < 0 || from.afterLayer >= c.nLayers - 1 ||
          from.x.length !== ids.length * c.dim || from.xn.length !== ids.length * c.dim)) {
        throw new ExecutorError(`${label}: the residual state (after layer ${from.afterLayer}, ${from.x.length} values) does not fit ${ids.length} tokens of width ${c.dim} in ${c.nLayers} layers`);
      }
      for (let t0 = 0; t0 < ids.length; t0 += this.maxBatchTokens) {
        const chunk = ids.subarray(t0, Math.min(ids.length, t0 + this.maxBatchTokens));
        const T = chunk.length;
        prepareChunk(this.device.queue, g, chunk, this.pos);
        if (from) {
          // After prepareChunk: the queue runs writes in order, so these replace any embedding rows it wrote.
          this.device.queue.writeBuffer(g.buf.x, 0, from.x.subarray(t0 * c.dim, (t0 + T) * c.dim) as Float32Array<ArrayBuffer>);
          this.device.queue.writeBuffer(g.buf.xn, 0, from.xn.subarray(t0 * c.dim, (t0 + T) * c.dim) as Float32Array<ArrayBuffer>);
        }
        for (let l = firstLayer; l <= lastLayer; l++) {
          const rec = this.recorder(`${label}/layer${l}`, this.pos);
          const at: TappedLayer = { layer: l, firstRow: t0, rows: T, copy: (src, dst, bytes, dstOffset) => rec.copy(src, dst, bytes, dstOffset) };
          if (l === 0) encodeInput(rec, g, T);
          const output = taps.output;
          encodeLayer(rec, g, l, T, output && ((kind, src, cols) => output(at, kind, src, cols)));
          taps.end?.(at, g.buf.x, g.buf.xn);
          this.device.queue.submit([rec.finish()]);
          await taps.submitted?.(at);
        }
        this.pos += T;
      }
    });
  }

  /**
   * Continuous batching: one forward over `ids.length` rows of several sequences, row i being token
   * ids[i] at position positions[i] of the sequence held in KV slot slots[i] (needs
   * ExecutorOptions.slots > 1). RoPE and attention take each row's own position, and a row attends
   * to its slot's positions 0..positions[i] only, so rows of one sequence may prefill a chunk while
   * other rows decode. The caller keeps each slot's positions (nothing here tracks them) and puts
   * rows whose logits it wants last: the logits of the last `logitRows` rows come back,
   * [logitRows, vocab] row-major (none for 0: a step of prompt rows only). Leaves position()/logits() of the single-sequence calls alone,
   * but shares slot 0's cache region with them. Throws on NaN/Inf logits.
   */
  forwardBatch(ids: ArrayLike<number>, slots: ArrayLike<number>, positions: ArrayLike<number>, logitRows: number): Promise<Float32Array> {
    return this.serial(async () => {
      const c = this.config;
      const T = ids.length;
      if (this.slots < 2) throw new ExecutorError('forwardBatch: this executor was built with one KV slot (ExecutorOptions.slots)');
      if (T === 0 || T > this.maxBatchTokens) throw new ExecutorError(`forwardBatch: ${T} rows; a step takes 1..${this.maxBatchTokens} (maxBatchTokens)`);
      if (slots.length !== T || positions.length !== T) throw new ExecutorError(`forwardBatch: ${T} ids but ${slots.length} slots and ${positions.length} positions`);
      if (!Number.isInteger(logitRows) || logitRows < 0 || logitRows > Math.min(T, this.slots)) {
        throw new ExecutorError(`forwardBatch: logitRows ${logitRows} must be an integer in 0..${Math.min(T, this.slots)}`);
      }
      const idArray = this.checkTokens(ids, 'forwardBatch', 0);
      const rowPos = new Uint32Array(2 * T);
      for (let i = 0; i < T; i++) {
        const s = slots[i]!;
        const p = positions[i]!;
        if (!Number.isInteger(s) || s < 0 || s >= this.slots) throw new ExecutorError(`forwardBatch: row ${i} names slot ${s}; the executor has slots 0..${this.slots - 1}`);
        if (!Number.isInteger(p) || p < 0 || p >= this.maxSeqLen) {
          throw new ContextOverflowError(`forwardBatch: row ${i} at position ${p} is outside the slot's ${this.maxSeqLen} cache positions (maxSeqLen)`);
        }
        rowPos[2 * i] = s * this.maxSeqLen;
        rowPos[2 * i + 1] = p;
      }
      const g = this.graph!;
      const queue = this.device.queue;
      const bytes = logitRows * c.vocabSize * 4;
      this.batchRead ??= await createBufferChecked(this.device, { size: this.slots * c.vocabSize * 4, usage: READBACK, label: 'forward_batch/read' });
      this.steps++;
      prepareChunk(queue, g, idArray, 0);
      queue.writeBuffer(g.buf.rowPos!, 0, rowPos);
      let rec = this.recorder(`forwardBatch/${c.nLayers}L/T${T}`, 0);
      encodeInput(rec, g, T, true);
      for (let l = 0; l < c.nLayers; l++) encodeLayer(rec, g, l, T, undefined, true, true);
      // On CPU adapters the tiled GEMM pads the rows to its tile, which for a large vocabulary costs far
      // more than GEMV passes of ≤ 2 rows (a 4-row decode step of the 8B-shaped artifact took ~40× a
      // 1-row one on llvmpipe in `bench serve`): the logit rows go through the classifier in such groups there.
      const group = this.kernels.cpu ? Math.min(2, this.headRows) : this.headRows;
      let slot = 0;
      for (let r0 = T - logitRows; r0 < T; r0 += group, slot++) {
        if (slot === g.slots.length) {
          // Head slots reused: their uniforms are rewritten after this submit, which the queue orders.
          queue.submit([rec.finish()]);
          rec = this.recorder(`forwardBatch/head/T${T}`, 0);
          slot = 0;
        }
        const rows = Math.min(group, T - r0);
        encodeHead(rec, g, queue, slot, r0, rows, undefined);
        rec.copy(g.buf.logits, this.batchRead, rows * c.vocabSize * 4, (r0 - (T - logitRows)) * c.vocabSize * 4);
      }
      queue.submit([rec.finish()]);
      // The single-sequence logits() row is no longer what the last forward() left there.
      this.lastLogitsRow = -1;
      // Only prompt rows (a chunk of a long prefill): nothing to read; the queue keeps the order.
      if (logitRows === 0) return new Float32Array(0);
      return this.checked(await readLogitRows(this.batchRead, bytes, c.vocabSize, 0, this.run()));
    });
  }

  memory(): ExecutorMemory {
    const bytes = this.built?.bytes ?? { blockLinears: 0, embedding: 0, classifier: 0, norms: 0 };
    const weights = bytes.blockLinears + bytes.embedding + bytes.classifier + bytes.norms;
    const kvCache = this.graph?.kv.byteSize ?? 0;
    const activations = this.graph ? Object.values(this.graph.buf).reduce((n, b) => n + (b?.size ?? 0), 0) : 0;
    const w4a8Scratch = this.scratch.byteSize;
    return { weights, ...bytes, kvCache, activations, w4a8Scratch, total: weights + kvCache + activations + w4a8Scratch };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.built?.destroy();
    this.batchRead?.destroy();
    this.scratch.release();
    this.numerics?.destroy();
  }

  // ---- internals -------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.destroyed) throw new ExecutorError('the executor was destroyed');
      if (this.loss.lost) throw this.loss.error();
      return fn().catch((err: unknown) => this.loss.rethrow(err, err instanceof ExecutorError));
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private checkTokens(tokens: ArrayLike<number>, what: string, pos = this.pos): Uint32Array {
    const n = tokens.length;
    if (n === 0) throw new ExecutorError(`${what}: no tokens`);
    if (pos + n > this.maxSeqLen) {
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

  /** What NaN/Inf messages say about the current call. */
  private run(): RunDescription {
    return { modelId: this.model.id, step: this.steps, dtype: this.dtype, kvDtype: this.kvDtype, checkNumerics: !!this.numerics };
  }

  /** The values read back, or the NonFiniteError for what was wrong with them. */
  private checked<T>(read: Checked<T>): T {
    if (read.nonFinite) throw nonFiniteError(read.nonFinite);
    return read.values!;
  }

  private recorder(label: string, pos0: number): Recorder {
    return new Recorder(this.device, label, this.timer, this.timePerOp, { pos0, traffic: this.traffic });
  }

  /**
   * Forward of `ids` in chunks; with `targets`, classifies scored rows into nllOut (else the last row
   * only); with `rowsOut`, classifies every row and copies its logits there (row i at i·vocab); with
   * `draw`, samples the next token from the last row into sampleRead. With checkNumerics, each layer
   * is submitted and its op outputs checked before the next.
   */
  private async runForward(ids: Uint32Array, targets: Uint32Array | undefined, rowsOut?: GPUBuffer, draw?: SampleDraw): Promise<void> {
    const c = this.config;
    const g = this.graph!;
    const queue = this.device.queue;
    const start = this.pos;
    this.steps++;
    for (let t0 = 0; t0 < ids.length; t0 += this.maxBatchTokens) {
      const chunk = ids.subarray(t0, Math.min(ids.length, t0 + this.maxBatchTokens));
      const T = chunk.length;
      const last = t0 + T === ids.length;
      prepareChunk(queue, g, chunk, start + t0);
      let rec = this.recorder(`forward/${c.nLayers}L/T${T}`, start + t0);
      // Quantized layers take the block's edges into their kernels, except under the numerics check,
      // whose taps read the unfused layer's intermediates (xn, delta, act).
      const fuseEdges = !this.numerics;
      encodeInput(rec, g, T, fuseEdges);
      for (let l = 0; l < c.nLayers; l++) {
        const check = this.numerics;
        if (!check) {
          encodeLayer(rec, g, l, T, undefined, fuseEdges);
          continue;
        }
        const qkvCols = (c.nHeads + 2 * c.nKvHeads) * c.headDim;
        await check.begin(T * 4 * (5 * c.dim + qkvCols + c.nHeads * c.headDim + 3 * c.hiddenDim));
        encodeLayer(rec, g, l, T, (kind, src, cols) => {
          const { dst, offset, bytes } = check.reserve(kind, T, cols);
          rec.copy(src, dst, bytes, offset);
        });
        queue.submit([rec.finish()]);
        const bad = await check.check(l, T, start + t0, this.steps);
        if (bad) throw nonFiniteError(bad);
        rec = this.recorder(`forward/${c.nLayers}L/T${T}/after${l}`, start + t0);
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
        encodeHead(rec, g, queue, slot, r0, rows, targets ? t0 + r0 : undefined);
        if (rowsOut) rec.copy(g.buf.logits, rowsOut, rows * c.vocabSize * 4, (t0 + r0) * c.vocabSize * 4);
        if (last && r0 + rows === T) this.lastLogitsRow = rows - 1;
      }
      if (last && draw) encodeSample(rec, g, queue, this.lastLogitsRow, draw);
      queue.submit([rec.finish()]);
      this.pos += T;
    }
  }

  private async init(opts: Pick<ExecutorOptions, 'linearFactory' | 'classifierFactory' | 'classifierDtype' | 'uploadChunkBytes'>, fuseProjections: boolean): Promise<void> {
    // Weights stream through one uploader (chunks of raw rows; bf16 widened on the GPU).
    const uploader = new WeightUploader(this.gpu, this.cache, opts.uploadChunkBytes);
    try {
      const shape = {
        dtype: this.dtype, kvDtype: this.kvDtype, maxSeqLen: this.maxSeqLen, maxBatchTokens: this.maxBatchTokens, headRows: this.headRows,
        embedding: this.embedding, fuseProjections, slots: this.slots, linearFactory: opts.linearFactory, scratch: this.scratch,
        classifierFactory: opts.classifierFactory, classifierDtype: opts.classifierDtype ?? this.dtype,
      };
      const built = await buildForward(this.gpu, this.model, this.cache, this.kernels, shape, uploader);
      this.built = built;
      this.graph = built.graph;
    } finally {
      this.loadStats = uploader.stats;
      uploader.destroy();
    }
  }
}

function nonFiniteError(report: NonFiniteReport): NonFiniteError {
  return new NonFiniteError(report.message, report.where);
}
