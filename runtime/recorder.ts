/// <reference types="@webgpu/types" />
// Recording the forward pass: the GPU objects one forward runs on (ForwardGraph, built once by
// runtime/forward-build.ts), the per-chunk uniform writes, and the encoders of its three parts into a
// Recorder (one command encoder, compute passes opened lazily):
//
//   input:  embedding → rmsnorm (layer 0's input norm)
//   layer:  q|k|v → rope_kv (RoPE + KV-cache write) → attention → o_proj → rmsnorm_add (residual +
//           post-attention norm) → gate|up → swiglu → down_proj → rmsnorm_add (residual + next input norm)
//   head:   rmsnorm_add (last residual + final norm) on the rows that need logits → classifier → [nll]
//   sample: the next token from one logits row (kernels/sample.wgsl), copied to a 8-byte readback
//
// Quantized layers whose linears take the block's edges (Layer.edges: q|k|v and gate|up each one
// group, o_proj and down_proj quantized) run, when the forward fuses edges (no taps), as 10 dispatches:
//   q|k|v (kernel A norms x) → rope_kv → attention → o_proj (kernel B adds into x) → gate|up (kernel A
//   norms x) → down_proj (kernel A takes silu(gate)·up from gate|up, kernel B adds into x)
// so neither xn, delta nor act is written; the last layer's down_proj writes delta for the head's
// rmsnorm_add, and a layer followed by an unfused one norms x into xn for it. Taps (calibration
// capture, --check-numerics) read xn, delta and act: forwards with taps record every layer unfused.
//
// Nothing here allocates GPU memory or submits; runtime/executor.ts decides what runs when.
import type { LinearOp } from './linear.js';
import type { ModelConfig } from '../core/model.js';
import { bytesToF32 } from '../core/dtype.js';
import type { KvCache } from './kv-cache.js';
import type { WeightRows } from './weight-rows.js';
import type { GpuTimer } from './profiler.js';
import type { TrafficCounter } from './traffic.js';
import { callReadBytes, type KernelPlan } from '../kernels/kernel_plan.js';
import type { PlannedPipeline } from './plan-binding.js';
import { planEmbedding, type EmbeddingBinding } from '../kernels/embedding.js';
import { planRmsnorm, type RmsnormBinding } from '../kernels/rmsnorm.js';
import { planRopeKv, type RopeKvBinding } from '../kernels/rope_kv.js';
import {
  attentionVariant, planAttention, type AttentionBinding, type AttentionVariant,
} from '../kernels/attention.js';
import { planSwiglu, type SwigluBinding } from '../kernels/swiglu.js';
import { planLogsoftmaxNll, type LogsoftmaxNllBinding } from '../kernels/logsoftmax_nll.js';
import { planSample, type SampleBinding, type SampleDraw } from '../kernels/sample.js';

/** A projection op of a layer and the activation buffer it writes. */
export interface Projection {
  op: LinearOp;
  /** Profile label: the linear's short name, or qkv_proj / gate_up_proj when fused. */
  kind: string;
  out: GPUBuffer;
}

export interface Layer {
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
  /** Where the layer's linears take the block's edges (see the top of this file): its norm weights. */
  edges?: LayerEdges;
  /** rope_kv and attention reading per-row (kvBase, pos) from buf.rowPos (executors with several KV slots). */
  rowPositions?: { ropeKv: GPUBindGroup; attention: Record<AttentionVariant, GPUBindGroup> };
}

/** A layer run with the norms in kernel A, the residual adds in kernel B and the SwiGLU in down's kernel A. */
export interface LayerEdges {
  inputNorm: GPUBuffer;
  postNorm: GPUBuffer;
  /** xn = norm(x) · next layer's input_layernorm, for a next layer that runs unfused (absent in the last layer). */
  normNextOnly?: GPUBindGroup;
}

/**
 * The forward's pipelines, each with the plan it was compiled from (a 1-row call: only its spec and
 * bindings matter), whose named bindings its bind groups are built from.
 */
