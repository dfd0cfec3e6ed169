// `aser plan`: how much GPU memory a model needs (weights, side path, embedding/classifier, KV cache,
// activations) before anything is loaded. The arithmetic is runtime/memory-plan.ts.
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { loadHfConfig } from '../../loaders/hf-config.js';
import { loadRegistry, resolveModel } from '../../loaders/registry.js';
import { SYNTH_SHAPES, isSynthShapeName } from '../../loaders/synth.js';
import type { ModelConfig } from '../../core/model.js';
import { DEFAULT_MAX_BINDING_BYTES, planMemory, type MemoryPlan, type MemoryPlanOptions, type PlanWeights } from '../../runtime/memory-plan.js';
import { MemoryPlanError } from '../../runtime/errors.js';
import { jsonOption } from '../options.js';

interface PlanArgs {
  model?: string;
  config?: string;
  weights: string;
  alpha?: number;
  rank?: number;
  outliers: number;
  ctx?: number;
  kv?: string;
  batch?: number;
  embedding: string;
  'max-binding': number;
  json: boolean;
}

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

const MiB = 2 ** 20;
const GiB = 2 ** 30;

export function formatPlanTable(plan: MemoryPlan, origin: string): string {
  const o = plan.options;
  const c = plan.config;
  const lines: string[] = [];
  lines.push(`model     ${origin}`);
  lines.push(`shape     dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads / ${c.nKvHeads} kv × ${c.headDim}, vocab ${c.vocabSize}${c.tiedEmbeddings ? ' (tied)' : ''}`);
  const rank = plan.rankSource === 'alpha'
    ? `, side path mean rank ${plan.meanRank.toFixed(2)} (α = ${o.alpha}: estimate from ASER Table 4, measured at d = 4096${c.dim !== 4096 ? `, scaled by ${c.dim}/4096` : ''})`
    : plan.rankSource === 'rank' ? `, side path mean rank ${plan.meanRank.toFixed(2)}` : '';
  lines.push(`weights   ${o.weights}${rank}${o.outliers ? `, ${o.outliers} outlier columns per linear` : ''}`);
  lines.push(`run       ctx ${o.ctx} tokens, KV ${o.kvDtype}, batch ${o.maxBatchTokens} tokens, embedding on ${o.embedding}, binding limit ${(o.maxStorageBufferBindingSize / MiB).toFixed(0)} MiB`);
  lines.push('');
  lines.push(`  ${'part'.padEnd(20)} ${'bytes'.padStart(14)} ${'MiB'.padStart(10)} ${'GiB'.padStart(7)}  note`);
  for (const it of plan.items) {
    lines.push(`  ${it.label.padEnd(20)} ${String(it.bytes).padStart(14)} ${(it.bytes / MiB).toFixed(1).padStart(10)} ${(it.bytes / GiB).toFixed(3).padStart(7)}  ${it.note}`);
  }
  lines.push(`  ${'total'.padEnd(20)} ${String(plan.total).padStart(14)} ${(plan.total / MiB).toFixed(1).padStart(10)} ${(plan.total / GiB).toFixed(3).padStart(7)}`);
  lines.push('');
  lines.push(`largest   ${plan.largestTensor.name}: ${(plan.largestTensor.bytes / MiB).toFixed(1)} MiB`);
  if (plan.split.length === 0) lines.push('split     none: every tensor fits one binding');
  for (const s of plan.split) lines.push(`split     ${s.name}${s.count > 1 ? ` (×${s.count})` : ''}: ${(s.bytes / MiB).toFixed(1)} MiB over ${s.bindings} bindings`);
  return lines.join('\n');
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan',
  describe: 'GPU memory a model needs: weights, low-rank side path, embedding, KV cache, activations',
  builder: (y) =>
    y
      .option('model', { type: 'string', describe: 'Preset (llama3-8b, qwen1.5-7b: built-in shape when not installed), HF directory, or llama2.c .bin' })
      .option('config', { type: 'string', describe: 'A config.json to plan for instead of --model' })
      .option('weights', { type: 'string', choices: ['w4a8', 'f16', 'f32'], default: 'w4a8', describe: 'Block linear storage' })
      .option('alpha', { type: 'number', describe: `ASER rank threshold α (default ${DEFAULT_PLAN_ALPHA} when no --rank)` })
      .option('rank', { type: 'number', describe: 'Side-path rank of every linear' })
      .option('outliers', { type: 'number', default: 0, describe: 'Outlier channels per linear carried as extra side-path columns' })
      .option('ctx', { type: 'number', describe: 'KV-cache length in tokens (default min(4096, the model maximum))' })
      .option('kv', { type: 'string', choices: ['f16', 'f32'], describe: 'KV-cache type (default f16, f32 for f32 weights)' })
      .option('batch', { type: 'number', describe: 'Tokens per prefill chunk (default min(512, ctx))' })
      .option('embedding', { type: 'string', choices: ['auto', 'gpu', 'host'], default: 'auto', describe: "Where the embedding table lives ('auto': the executor's rule, host for ≥ 2^26 values)" })
      .option('max-binding', { type: 'number', default: DEFAULT_MAX_BINDING_BYTES, describe: 'maxStorageBufferBindingSize in bytes' })
      .options(jsonOption())
      .conflicts('alpha', 'rank')
      .conflicts('model', 'config')
      .example('$0 plan --model llama3-8b', 'LLaMA-3-8B W4A8 at α 0.05, 4096-token f16 KV cache')
      .example('$0 plan --model qwen1.5-7b --rank 64 --ctx 8192 --json', 'fixed rank 64, as JSON') as never,
  handler: async (args) => {
    const { config, origin } = resolvePlanConfig(args.model, args.config);
    const weights = args.weights as PlanWeights;
    const ctx = args.ctx ?? Math.min(4096, config.maxSeqLen);
    if (!(Number.isInteger(ctx) && ctx >= 1)) throw new UsageError(`--ctx must be a positive integer, got ${ctx}`);
    if (ctx > config.maxSeqLen) throw new UsageError(`--ctx ${ctx} exceeds the model's ${config.maxSeqLen}-token maximum (max_position_embeddings)`);
    const dense = weights !== 'w4a8';
    if (dense && (args.alpha !== undefined || args.rank !== undefined || args.outliers)) throw new UsageError(`--alpha, --rank and --outliers apply to --weights w4a8 only`);
    const options: MemoryPlanOptions = {
      weights,
      rank: args.rank,
      alpha: dense ? undefined : args.rank === undefined ? args.alpha ?? DEFAULT_PLAN_ALPHA : undefined,
      outliers: args.outliers,
      ctx,
      kvDtype: (args.kv ?? (weights === 'f32' ? 'f32' : 'f16')) as 'f32' | 'f16',
      maxBatchTokens: args.batch ?? Math.min(512, ctx),
      embedding: args.embedding as 'auto' | 'gpu' | 'host',
      maxStorageBufferBindingSize: args['max-binding'],
    };
    let plan: MemoryPlan;
    try {
      plan = planMemory(config, options);
    } catch (err) {
      if (err instanceof MemoryPlanError) throw new UsageError(err.message);
      throw err;
    }
    if (args.json) {
      console.log(JSON.stringify({ origin, ...plan }));
      return;
    }
    console.log(formatPlanTable(plan, origin));
  },
};
