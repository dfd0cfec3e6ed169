// Shared setup for commands that run a model: open the GPU, resolve the model, build the executor.
import { openNodeDevice } from '../loaders/node-gpu.js';
import { resolveModel } from '../loaders/registry.js';
import { Executor } from '../runtime/executor.js';
import type { GpuContext } from '../runtime/device.js';
import type { ModelSource, TextTokenizer } from '../runtime/model.js';
import { UsageError } from './errors.js';

export interface SessionOptions {
  model: string;
  dtype?: 'f32' | 'f16';
  maxSeqLen?: number;
  tokenizer?: string;
}

export interface Session {
  gpu: GpuContext;
  source: ModelSource;
  tokenizer: TextTokenizer;
  executor: Executor;
  close(): void;
}

export async function openSession(opts: SessionOptions): Promise<Session> {
  const { source, tokenizer } = resolveModel(opts.model, { tokenizer: opts.tokenizer });
  const gpu = await openNodeDevice();
  const dtype = opts.dtype ?? 'f32';
  if (dtype === 'f16' && !gpu.features.shaderF16) {
    throw new UsageError(`--dtype f16 needs the shader-f16 feature, which this adapter (${gpu.describe()}) lacks`, 'use --dtype f32');
  }
  const executor = await Executor.create(gpu, source, { dtype, maxSeqLen: opts.maxSeqLen });
  return {
    gpu, source, tokenizer, executor,
    close() {
      executor.destroy();
      source.close();
      gpu.device.destroy();
    },
  };
}

export const modelOptions = {
  model: { type: 'string', default: 'stories260k', describe: 'Preset name from models.json, a llama2.c .bin file, or a Hugging Face model directory' },
  dtype: { type: 'string', choices: ['f32', 'f16'], default: 'f32', describe: 'Weight precision of the dense path (f16 needs shader-f16)' },
  tokenizer: { type: 'string', describe: 'tokenizer.json or llama2.c tokenizer.bin (default: next to the model)' },
} as const;