export interface Pipelines {
  embedding: PlannedPipeline<EmbeddingBinding>;
  norm: PlannedPipeline<RmsnormBinding>;
  normAdd: PlannedPipeline<RmsnormBinding>;
  /** Indexed by whether q|k|v (gate|up) arrive fused in one buffer. */
  ropeKv: { fused: PlannedPipeline<RopeKvBinding>; separate: PlannedPipeline<RopeKvBinding> };
  attention: Record<AttentionVariant, PlannedPipeline<AttentionBinding>>;
  swiglu: { fused: PlannedPipeline<SwigluBinding>; separate: PlannedPipeline<SwigluBinding> };
  nll: PlannedPipeline<LogsoftmaxNllBinding>;
  sample: PlannedPipeline<SampleBinding>;
  /** The ROW_POSITIONS variants of rope_kv and attention (executors with several KV slots). */
  rowPositions?: {
    ropeKv: { fused: PlannedPipeline<RopeKvBinding>; separate: PlannedPipeline<RopeKvBinding> };
    attention: Record<AttentionVariant, PlannedPipeline<AttentionBinding>>;
  };
}

/** Classifier sub-chunk slot: its own uniforms, so several sub-chunks can share one submit. */
export interface HeadSlot {
  normUniform: GPUBuffer;
  nllUniform: GPUBuffer;
  norm: GPUBindGroup;
  nll: GPUBindGroup;
}

/** A row range of the GPU embedding table (split where it exceeds one binding). */
export interface EmbeddingPart {
  rowStart: number;
  rowCount: number;
  uniform: GPUBuffer;
  bindGroup: GPUBindGroup;
}

/** Activations, sized for maxBatchTokens (B) rows; optional ones exist only where some layer uses them. */
export interface ActivationBuffers {
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
  sampleMasses: GPUBuffer; // u32 [vocab] sample scratch: token masses
  sampleCandidates: GPUBuffer; // u32 [vocab] sample scratch: kept ids
  sampleOut: GPUBuffer; // u32 [2] sampled id, non-finite logits
  sampleRead: GPUBuffer; // MAP_READ u32 [2]
  rowPos?: GPUBuffer; // u32 [B, 2] (kvBase, pos) per row (executors with several KV slots)
}

/** Uniforms every layer of a chunk shares (token count, positions), written once per chunk. */
export interface ChunkUniforms {
  norm: GPUBuffer;
  ropeKv: GPUBuffer;
  /** Attention reading q from `q` (row stride nHeads·headDim) and from `qkv` (its wider rows). */
  attention: GPUBuffer;
  attentionQkv: GPUBuffer;
  swiglu: GPUBuffer;
}

/** Everything a forward chunk is recorded from. */
export interface ForwardGraph {
  readonly config: ModelConfig;
  readonly kernels: ForwardKernels;
  readonly pipelines: Pipelines;
  readonly buf: ActivationBuffers;
  readonly uniforms: ChunkUniforms;
  readonly kv: KvCache;
  readonly layers: Layer[];
  /** Layer 0's input norm (the others ride in the previous layer's residual add). */
  readonly normFirst: GPUBindGroup;
  /** The GPU embedding table's parts (none when it stays on the host). */
  readonly embedParts: EmbeddingPart[];
  /** The embedding rows on the host, when the table is not on the GPU. */
  readonly embedHost?: WeightRows;
  readonly slots: HeadSlot[];
  readonly classifier: LinearOp;
  /** The sampling dispatch's uniforms and bind group (logits → sampleOut). */
  readonly sample: { uniform: GPUBuffer; bindGroup: GPUBindGroup };
}

/** Sees an op output as a layer is recorded: tap point `kind`, [rows, cols] f32 in `src`. */
export type OpTap = (kind: string, src: GPUBuffer, cols: number) => void;

/** The kernel plans of the forward for one model and executor configuration. */
export class ForwardKernels {
  constructor(
    private readonly config: ModelConfig,
    /** CPU adapter (llvmpipe & co.): kernels pick barrier-light workgroup shapes. */
    readonly cpu: boolean,
    private readonly dtypes: { tableF16: boolean; kvF16: boolean },
    private readonly fixedAttention?: AttentionVariant,
  ) {}

  /** The attention variant for chunks of `rows` rows (fixed by option, else by adapter and rows). */
  attentionVariant(rows: number): AttentionVariant {
    return this.fixedAttention ?? attentionVariant(rows, this.cpu);
  }

  embedding(T: number, part: { rowStart: number; rowCount: number }): KernelPlan<EmbeddingBinding> {
    return planEmbedding({ rows: T, dim: this.config.dim, rowStart: part.rowStart, rowCount: part.rowCount, tableF16: this.dtypes.tableF16 });
  }

  norm(T: number, addResidual: boolean): KernelPlan<RmsnormBinding> {
    const c = this.config;
    return planRmsnorm({ rows: T, dim: c.dim, eps: c.normEps, cpu: this.cpu, addResidual });
  }

