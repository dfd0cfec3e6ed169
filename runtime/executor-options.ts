// The executor's options (ExecutorOptions), their defaults, checks and resolution into the values
// it runs with, and the shape of its memory report. Checks throw ExecutorError.
import type { GpuContext } from '../core/gpu.js';
import { ExecutorError } from './errors.js';
import type { ModelSource } from '../core/model.js';
import type { AttentionVariant } from '../kernels/attention.js';
import type { PipelineCache } from './pipelines.js';
import type { ClassifierFactory, LinearFactory } from './forward-build.js';

export type ExecutorDType = 'f32' | 'f16';

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
  /** The classifier's op instead of the dense one (a quantized lm_head); undefined from it = dense. */
  classifierFactory?: ClassifierFactory;
  /** Weights of the dense classifier (default: dtype); 'f16' halves its bytes, the largest read of a decode step. */
  classifierDtype?: ExecutorDType;
  /** Rows per classifier sub-chunk in nll() (default: as many as fit 64 MiB of f32 logits, ≤ maxBatchTokens). */
  headRows?: number;
  /**
   * Fuse q|k|v and gate|up into one projection each (default true): fewer, larger dispatches. Dense
   * layers stack their weights; linears from linearFactory run as one op where its `group` makes one
   * (quantized linears of one input with equal aBits and smoothing), else separately.
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
  /**
   * KV-cache slots of maxSeqLen positions each (default 1). Above 1 the executor also runs
   * forwardBatch: one forward over rows of several sequences, each in its own slot (continuous batching).
   */
  slots?: number;
}

/** Embedding tables with at least this many values stay on the host by default. */
export const HOST_EMBEDDING_MIN_VALUES = 1 << 26;

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
  /** Scratch shared by the quantized linears of the device (runtime/quantized-linear.ts). */
  w4a8Scratch: number;
  total: number;
}

/** KV-cache length when none is asked for (capped by the model's context). */
export const DEFAULT_MAX_SEQ_LEN = 2048;
/** Tokens per prefill dispatch when none is asked for (capped by maxSeqLen). */
export const DEFAULT_MAX_BATCH_TOKENS = 512;
/** Cap on the [rows, vocab] f32 logits scratch used by nll(): rows are classified in sub-chunks. */
const MAX_LOGITS_BYTES = 64 << 20;

/** ExecutorOptions with every default applied. */
export interface ResolvedOptions {
  dtype: ExecutorDType;
  kvDtype: ExecutorDType;
  maxSeqLen: number;
  maxBatchTokens: number;
  /** Rows per classifier sub-chunk in nll() (bounded by MAX_LOGITS_BYTES). */
  headRows: number;
  embedding: 'gpu' | 'host';
  /** The attention variant when fixed by option; undefined picks by adapter and rows. */
  attention?: AttentionVariant;
  slots: number;
}

/** Checks `opts` against the device and the model and applies the defaults. */
export function resolveOptions(gpu: GpuContext, model: ModelSource, opts: ExecutorOptions): ResolvedOptions {
  validate(gpu, model, opts);
  const c = model.config;
  const maxSeqLen = opts.maxSeqLen ?? Math.min(c.maxSeqLen, DEFAULT_MAX_SEQ_LEN);
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 1 || maxSeqLen > c.maxSeqLen) {
    throw new ExecutorError(`${model.id}: maxSeqLen ${maxSeqLen} must be an integer in 1..${c.maxSeqLen} (the model's context)`);
  }
  const maxBatchTokens = opts.maxBatchTokens ?? Math.min(DEFAULT_MAX_BATCH_TOKENS, maxSeqLen);
  if (!Number.isInteger(maxBatchTokens) || maxBatchTokens < 1 || maxBatchTokens > 65535) throw new ExecutorError(`maxBatchTokens ${maxBatchTokens} must be an integer in 1..65535`);
  if (opts.headRows !== undefined && (!Number.isInteger(opts.headRows) || opts.headRows < 1 || opts.headRows > maxBatchTokens)) {
    throw new ExecutorError(`headRows ${opts.headRows} must be an integer in 1..${maxBatchTokens} (maxBatchTokens)`);
  }
  const choice = opts.embedding ?? 'auto';
  const slots = opts.slots ?? 1;
  if (!Number.isInteger(slots) || slots < 1 || slots > 1024) throw new ExecutorError(`slots ${slots} must be an integer in 1..1024`);
  return {
    slots,
    dtype: opts.dtype,
    kvDtype: opts.kvDtype ?? opts.dtype,
    maxSeqLen,
    maxBatchTokens,
    headRows: opts.headRows ?? Math.max(1, Math.min(maxBatchTokens, Math.floor(Math.min(MAX_LOGITS_BYTES, gpu.limits.maxStorageBufferBindingSize) / (c.vocabSize * 4)))),
    embedding: choice === 'auto' ? (c.vocabSize * c.dim >= HOST_EMBEDDING_MIN_VALUES ? 'host' : 'gpu') : choice,
    attention: opts.attention && opts.attention !== 'auto' ? opts.attention : undefined,
  };
}

/** Throws ExecutorError for a dtype the device cannot run or a model config the executor cannot serve. */
function validate(gpu: GpuContext, model: ModelSource, opts: ExecutorOptions): void {
  const c = model.config;
  const id = model.id;
  if (opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new ExecutorError(`dtype ${String(opts.dtype)} is not 'f32' or 'f16'`);
  const kvDtype = opts.kvDtype ?? opts.dtype;
  if (opts.classifierDtype !== undefined && opts.classifierDtype !== 'f32' && opts.classifierDtype !== 'f16') throw new ExecutorError(`classifierDtype ${String(opts.classifierDtype)} is not 'f32' or 'f16'`);
  if ((opts.dtype === 'f16' || kvDtype === 'f16' || opts.classifierDtype === 'f16') && !gpu.features.shaderF16) {
    throw new ExecutorError(`f16 weights/KV cache need the shader-f16 feature, which this device (${gpu.describe()}) lacks; use dtype 'f32'`);
  }
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new ExecutorError(`${id}: config ${name} = ${v} must be a positive integer`);
  };
  for (const [k, v] of Object.entries({ dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, vocabSize: c.vocabSize, maxSeqLen: c.maxSeqLen })) positive(k, v);
  if (c.nHeads % c.nKvHeads !== 0) throw new ExecutorError(`${id}: ${c.nHeads} attention heads are not a multiple of ${c.nKvHeads} KV heads`);
  if (c.headDim % 2 !== 0) throw new ExecutorError(`${id}: head dim ${c.headDim} must be even for RoPE`);
  if (c.ropeStyle !== 'interleaved' && c.ropeStyle !== 'half') throw new ExecutorError(`${id}: unknown ropeStyle ${String(c.ropeStyle)}`);
}
