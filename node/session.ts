// The one way to run a model on the GPU: resolve the model (and its artifact), open Dawn, build
// executors. `openSession` is the common case (one executor); `openModelSession` keeps device, model and
// pipeline cache open for several executors (profile variants, a table of artifacts) or for callers
// that build their own (layer-group calibration). A session closes what it opened, in the order
// executors → model → device; a model handed in already resolved stays the caller's unless `closeModel`.
import { openNodeDevice } from './gpu.js';
import { resolveModel, type ResolvedModel } from '../loaders/registry.js';
import { Executor } from '../runtime/executor.js';
import { DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_SEQ_LEN } from '../runtime/executor-options.js';
import type { GpuContext } from '../core/gpu.js';
import type { ModelSource, TextTokenizer } from '../core/model.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { UsageError } from '../core/errors.js';
import { openArtifact, type ArtifactReader } from '../loaders/artifact.js';
import { describeModelFiles, type ArtifactManifest } from '../loaders/artifact-manifest.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { quantizedClassifierFactory, quantizedLinearFactory } from '../runtime/artifact-linears.js';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** How one executor of a session is built. */
export interface ExecutorSettings {
  dtype?: 'f32' | 'f16';
  /** KV-cache length (default DEFAULT_MAX_SEQ_LEN), never more than the model's context. Prefill chunks: min(DEFAULT_MAX_BATCH_TOKENS, this). */
  maxSeqLen?: number;
  /**
   * Quantized linears by module name: they replace the dense block linears (default: the session's
   * artifact's, if it has one).
   */
  linears?: (module: string) => QuantizedLinear | undefined;
  /** With quantized linears: run them as f32 fake quant on the dense path instead of the fused kernels. */
  simulate?: boolean;
  /** Check every block's outputs for NaN/Inf (slow; names the first bad layer). */
  checkNumerics?: boolean;
  /** Fuse q|k|v and gate|up of dense layers (the executor's default: true). */
  fuseProjections?: boolean;
  /**
   * The classifier instead of the model's in `dtype`: a quantized one (an artifact's int8/int4
   * lm_head) or the model's held in 'f16'. Default: the session artifact's, unless `linears` are
   * given (then the model's).
   */
  classifier?: QuantizedLinear | 'f16';
  /** KV-cache slots of maxSeqLen positions each, for continuous batching (default 1). */
  slots?: number;
}

export interface ModelSessionOptions {
  /** Preset name or path, or a model already resolved by the caller (then closed by the caller unless `closeModel`). */
  model: string | ResolvedModel;
  /** Overrides the model's tokenizer (only when `model` is a name or path). */
  tokenizer?: string;
  /** A resolved `model` handed in is closed with the session. */
  closeModel?: boolean;
  /**
   * Quantized artifact directory, checked against the model's weights before the GPU is opened; its
   * linears replace the dense block linears of every executor that names no `linears` of its own.
   */
  artifact?: string;
}

export interface SessionOptions extends ModelSessionOptions, ExecutorSettings {}

/** GPU device, model and pipeline cache, open; executors built on demand. */
export interface ModelSession {
  gpu: GpuContext;
  source: ModelSource;
  tokenizer: TextTokenizer;
  /** The model file (llama2c, gguf) or directory (hf) that was loaded. */
  path: string;
  pipelines: PipelineCache;
  /** The artifact's verified manifest and a per-layer reader (its tensors are read while an executor loads). */
  artifact?: ArtifactReader;
  /** An executor over this device, model and pipeline cache; destroyed by close() (or earlier by its own destroy()). */
  createExecutor(settings?: ExecutorSettings): Promise<Executor>;
  /** Destroys every executor built here, then closes the model (if the session owns it) and the device. */
  close(): void;
}

/** A model session with one executor. */
export interface Session extends ModelSession {
  executor: Executor;
}

