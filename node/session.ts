// The one way to run a model on the GPU: resolve the model (and its artifact), open Dawn, build
// executors. `openSession` is the common case (one executor); `openModelSession` keeps device, model and
// pipeline cache open for several executors (profile variants, a table of artifacts) or for callers
// that build their own (layer-group calibration). A session closes what it opened, in the order
// executors → model → device; a model handed in already resolved stays the caller's unless `closeModel`.
import { openNodeDevice } from './gpu.js';
import { resolveModel, type ResolvedModel } from '../loaders/registry.js';
import type { Executor } from '../runtime/executor.js';
import { createModelExecutor, type ModelExecutorSettings } from '../runtime/model-executor.js';
import type { GpuContext } from '../core/gpu.js';
import type { ModelSource, TextTokenizer } from '../core/model.js';
import { UsageError } from '../core/errors.js';
import { artifactClassifier, openArtifact, type ArtifactReader } from '../loaders/artifact.js';
import { describeModelFiles } from '../loaders/artifact-manifest.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export { artifactClassifier } from '../loaders/artifact.js';

/**
 * How one executor of a session is built (runtime/model-executor.ts). `linears` default to the
 * session artifact's, if it has one; `classifier` defaults to the artifact's unless `linears` are
 * given (then the model's).
 */
export type ExecutorSettings = ModelExecutorSettings;

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
        // Callers giving their own `linears` (method tables, tests) keep the dense classifier.
        const executor = await createModelExecutor(device, source, pipelines, {
          ...settings,
          linears: settings.linears ?? (artifact ? (module: string) => artifact.linear(module) : undefined),
          classifier: settings.classifier ?? (settings.linears ? undefined : artifactClassifier(artifact)),
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
