// `aser plan` and `aser flops` as library calls: the config a --model / --config names (built-in
// 8B shapes when the preset is not installed), and the memory plan for it (runtime/memory-plan.ts).
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { loadHfConfig } from '../loaders/hf-config.js';
import { loadRegistry, resolveModel } from '../loaders/registry.js';
import { SYNTH_SHAPES, isSynthShapeName } from '../loaders/synth.js';
import type { ModelConfig } from '../core/model.js';
import { planMemory, type MemoryPlan, type MemoryPlanOptions, type PlanWeights } from '../runtime/memory-plan.js';
import { MemoryPlanError } from '../runtime/errors.js';
import { DEFAULT_MAX_BATCH_TOKENS } from '../runtime/executor-options.js';

/** The α used when neither --alpha nor --rank is given (paper Table 4: mean rank 30.58 at d = 4096). */
export const DEFAULT_PLAN_ALPHA = 0.05;

/** BOS/EOS do not matter for memory; placeholders let configs without them parse. */
const ANY_TOKEN_IDS = { bosId: 0, eosId: 0 };

/**
 * --model / --config -> the config to plan for, and a line saying where it came from. A preset whose
 * directory is missing falls back to the built-in synthetic shape of the same name (llama3-8b, qwen1.5-7b).
 */
export function resolvePlanConfig(model: string | undefined, configFile: string | undefined): { config: ModelConfig; origin: string } {
  if (configFile) return { config: loadHfConfig(configFile, ANY_TOKEN_IDS), origin: configFile };
  if (!model) throw new UsageError('name a model: --model llama3-8b|qwen1.5-7b|PRESET|PATH, or --config config.json');
  const preset = loadRegistry().presets.get(model);
  if (preset && !existsSync(preset.path) && isSynthShapeName(model)) {
    return { config: { ...SYNTH_SHAPES[model] }, origin: `built-in ${model} shape (preset ${model} not installed at ${preset.path})` };
  }
  if (preset?.format === 'hf') {
    const file = join(preset.path, 'config.json');
    if (existsSync(file)) return { config: loadHfConfig(file, ANY_TOKEN_IDS), origin: `preset ${model}: ${file}` };
  }
  if (!preset && isSynthShapeName(model) && !existsSync(model)) return { config: { ...SYNTH_SHAPES[model] }, origin: `built-in ${model} shape` };
  if (!preset && existsSync(model)) {
    const file = statSync(model).isDirectory() ? join(model, 'config.json') : model;
    if (basename(file) === 'config.json' && existsSync(file)) return { config: loadHfConfig(file, ANY_TOKEN_IDS), origin: file };
  }
  // llama2.c checkpoints and anything else: the full loader (which also explains what is missing).
  const resolved = resolveModel(model);
  try {
    return { config: resolved.source.config, origin: `${preset ? `preset ${model}: ` : ''}${resolved.path}` };
  } finally {
    resolved.source.close();
  }
}

export interface PlanRequest {
  model?: string;
  config?: string;
  weights: PlanWeights;
  alpha?: number;
  rank?: number;
  outliers: number;
  /** KV-cache length (default min(4096, the model maximum)). */
  ctx?: number;
  /** KV-cache type (default f16, f32 for f32 weights). */
  kv?: 'f16' | 'f32';
  /** Tokens per prefill chunk (default min(DEFAULT_MAX_BATCH_TOKENS, ctx), as the executor's). */
  batch?: number;
  embedding: 'auto' | 'gpu' | 'host';
  maxBinding: number;
  /** Classifier storage (default: the memory plan's, int8 for w4a8). */
  classifier?: MemoryPlanOptions['classifier'];
}

/** The memory plan for a request, and where its config came from; bad settings are UsageErrors. */
export function planModelMemory(req: PlanRequest): { plan: MemoryPlan; origin: string } {
  const { config, origin } = resolvePlanConfig(req.model, req.config);
  const weights = req.weights;
  const ctx = req.ctx ?? Math.min(4096, config.maxSeqLen);
  if (!(Number.isInteger(ctx) && ctx >= 1)) throw new UsageError(`--ctx must be a positive integer, got ${ctx}`);
  if (ctx > config.maxSeqLen) throw new UsageError(`--ctx ${ctx} exceeds the model's ${config.maxSeqLen}-token maximum (max_position_embeddings)`);
  const dense = weights !== 'w4a8';
  if (dense && (req.alpha !== undefined || req.rank !== undefined || req.outliers)) throw new UsageError(`--alpha, --rank and --outliers apply to --weights w4a8 only`);
  const options: MemoryPlanOptions = {
    weights,
    rank: req.rank,
    alpha: dense ? undefined : req.rank === undefined ? req.alpha ?? DEFAULT_PLAN_ALPHA : undefined,
    outliers: req.outliers,
    ctx,
    kvDtype: req.kv ?? (weights === 'f32' ? 'f32' : 'f16'),
    maxBatchTokens: req.batch ?? Math.min(DEFAULT_MAX_BATCH_TOKENS, ctx),
    embedding: req.embedding,
    maxStorageBufferBindingSize: req.maxBinding,
    classifier: req.classifier,
  };
  try {
    return { plan: planMemory(config, options), origin };
  } catch (err) {
    if (err instanceof MemoryPlanError) throw new UsageError(err.message);
    throw err;
  }
}
