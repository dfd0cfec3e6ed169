/// <reference types="@webgpu/types" />
// Building the executor's ForwardGraph (runtime/recorder.ts) once, at load: block linears (dense,
// fused q|k|v and gate|up where allowed, or what linearFactory supplies), pipelines, activation
// buffers and uniforms sized for maxBatchTokens, the KV cache, the embedding table (GPU parts or host
// rows), norm weights, every bind group, the classifier and its sub-chunk slots. What it creates is
// returned with the means to destroy it; if building fails, what was created so far is destroyed here.
import type { GpuContext } from '../core/gpu.js';
import type { LinearOp } from './linear.js';
import {
  BLOCK_LINEARS, layerTensorName, type BlockLinearName, type ModelSource, type TensorRef,
} from '../core/model.js';
import type { PipelineCache } from './pipelines.js';
import { createBuffer, uploadBuffer, READBACK, UNIFORM } from './buffers.js';
import { readTensorF32 } from '../core/dtype.js';
import { createDenseLinearStreamed, type DenseWeights } from './dense-linear.js';
import { stackRows, tensorRows, type WeightRows } from './weight-rows.js';
import type { WeightUploader } from './weight-upload.js';
import { KvCache } from './kv-cache.js';
import type { KernelPlan } from '../kernels/kernel_plan.js';
import { embeddingParts } from '../kernels/embedding.js';
import { ropeTable } from '../kernels/rope_kv.js';
import { planSwiglu } from '../kernels/swiglu.js';
import { sampleBufferBytes } from '../kernels/sample.js';
import type { ScratchPool } from './scratch-pool.js';
import { bindPlanned, type PlannedPipeline, type PlanResources } from './plan-binding.js';
import { ExecutorError } from './errors.js';
import type {
  ActivationBuffers, EmbeddingPart, ForwardGraph, ForwardKernels, HeadSlot, Layer, Pipelines,
} from './recorder.js';


/**
 * Returns a LinearOp to use for a block linear instead of the dense one, or undefined for dense.
 * `scratch` is the executor's pool for temporaries shared by such ops (quantized linears take it as
 * their `scratch` option); the executor frees it and reports it as w4a8Scratch.
 */
export type LinearFactory = ((layer: number, name: BlockLinearName, w: DenseWeights, scratch: ScratchPool) => LinearOp | undefined) & {
  /**
   * One op for linears of one input (q|k|v, gate|up) whose output is theirs side by side, in the
   * order of `names`; undefined to have them made one by one. Asked first, when projections are fused.
   */
  group?: (layer: number, names: readonly BlockLinearName[], scratch: ScratchPool) => LinearOp | undefined;
};

/**
 * Returns the classifier's op instead of the dense one (an artifact's quantized lm_head), or undefined
 * for dense. `w` streams the model's classifier rows (lm_head, or the embedding when tied); the op must
 * take up to `maxTokens` rows per call.
 */
export type ClassifierFactory = (w: DenseWeights, maxTokens: number, scratch: ScratchPool) => LinearOp | undefined;

export interface ForwardShape {
  dtype: 'f32' | 'f16';
  kvDtype: 'f32' | 'f16';
  maxSeqLen: number;
  maxBatchTokens: number;
  headRows: number;
  embedding: 'gpu' | 'host';
  fuseProjections: boolean;
  linearFactory?: LinearFactory;
  /** Handed to linearFactory: the executor's shared scratch. */
  scratch: ScratchPool;
  classifierFactory?: ClassifierFactory;
  /** Weights of the dense classifier. */
  classifierDtype: 'f32' | 'f16';
  /**
   * KV-cache regions of maxSeqLen positions each (continuous batching); above 1 the row-position
   * variants of rope_kv and attention are built too.
   */
  slots: number;
}

/** Weight bytes on the GPU by part. */
export interface WeightBytes {
  blockLinears: number;
  embedding: number;
  classifier: number;
  norms: number;
}

export interface BuiltForward {
  graph: ForwardGraph;
  bytes: WeightBytes;
  /** Destroys every buffer, op and cache built. */
  destroy(): void;
}

/** A linear op from linearFactory, or a dense one streamed from the model, and its profile label. */
interface PlannedLinear {
  op: LinearOp;
  kind: string;
}