  /** The final norm of rows [rowStart, rowStart + rows), with the last layer's residual add. */
  headNorm(rows: number, rowStart: number): KernelPlan<RmsnormBinding> {
    const c = this.config;
    return planRmsnorm({ rows, dim: c.dim, eps: c.normEps, cpu: this.cpu, rowStart, addResidual: true });
  }

  ropeKv(T: number, pos0: number, qkvFused = false, rowPositions = false): KernelPlan<RopeKvBinding> {
    const c = this.config;
    return planRopeKv({ rows: T, pos0, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, style: c.ropeStyle, kvF16: this.dtypes.kvF16, qkvFused, rowPositions });
  }

  attention(T: number, pos0: number, variant = this.attentionVariant(T), qStride?: number, rowPositions = false): KernelPlan<AttentionBinding> {
    const c = this.config;
    return planAttention({ rows: T, pos0, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: this.dtypes.kvF16, variant, qStride, rowPositions });
  }

  nll(rows: number, first: number): KernelPlan<LogsoftmaxNllBinding> {
    return planLogsoftmaxNll({ rows, vocab: this.config.vocabSize, first, cpu: this.cpu });
  }

  sample(row: number, draw: SampleDraw): KernelPlan<SampleBinding> {
    return planSample({ vocab: this.config.vocabSize, row, draw, cpu: this.cpu });
  }
}

/**
 * One command encoder; compute passes begin lazily and end around buffer copies. With a timer in
 * per-op mode every op gets its own timed pass (a profile by kernel); otherwise one pass is timed.
 * With a traffic counter every op's dispatches and the bytes they read are counted (runtime/traffic.ts).
 */
export class Recorder {
  readonly encoder: GPUCommandEncoder;
  private current?: GPUComputePassEncoder;
  /** Cache position of the chunk's first token (what ops whose reads grow with it count by). */
  readonly pos0: number;
  private readonly traffic?: TrafficCounter;
  constructor(
    device: GPUDevice,
    private readonly label: string,
    private readonly timer?: GpuTimer,
    private readonly perOp = false,
    chunk: { pos0?: number; traffic?: TrafficCounter } = {},
  ) {
    this.encoder = device.createCommandEncoder({ label });
    this.pos0 = chunk.pos0 ?? 0;
    this.traffic = chunk.traffic;
  }
  private begin(label: string): GPUComputePassEncoder {
    const timestampWrites = this.timer?.passWrites(label);
    return this.encoder.beginComputePass(timestampWrites ? { label, timestampWrites } : { label });
  }
  /**
   * Records one op (any number of dispatches) under `label`. `reads`: bytes each of its dispatches
   * reads, where that depends on the call rather than on its bind groups (counted only with a traffic counter).
   */
  op(label: string, record: (pass: GPUComputePassEncoder) => void, reads?: number): void {
    const counted = (pass: GPUComputePassEncoder) => (this.traffic ? this.traffic.wrap(pass, label, reads) : pass);
    if (this.perOp) {
      this.endPass();
      const pass = this.begin(label);
      record(counted(pass));
      pass.end();
      return;
    }
    this.current ??= this.begin(this.label);
    record(counted(this.current));
  }
  dispatch(label: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, workgroups: [number, number, number], reads?: number): void {
    this.op(label, (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...workgroups);
    }, reads);
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

/** Uploads the chunk's ids (or, host embedding, its embedding rows) and the uniforms every layer shares. */
export function prepareChunk(queue: GPUQueue, g: ForwardGraph, ids: Uint32Array, pos0: number): void {
  const c = g.config;
  const k = g.kernels;
  const T = ids.length;
  queue.writeBuffer(g.buf.ids, 0, ids as Uint32Array<ArrayBuffer>);
  if (g.embedHost) queue.writeBuffer(g.buf.x, 0, gatherEmbeddings(g.embedHost, ids, c.dim) as Float32Array<ArrayBuffer>);
  for (const part of g.embedParts) queue.writeBuffer(part.uniform, 0, k.embedding(T, part).uniforms);
  queue.writeBuffer(g.uniforms.norm, 0, k.norm(T, false).uniforms);
  queue.writeBuffer(g.uniforms.ropeKv, 0, k.ropeKv(T, pos0).uniforms);
  queue.writeBuffer(g.uniforms.attention, 0, k.attention(T, pos0).uniforms);
  queue.writeBuffer(g.uniforms.attentionQkv, 0, k.attention(T, pos0, undefined, (c.nHeads + 2 * c.nKvHeads) * c.headDim).uniforms);
  queue.writeBuffer(g.uniforms.swiglu, 0, planSwiglu({ rows: T, hidden: c.hiddenDim }).uniforms); // same for both variants
}

/** The embedding rows of `ids` read from the model on the host, widened to f32: [ids.length, dim]. */
function gatherEmbeddings(src: WeightRows, ids: Uint32Array, dim: number): Float32Array {
  const x = new Float32Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) x.set(bytesToF32(src.read(ids[t]!, 1), src.dtype), t * dim);
  return x;
}