/** Resolves the model, verifies the artifact, opens the GPU device. */
export async function openModelSession(opts: ModelSessionOptions): Promise<ModelSession> {
  const given = typeof opts.model === 'string' ? undefined : opts.model;
  const resolved = given ?? resolveModel(opts.model as string, { tokenizer: opts.tokenizer });
  const ownsModel = !given || opts.closeModel === true;
  const { source, tokenizer } = resolved;
  let gpu: GpuContext | undefined;
  try {
    const artifact = opts.artifact ? openArtifact(opts.artifact, { expectModelHash: modelIdentity(source.id, resolved.path).sha256 }) : undefined;
    gpu = await openNodeDevice();
    const device = gpu;
    const pipelines = new PipelineCache(device.device);
    const executors: Executor[] = [];
    return {
      gpu: device, source, tokenizer, path: resolved.path, pipelines, artifact,
      async createExecutor(settings: ExecutorSettings = {}) {
        const dtype = settings.dtype ?? 'f32';
        if (dtype === 'f16' && !device.features.shaderF16) {
          throw new UsageError(`--dtype f16 needs the shader-f16 feature, which this adapter (${device.describe()}) lacks`, 'use --dtype f32');
        }
        const maxSeqLen = Math.min(settings.maxSeqLen ?? DEFAULT_MAX_SEQ_LEN, source.config.maxSeqLen);
        const maxBatchTokens = Math.min(DEFAULT_MAX_BATCH_TOKENS, maxSeqLen);
        const lookup = settings.linears ?? (artifact ? (module: string) => artifact.linear(module) : undefined);
        const linearFactory = lookup
          ? quantizedLinearFactory(device, pipelines, lookup, { maxTokens: maxBatchTokens, path: settings.simulate ? 'simulate' : 'fused' })
          : undefined;
        // The artifact's classifier: quantized (int8/int4) through the integer kernels, or the model's in f16.
        // Callers giving their own `linears` (method tables, tests) keep the dense classifier.
        const classifier = settings.classifier ?? (settings.linears ? undefined : artifactClassifier(artifact));
        const quantizedClassifier = classifier === 'f16' ? undefined : classifier;
        const classifierFactory = quantizedClassifier
          ? quantizedClassifierFactory(device, pipelines, quantizedClassifier, { path: settings.simulate ? 'simulate' : 'fused' })
          : undefined;
        const executor = await Executor.create(device, source, {
          dtype, maxSeqLen, maxBatchTokens, pipelines, linearFactory, checkNumerics: settings.checkNumerics, fuseProjections: settings.fuseProjections, slots: settings.slots,
          // An f16 classifier on an adapter without shader-f16 runs from the same weights in f32.
          classifierFactory, classifierDtype: classifier === 'f16' && device.features.shaderF16 ? 'f16' : undefined,
        });
        executors.push(executor);
        return executor;
      },
      close() {
        for (const ex of executors) ex.destroy();
        executors.length = 0;
        if (ownsModel) source.close();
        device.device.destroy();
      },
    };
  } catch (err) {
    gpu?.device.destroy();
    if (ownsModel) source.close();
    throw err;
  }
}

/** The classifier an artifact asks for: its quantized lm_head, 'f16', or undefined (the model's, as in format 1). */
export function artifactClassifier(artifact: { manifest: ArtifactManifest; classifier(): QuantizedLinear | undefined } | undefined): QuantizedLinear | 'f16' | undefined {
  const format = artifact?.manifest.classifier?.format;
  return format === 'f16' ? 'f16' : format ? artifact!.classifier() : undefined;
}

/** Opens the model on the GPU with one executor (`session.executor`). */
export async function openSession(opts: SessionOptions): Promise<Session> {
  if (opts.simulate && !opts.artifact && !opts.linears) throw new UsageError('--simulate needs --artifact DIR (the quantization to simulate)');
  const session = await openModelSession(opts);
  try {
    const executor = await session.createExecutor(opts);
    return { ...session, executor };
  } catch (err) {
    session.close();
    throw err;
  }
}

/** The weight files of a resolved model, hashed: what an artifact records as its source. */
export function modelIdentity(id: string, path: string) {
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(path, f))
    : [path];
  return describeModelFiles(id, files);
}