/** Builds the forward of `model` for `shape`; a model or shape that cannot be run throws ExecutorError. */
export async function buildForward(
  gpu: GpuContext, model: ModelSource, cache: PipelineCache, kernels: ForwardKernels, shape: ForwardShape, uploader: WeightUploader,
): Promise<BuiltForward> {
  const owned: Array<{ destroy(): void }> = [];
  const destroy = () => {
    for (const o of owned) o.destroy();
    owned.length = 0;
  };
  try {
    return { ...(await build(gpu, model, cache, kernels, shape, uploader, owned)), destroy };
  } catch (err) {
    destroy();
    throw err;
  }
}

async function build(
  gpu: GpuContext, model: ModelSource, cache: PipelineCache, kernels: ForwardKernels, shape: ForwardShape, uploader: WeightUploader,
  owned: Array<{ destroy(): void }>,
): Promise<{ graph: ForwardGraph; bytes: WeightBytes }> {
  const c = model.config;
  const device = gpu.device;
  const B = shape.maxBatchTokens;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const f16 = shape.dtype === 'f16';
  const maxBinding = gpu.limits.maxStorageBufferBindingSize;
  const bytes: WeightBytes = { blockLinears: 0, embedding: 0, classifier: 0, norms: 0 };
  const own = <T extends { destroy(): void }>(x: T): T => (owned.push(x), x);
  const buffer = (n: number, label: string, usage?: number) => own(createBuffer(device, n, label, usage));
  const upload = (data: ArrayBufferView, label: string) => own(uploadBuffer(device, data, label));
  const tensorRef = (name: string, dims: number[]): TensorRef => {
    if (!model.has(name)) throw new ExecutorError(`${model.id}: missing tensor ${name}`);
    const t = model.tensor(name);
    if (t.shape.length !== dims.length || t.shape.some((d, i) => d !== dims[i])) {
      throw new ExecutorError(`${model.id}: tensor ${name} has shape [${t.shape.join(', ')}], expected [${dims.join(', ')}]`);
    }
    return t;
  };
  // Small tensors (norms, biases) are read as f32 after the shape check.
  const tensor = (name: string, dims: number[]) => readTensorF32(tensorRef(name, dims));
  /** A bind group of `planned`'s pipeline: each buffer, bound whole, at the binding its plan names. */
  const bind = <B extends string>(planned: PlannedPipeline<B>, label: string, buffers: PlanResources<B>): GPUBindGroup =>
    bindPlanned(device, planned, buffers, label);

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
  const dense = async (w: DenseWeights, label: string) =>
    own(await createDenseLinearStreamed(gpu, cache, { rows: w.rows!, bias: w.bias }, { label, dtype: shape.dtype, maxTokens: B }, uploader));
  const plans: Array<{ attnIn: PlannedLinear[]; mlpIn: PlannedLinear[]; o: LinearOp; down: LinearOp }> = [];
  const groupNames = {
    attn: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'] as BlockLinearName[],
    mlp: ['mlp.gate_proj', 'mlp.up_proj'] as BlockLinearName[],
  };
  for (let l = 0; l < c.nLayers; l++) {
    const weights = {} as Record<BlockLinearName, DenseWeights>;
    const custom = {} as Partial<Record<BlockLinearName, LinearOp>>;
    // Groups from linearFactory (one op for q|k|v, one for gate|up), asked before the single linears.
    const grouped = {} as Partial<Record<keyof typeof groupNames, LinearOp>>;
    const inGroup = new Set<BlockLinearName>();
    if (shape.fuseProjections && shape.linearFactory?.group) {
      for (const key of ['attn', 'mlp'] as const) {
        const names = groupNames[key];
        const op = shape.linearFactory.group(l, names, shape.scratch);
        if (!op) continue;
        own(op);
        const out = names.reduce((n, name) => n + shapes[name][0], 0);
        if (op.inFeatures !== c.dim || op.outFeatures !== out) {
          throw new ExecutorError(`${layerTensorName(l, names.join('|'))}: linearFactory.group returned a ${op.outFeatures}×${op.inFeatures} op, expected ${out}×${c.dim}`);
        }
        grouped[key] = op;
        for (const name of names) inGroup.add(name);
      }
    }
    for (const { name } of BLOCK_LINEARS) {
      const [out, inF] = shapes[name];
      const ref = tensorRef(layerTensorName(l, `${name}.weight`), [out, inF]);
      const biasName = layerTensorName(l, `${name}.bias`);
      const bias = model.has(biasName) ? tensor(biasName, [out]) : undefined;
      // `weight` (f32 on the host) is read only if a linearFactory asks for it; dense ops stream `rows`.
      weights[name] = { inFeatures: inF, outFeatures: out, rows: tensorRows(ref), bias, get weight() { return readTensorF32(ref); } };
      if (inGroup.has(name)) continue;
      const op = shape.linearFactory?.(l, name, weights[name], shape.scratch);
      if (op) own(op);
      if (op && (op.inFeatures !== inF || op.outFeatures !== out)) {
        throw new ExecutorError(`${layerTensorName(l, name)}: linearFactory returned a ${op.outFeatures}×${op.inFeatures} op, expected ${out}×${inF}`);
      }
      if (op) custom[name] = op;
    }
    // Ops from linearFactory upload with queue writes: let them land layer by layer, so the host side
    // of those copies stays one layer's worth (the streamed dense path waits per chunk already).
    if (Object.keys(custom).length || inGroup.size) await device.queue.onSubmittedWorkDone();
    const single = async (name: BlockLinearName) => ({ op: custom[name] ?? (await dense(weights[name], layerTensorName(l, name))), kind: name.split('.')[1]! });
    const group = async (key: keyof typeof groupNames, fusedKind: string) => {
      const names = groupNames[key];
      const op = grouped[key];
      if (op) return [{ op, kind: fusedKind }];
      if (!(shape.fuseProjections && names.every((n) => !custom[n]))) {
        const ops = [];
        for (const n of names) ops.push(await single(n));
        return ops;
      }
      return [{ op: await dense(stackLinears(names.map((n) => weights[n])), layerTensorName(l, `${fusedKind}(fused)`)), kind: fusedKind }];
    };
    plans.push({
      attnIn: await group('attn', 'qkv_proj'),
      mlpIn: await group('mlp', 'gate_up_proj'),
      o: (await single('self_attn.o_proj')).op,
      down: (await single('mlp.down_proj')).op,
    });
    for (const p of plans[l]!.attnIn.concat(plans[l]!.mlpIn)) bytes.blockLinears += p.op.byteSize;
    bytes.blockLinears += plans[l]!.o.byteSize + plans[l]!.down.byteSize;
  }
  const anyQkvFused = plans.some((p) => p.attnIn.length === 1);
  const anyQkvSeparate = plans.some((p) => p.attnIn.length > 1);
  const anyGateUpFused = plans.some((p) => p.mlpIn.length === 1);
  const anyGateUpSeparate = plans.some((p) => p.mlpIn.length > 1);

  // Pipelines (compiled and checked up front, so shader errors surface here with line numbers), each
  // kept with its plan: the bind groups below bind by that plan's binding names.
  const planned = async <B extends string>(plan: KernelPlan<B>): Promise<PlannedPipeline<B>> => ({ pipeline: await cache.getChecked(plan.spec), plan });
  const pipelines: Pipelines = {
    embedding: await planned(kernels.embedding(1, { rowStart: 0, rowCount: 1 })),
    norm: await planned(kernels.norm(1, false)),
    normAdd: await planned(kernels.norm(1, true)),
    ropeKv: {
      fused: anyQkvFused ? await planned(kernels.ropeKv(1, 0, true)) : undefined!,
      separate: anyQkvSeparate ? await planned(kernels.ropeKv(1, 0, false)) : undefined!,
    },
    attention: { keys: await planned(kernels.attention(1, 0, 'keys')), rows: await planned(kernels.attention(1, 0, 'rows')) },
    swiglu: {
      fused: anyGateUpFused ? await planned(planSwiglu({ rows: 1, hidden: c.hiddenDim, gateUpFused: true })) : undefined!,
      separate: anyGateUpSeparate ? await planned(planSwiglu({ rows: 1, hidden: c.hiddenDim })) : undefined!,
    },
    nll: await planned(kernels.nll(1, 0)),
    sample: await planned(kernels.sample(0, { temperature: 0, topK: 0, topP: 1, u: 0 })),
    rowPositions: shape.slots > 1
      ? {
          ropeKv: {
            fused: anyQkvFused ? await planned(kernels.ropeKv(1, 0, true, true)) : undefined!,
            separate: anyQkvSeparate ? await planned(kernels.ropeKv(1, 0, false, true)) : undefined!,
          },
          attention: { keys: await planned(kernels.attention(1, 0, 'keys', undefined, true)), rows: await planned(kernels.attention(1, 0, 'rows', undefined, true)) },
        }
      : undefined,
  };

  // Activations, sized for maxBatchTokens rows.
  const f = 4;
  const maybe = (need: boolean, n: number, label: string) => (need ? buffer(n, label) : undefined);
  const sampleBytes = sampleBufferBytes(c.vocabSize);
  const buf: ActivationBuffers = {
    ids: buffer(B * 4, 'ids'),
    x: buffer(B * c.dim * f, 'x'),
    xn: buffer(B * c.dim * f, 'xn'),
    q: maybe(anyQkvSeparate, B * qDim * f, 'q'),
    k: maybe(anyQkvSeparate, B * kvDim * f, 'k'),
    v: maybe(anyQkvSeparate, B * kvDim * f, 'v'),
    qkv: maybe(anyQkvFused, B * (qDim + 2 * kvDim) * f, 'qkv'),
    att: buffer(B * qDim * f, 'att'),
    delta: buffer(B * c.dim * f, 'delta'),
    gate: maybe(anyGateUpSeparate, B * c.hiddenDim * f, 'gate'),
    up: maybe(anyGateUpSeparate, B * c.hiddenDim * f, 'up'),
    gateUp: maybe(anyGateUpFused, B * 2 * c.hiddenDim * f, 'gate_up'),
    act: buffer(B * c.hiddenDim * f, 'act'),
    rope: upload(ropeTable(c.headDim, c.ropeTheta, shape.maxSeqLen, c.ropeScaling), 'rope_table'),
    headIn: buffer(shape.headRows * c.dim * f, 'head_in'),
    logits: buffer(shape.headRows * c.vocabSize * f, 'logits'),
    targets: buffer(shape.maxSeqLen * 4, 'targets'),
    nllOut: buffer(shape.maxSeqLen * 8, 'nll'),
    logitsRead: buffer(c.vocabSize * 4, 'logits/read', READBACK),
    nllRead: buffer(shape.maxSeqLen * 8, 'nll/read', READBACK),
    sampleMasses: buffer(sampleBytes.masses, 'sample/masses'),
    sampleCandidates: buffer(sampleBytes.candidates, 'sample/candidates'),
    sampleOut: buffer(sampleBytes.out, 'sample/out'),
    sampleRead: buffer(sampleBytes.out, 'sample/read', READBACK),
    rowPos: maybe(shape.slots > 1, B * 8, 'row_pos'),
  };
  for (const [name, b] of Object.entries(buf)) {
    if (b && b.size > maxBinding) {
      throw new ExecutorError(`${model.id}: activation buffer ${name} needs ${b.size} bytes, over the ${maxBinding}-byte storage binding limit; lower maxBatchTokens (${B})`);
    }
  }
  const uniform = (label: string) => buffer(16 * 2, label, UNIFORM);
  const U = {
    norm: uniform('norm/params'),
    ropeKv: uniform('rope_kv/params'),
    attention: uniform('attention/params'),
    attentionQkv: uniform('attention_qkv/params'),
    swiglu: uniform('swiglu/params'),
  };

  // Slot s holds cache rows [s·maxSeqLen, (s+1)·maxSeqLen); checked before allocating.
  const kvShape = { nLayers: c.nLayers, maxSeqLen: shape.slots * shape.maxSeqLen, kvDim, f16: shape.kvDtype === 'f16' };
  const kvLayerBytes = kvShape.maxSeqLen * kvDim * (kvShape.f16 ? 2 : 4);
  if (kvLayerBytes > maxBinding) {
    const slots = shape.slots > 1 ? ` × ${shape.slots} slots` : '';
    throw new ExecutorError(`${model.id}: one layer's K cache needs ${kvLayerBytes} bytes, over the ${maxBinding}-byte binding limit; lower maxSeqLen (${shape.maxSeqLen})${slots}`);
  }
  const kv = own(new KvCache(device, kvShape));

  // Embedding table: on the host (rows gathered per chunk), or on the GPU split by rows where it
  // exceeds one binding, f16 in f16 mode.
  const embed = tensorRows(tensorRef('model.embed_tokens.weight', [c.vocabSize, c.dim]));
  const embedHost: WeightRows | undefined = shape.embedding === 'host' ? embed : undefined;
  const embedParts: EmbeddingPart[] = [];
  const gpuParts = shape.embedding === 'gpu' ? embeddingParts(c.vocabSize, c.dim, f16 ? 2 : 4, Math.min(maxBinding, gpu.limits.maxBufferSize)) : [];
  for (const part of gpuParts) {
    const table = own(await uploader.upload(embed, part.rowStart, part.rowCount, c.dim, f16 ? 'f16' : 'f32', `embed[${part.rowStart}:${part.rowStart + part.rowCount}]`));
    bytes.embedding += table.size;
    const partUniform = uniform('embedding/params');
    embedParts.push({ ...part, uniform: partUniform, bindGroup: bind(pipelines.embedding, 'embedding', { params: partUniform, ids: buf.ids, table, out: buf.x }) });
  }

  // Norm weights stay f32 (tiny); the final norm is shared by every classifier slot.
  const norms = Array.from({ length: c.nLayers }, (_, l) => ({
    input: upload(tensor(layerTensorName(l, 'input_layernorm.weight'), [c.dim]), `layers.${l}.input_layernorm`),
    post: upload(tensor(layerTensorName(l, 'post_attention_layernorm.weight'), [c.dim]), `layers.${l}.post_attention_layernorm`),
  }));
  const finalNorm = upload(tensor('model.norm.weight', [c.dim]), 'model.norm');
  for (const n of norms) bytes.norms += n.input.size + n.post.size;
  bytes.norms += finalNorm.size;

  const b = buf;
  const P = pipelines;
  const normFirst = bind(P.norm, 'rmsnorm/layers.0', { params: U.norm, x: b.x, weight: norms[0]!.input, out: b.xn });
  const layers: Layer[] = plans.map((p, l) => {
    const qkvFused = p.attnIn.length === 1;
    const gateUpFused = p.mlpIn.length === 1;
    // The block's edges ride in the linears' kernels where all four take them (quantized groups).
    const edges = qkvFused && gateUpFused && [p.attnIn[0]!.op, p.mlpIn[0]!.op, p.o, p.down].every((op) => op.encodeFused)
      ? {
          inputNorm: norms[l]!.input,
          postNorm: norms[l]!.post,
          normNextOnly: l + 1 < c.nLayers ? bind(P.norm, `rmsnorm/layers.${l + 1}.input`, { params: U.norm, x: b.x, weight: norms[l + 1]!.input, out: b.xn }) : undefined,
        }
      : undefined;
    const caches = { k_cache: kv.k[l]!, v_cache: kv.v[l]! };
    // Attention reads q from the fused q|k|v buffer (its own uniforms: wider rows) or from q.
    const attention = { params: qkvFused ? U.attentionQkv : U.attention, q: qkvFused ? b.qkv : b.q, ...caches, out: b.att };
    const rp = P.rowPositions;
    const attentionRows = { ...attention, row_pos: b.rowPos };
    const rowPositions = rp
      ? {
          ropeKv: qkvFused
            ? bind(rp.ropeKv.fused, `rope_kv_qkv_rowpos/layers.${l}`, { params: U.ropeKv, qkv: b.qkv, table: b.rope, ...caches, row_pos: b.rowPos })
            : bind(rp.ropeKv.separate, `rope_kv_rowpos/layers.${l}`, { params: U.ropeKv, q: b.q, k: b.k, v: b.v, table: b.rope, ...caches, row_pos: b.rowPos }),
          attention: {
            keys: bind(rp.attention.keys, `attention_keys_rowpos/layers.${l}`, attentionRows),
            rows: bind(rp.attention.rows, `attention_rows_rowpos/layers.${l}`, attentionRows),
          },
        }
      : undefined;
    // x += delta, then xn = norm(x) · weight.
    const residualNorm = (weight: GPUBuffer) => ({ params: U.norm, x: b.x, weight, out: b.xn, delta: b.delta });
    return {
      attnIn: qkvFused ? [{ ...p.attnIn[0]!, out: b.qkv! }] : p.attnIn.map((x, i) => ({ ...x, out: [b.q!, b.k!, b.v!][i]! })),
      oProj: p.o,
      mlpIn: gateUpFused ? [{ ...p.mlpIn[0]!, out: b.gateUp! }] : p.mlpIn.map((x, i) => ({ ...x, out: [b.gate!, b.up!][i]! })),
      downProj: p.down,
      qkvFused,
      gateUpFused,
      ropeKv: qkvFused
        ? bind(P.ropeKv.fused, `rope_kv_qkv/layers.${l}`, { params: U.ropeKv, qkv: b.qkv, table: b.rope, ...caches })
        : bind(P.ropeKv.separate, `rope_kv/layers.${l}`, { params: U.ropeKv, q: b.q, k: b.k, v: b.v, table: b.rope, ...caches }),
      swiglu: gateUpFused
        ? bind(P.swiglu.fused, `swiglu_fused/layers.${l}`, { params: U.swiglu, gate_up: b.gateUp, out: b.act })
        : bind(P.swiglu.separate, `swiglu/layers.${l}`, { params: U.swiglu, gate: b.gate, up: b.up, out: b.act }),
      attention: {
        keys: bind(P.attention.keys, `attention_keys/layers.${l}`, attention),
        rows: bind(P.attention.rows, `attention_rows/layers.${l}`, attention),
      },
      normPostAttn: bind(P.normAdd, `rmsnorm_add/layers.${l}.post`, residualNorm(norms[l]!.post)),
      normNext: l + 1 < c.nLayers ? bind(P.normAdd, `rmsnorm_add/layers.${l + 1}.input`, residualNorm(norms[l + 1]!.input)) : undefined,
      edges,
      rowPositions,
    };
  });

  // Classifier (lm_head, or the embedding when tied): what classifierFactory gives, else dense in classifierDtype.
  if (!model.has('lm_head.weight') && !c.tiedEmbeddings) throw new ExecutorError(`${model.id}: missing tensor lm_head.weight (embeddings are not tied)`);
  const headRef = model.has('lm_head.weight') ? tensorRef('lm_head.weight', [c.vocabSize, c.dim]) : tensorRef('model.embed_tokens.weight', [c.vocabSize, c.dim]);
  const headWeights: DenseWeights = { inFeatures: c.dim, outFeatures: c.vocabSize, rows: model.has('lm_head.weight') ? tensorRows(headRef) : embed, get weight() { return readTensorF32(headRef); } };
  const custom = shape.classifierFactory?.(headWeights, shape.headRows, shape.scratch);
  if (custom && (custom.inFeatures !== c.dim || custom.outFeatures !== c.vocabSize)) {
    custom.destroy();
    throw new ExecutorError(`lm_head: classifierFactory returned a ${custom.outFeatures}×${custom.inFeatures} op, expected ${c.vocabSize}×${c.dim}`);
  }
  const classifier = own(custom ?? await createDenseLinearStreamed(gpu, cache, { rows: headWeights.rows! }, { label: 'lm_head', dtype: shape.classifierDtype, maxTokens: shape.headRows }, uploader));
  bytes.classifier += classifier.byteSize;

  const slots: HeadSlot[] = [];
  const slotCount = Math.ceil(B / shape.headRows);
  for (let s = 0; s < slotCount; s++) {
    const normUniform = uniform(`head[${s}]/norm/params`);
    const nllUniform = uniform(`head[${s}]/nll/params`);
    slots.push({
      normUniform,
      nllUniform,
      norm: bind(P.normAdd, `rmsnorm_add/model.norm[${s}]`, { params: normUniform, x: b.x, weight: finalNorm, out: b.headIn, delta: b.delta }),
      nll: bind(P.nll, `logsoftmax_nll[${s}]`, { params: nllUniform, logits: b.logits, targets: b.targets, out: b.nllOut }),
    });
  }
  const sampleUniform = uniform('sample/params');
  const sample = {
    uniform: sampleUniform,
    bindGroup: bind(P.sample, 'sample', { params: sampleUniform, logits: b.logits, masses: b.sampleMasses, candidates: b.sampleCandidates, out: b.sampleOut }),
  };
  const graph: ForwardGraph = { config: c, kernels, pipelines, buf, uniforms: U, kv, layers, normFirst, embedParts, embedHost, slots, classifier, sample };
  return { graph, bytes };
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