/** `fuseEdges`: the forward records layers with edges fused (then layer 0's kernel A norms the embedding itself). */
export function encodeInput(rec: Recorder, g: ForwardGraph, T: number, fuseEdges = false): void {
  for (const part of g.embedParts) rec.dispatch('embedding', g.pipelines.embedding.pipeline, part.bindGroup, g.kernels.embedding(T, part).workgroups);
  if (!(fuseEdges && g.layers[0]?.edges)) rec.dispatch('rmsnorm', g.pipelines.norm.pipeline, g.normFirst, g.kernels.norm(T, false).workgroups);
}

/**
 * Records layer `l`. `tap` (calibration capture, --check-numerics) sees op outputs in execution
 * order: attn_in, the q|k|v projection(s), attn_out, o_proj, mlp_in, gate|up, mlp_act, down_proj,
 * and the residual stream after the add (not in the last layer, whose add rides in the final norm).
 */
/**
 * `rowPositions`: rope_kv and attention take each row's (kvBase, pos) from buf.rowPos (written by
 * the caller) instead of the chunk's pos0; the layer must have been built with them.
 */
export function encodeLayer(rec: Recorder, g: ForwardGraph, l: number, T: number, tap?: OpTap, fuseEdges = false, rowPositions = false): void {
  const c = g.config;
  const b = g.buf;
  const P = g.pipelines;
  const k = g.kernels;
  const layer = g.layers[l]!;
  const qDim = c.nHeads * c.headDim;
  const normWg = k.norm(T, true).workgroups;
  if (fuseEdges && layer.edges) {
    if (tap) throw new RangeError('encodeLayer: taps need the unfused layer (fuseEdges off)');
    encodeLayerEdges(rec, g, l, T, layer.edges, rowPositions);
    return;
  }
  const rp = rowPositions ? rowPositionBindings(g, l) : undefined;
  tap?.('attn_in', b.xn, c.dim);
  for (const p of layer.attnIn) {
    rec.linear(p.op, p.kind, b.xn, p.out, T);
    tap?.(p.kind, p.out, p.op.outFeatures);
  }
  const ropeKind = layer.qkvFused ? 'fused' : 'separate';
  rec.dispatch('rope_kv', (rp?.pipelines.ropeKv ?? P.ropeKv)[ropeKind].pipeline, rp?.layer.ropeKv ?? layer.ropeKv, k.ropeKv(T, 0).workgroups);
  const variant = k.attentionVariant(T);
  const attention = k.attention(T, rec.pos0, variant); // its reads grow with the position (the KV cache)
  rec.dispatch('attention', (rp?.pipelines.attention ?? P.attention)[variant].pipeline, (rp?.layer.attention ?? layer.attention)[variant], attention.workgroups, callReadBytes(attention));
  tap?.('attn_out', b.att, qDim);
  rec.linear(layer.oProj, 'o_proj', b.att, b.delta, T);
  tap?.('o_proj', b.delta, c.dim);
  rec.dispatch('rmsnorm_add', P.normAdd.pipeline, layer.normPostAttn, normWg);
  tap?.('mlp_in', b.xn, c.dim);
  for (const p of layer.mlpIn) {
    rec.linear(p.op, p.kind, b.xn, p.out, T);
    tap?.(p.kind, p.out, p.op.outFeatures);
  }
  rec.dispatch('swiglu', P.swiglu[layer.gateUpFused ? 'fused' : 'separate'].pipeline, layer.swiglu, planSwiglu({ rows: T, hidden: c.hiddenDim }).workgroups);
  tap?.('mlp_act', b.act, c.hiddenDim);
  rec.linear(layer.downProj, 'down_proj', b.act, b.delta, T);
  tap?.('down_proj', b.delta, c.dim);
  if (layer.normNext) {
    rec.dispatch('rmsnorm_add', P.normAdd.pipeline, layer.normNext, normWg);
    tap?.('residual', b.x, c.dim);
  }
}

