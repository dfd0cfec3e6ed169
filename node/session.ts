// Shared setup for commands that run a model: open the GPU, resolve the model, build the executor.
import { openNodeDevice } from './gpu.js';
import { resolveModel } from '../loaders/registry.js';
import { Executor } from '../runtime/executor.js';
import type { GpuContext } from '../core/gpu.js';
import type { ModelSource, TextTokenizer } from '../core/model.js';
import { UsageError } from '../core/errors.js';
import { openArtifact, describeModelFiles, type ArtifactReader } from '../loaders/artifact.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { quantizedLinearFactory } from '../runtime/artifact-linears.js';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface SessionOptions {
  model: string;
  dtype?: 'f32' | 'f16';
  maxSeqLen?: number;
  tokenizer?: string;
  /** Quantized artifact directory: its linears replace the dense block linears (fused W4A8 kernels). */
  artifact?: string;
  /** With `artifact`: run its quantization as f32 fake quant on the dense path instead of the fused kernels. */
  simulate?: boolean;
  /** Check every block's outputs for NaN/Inf (slow; names the first bad layer). */
  checkNumerics?: boolean;
}

export interface Session {
  gpu: GpuContext;
  source: ModelSource;
  tokenizer: TextTokenizer;
  executor: Executor;
  /** The artifact's verified manifest and a per-layer reader (its tensors are read while the executor loads). */
  artifact?: ArtifactReader;
  close(): void;
}

export async function openSession(opts: SessionOptions): Promise<Session> {
  if (opts.simulate && !opts.artifact) throw new UsageError('--simulate needs --artifact DIR (the quantization to simulate)');
  const resolved = resolveModel(opts.model, { tokenizer: opts.tokenizer });
  const { source, tokenizer } = resolved;
  const artifact = opts.artifact ? openArtifact(opts.artifact, { expectModelHash: modelIdentity(source.id, resolved.path).sha256 }) : undefined;
  const gpu = await openNodeDevice();
  const dtype = opts.dtype ?? 'f32';
  if (dtype === 'f16' && !gpu.features.shaderF16) {
    throw new UsageError(`--dtype f16 needs the shader-f16 feature, which this adapter (${gpu.describe()}) lacks`, 'use --dtype f32');
  }
  const pipelines = new PipelineCache(gpu.device);
  const maxSeqLen = Math.min(opts.maxSeqLen ?? 2048, source.config.maxSeqLen);
  const maxBatchTokens = Math.min(512, maxSeqLen);
  const linearFactory = artifact
    ? quantizedLinearFactory(gpu, pipelines, (module) => artifact.linear(module), { maxTokens: maxBatchTokens, path: opts.simulate ? 'simulate' : 'fused' })
    : undefined;
  const executor = await Executor.create(gpu, source, { dtype, maxSeqLen, maxBatchTokens, pipelines, linearFactory, checkNumerics: opts.checkNumerics });
  return {
    gpu, source, tokenizer, executor, artifact,
    close() {
      executor.destroy();
      source.close();
      gpu.device.destroy();
    },
  };
}

/** The weight files of a resolved model, hashed: what an artifact records as its source. */
export function modelIdentity(id: string, path: string) {
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(path, f))
    : [path];
  return describeModelFiles(id, files);
}
