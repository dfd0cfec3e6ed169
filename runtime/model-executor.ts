// One executor over an open device and model, with quantized linears and classifier when given: the
// construction `aser` (node/session.ts) and the web page share, so both run the same kernels with the
// same settings. Portable.
import type { GpuContext } from '../core/gpu.js';
import type { ModelSource } from '../core/model.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { UsageError } from '../core/errors.js';
import { Executor } from './executor.js';
import { DEFAULT_MAX_BATCH_TOKENS, DEFAULT_MAX_SEQ_LEN } from './executor-options.js';
import type { PipelineCache } from './pipelines.js';
import { quantizedClassifierFactory, quantizedLinearFactory } from './artifact-linears.js';

export interface ModelExecutorSettings {
  dtype?: 'f32' | 'f16';
  /** KV-cache length (default DEFAULT_MAX_SEQ_LEN), never more than the model's context. Prefill chunks: min(DEFAULT_MAX_BATCH_TOKENS, this). */
  maxSeqLen?: number;
  /** Quantized linears by module name: they replace the dense block linears. */
  linears?: (module: string) => QuantizedLinear | undefined;
  /** With quantized linears: run them as f32 fake quant on the dense path instead of the fused kernels. */
  simulate?: boolean;
  /** Check every block's outputs for NaN/Inf (slow; names the first bad layer). */
  checkNumerics?: boolean;
  /** Fuse q|k|v and gate|up of dense layers (the executor's default: true). */
  fuseProjections?: boolean;
  /** KV-cache slots of maxSeqLen positions each, for continuous batching (default 1). */
  slots?: number;
  /** A quantized classifier (int8/int4 lm_head), or the model's held in 'f16'; default: the model's in `dtype`. */
  classifier?: QuantizedLinear | 'f16';
}

export async function createModelExecutor(device: GpuContext, source: ModelSource, pipelines: PipelineCache, settings: ModelExecutorSettings = {}): Promise<Executor> {
  const dtype = settings.dtype ?? 'f32';
  if (dtype === 'f16' && !device.features.shaderF16) {
    throw new UsageError(`--dtype f16 needs the shader-f16 feature, which this adapter (${device.describe()}) lacks`, 'use --dtype f32');
  }
  const maxSeqLen = Math.min(settings.maxSeqLen ?? DEFAULT_MAX_SEQ_LEN, source.config.maxSeqLen);
  const maxBatchTokens = Math.min(DEFAULT_MAX_BATCH_TOKENS, maxSeqLen);
  const path = settings.simulate ? 'simulate' : 'fused';
  const linearFactory = settings.linears
    ? quantizedLinearFactory(device, pipelines, settings.linears, { maxTokens: maxBatchTokens, path })
    : undefined;
  const classifier = settings.classifier;
  const quantizedClassifier = classifier === 'f16' ? undefined : classifier;
  const classifierFactory = quantizedClassifier ? quantizedClassifierFactory(device, pipelines, quantizedClassifier, { path }) : undefined;
  return Executor.create(device, source, {
    dtype, maxSeqLen, maxBatchTokens, pipelines, linearFactory, checkNumerics: settings.checkNumerics, fuseProjections: settings.fuseProjections, slots: settings.slots,
    // An f16 classifier on an adapter without shader-f16 (SwiftShader in a browser) runs from the same weights in f32.
    classifierFactory, classifierDtype: classifier === 'f16' && device.features.shaderF16 ? 'f16' : undefined,
  });
}