/** Layer `l` with its edges fused (see the top of this file): 10 dispatches. */
function encodeLayerEdges(rec: Recorder, g: ForwardGraph, l: number, T: number, e: LayerEdges, rowPositions: boolean): void {
  const c = g.config;
  const b = g.buf;
  const P = g.pipelines;
  const k = g.kernels;
  const layer = g.layers[l]!;
  const eps = c.normEps;
  const qkv = layer.attnIn[0]!;
  const gateUp = layer.mlpIn[0]!;
  const last = l + 1 === c.nLayers;
  rec.op(qkv.kind, (pass) => qkv.op.encodeFused!(pass, b.x, qkv.out, T, { norm: { weight: e.inputNorm, eps } }));
  const rp = rowPositions ? rowPositionBindings(g, l) : undefined;
  rec.dispatch('rope_kv', (rp?.pipelines.ropeKv ?? P.ropeKv).fused.pipeline, rp?.layer.ropeKv ?? layer.ropeKv, k.ropeKv(T, 0).workgroups);
  const variant = k.attentionVariant(T);
  rec.dispatch('attention', (rp?.pipelines.attention ?? P.attention)[variant].pipeline, (rp?.layer.attention ?? layer.attention)[variant], k.attention(T, 0).workgroups);
  rec.op('o_proj', (pass) => layer.oProj.encodeFused!(pass, b.att, b.x, T, { residual: true }));
  rec.op(gateUp.kind, (pass) => gateUp.op.encodeFused!(pass, b.x, gateUp.out, T, { norm: { weight: e.postNorm, eps } }));
  // The last layer's residual add stays in the head's rmsnorm_add (delta), as on the unfused path.
  rec.op('down_proj', (pass) => layer.downProj.encodeFused!(pass, gateUp.out, last ? b.delta : b.x, T, { swiglu: true, residual: !last }));
  if (e.normNextOnly && !g.layers[l + 1]!.edges) rec.dispatch('rmsnorm', P.norm.pipeline, e.normNextOnly, k.norm(T, false).workgroups);
}

/** Layer `l`'s row-position pipelines and bind groups; a graph built without KV slots has none. */
function rowPositionBindings(g: ForwardGraph, l: number) {
  const layer = g.layers[l]!.rowPositions;
  const pipelines = g.pipelines.rowPositions;
  if (!layer || !pipelines) throw new RangeError('encodeLayer: per-row positions need a forward built with several KV slots');
  return { layer, pipelines };
}

/**
 * Final residual add + norm of rows [r0, r0+rows) into headIn, the classifier into logits[0, rows),
 * and with `nllFirst` (index of row r0 in the current nll call) the per-row NLL. The slot's uniforms
 * are written through `queue` (ahead of the submit that uses them).
 */
export function encodeHead(rec: Recorder, g: ForwardGraph, queue: GPUQueue, slot: number, r0: number, rows: number, nllFirst: number | undefined): void {
  const s = g.slots[slot]!;
  const norm = g.kernels.headNorm(rows, r0);
  queue.writeBuffer(s.normUniform, 0, norm.uniforms);
  rec.dispatch('rmsnorm_final', g.pipelines.normAdd.pipeline, s.norm, norm.workgroups);
  rec.linear(g.classifier, 'lm_head', g.buf.headIn, g.buf.logits, rows);
  if (nllFirst !== undefined) {
    const nll = g.kernels.nll(rows, nllFirst);
    queue.writeBuffer(s.nllUniform, 0, nll.uniforms);
    rec.dispatch('logsoftmax_nll', g.pipelines.nll.pipeline, s.nll, nll.workgroups);
  }
}

/**
 * The next token from row `row` of logits, chosen on the GPU with `draw`, and the copy of its
 * (id, non-finite count) into sampleRead: what a decode step reads back instead of the logits row.
 */
export function encodeSample(rec: Recorder, g: ForwardGraph, queue: GPUQueue, row: number, draw: SampleDraw): void {
  const plan = g.kernels.sample(row, draw);
  queue.writeBuffer(g.sample.uniform, 0, plan.uniforms);
  rec.dispatch('sample', g.pipelines.sample.pipeline, g.sample.bindGroup, plan.workgroups);
  rec.copy(g.buf.sampleOut, g.buf.sampleRead, 8);
}
