// `aser plan`: how much GPU memory a model needs (weights, side path, embedding/classifier, KV cache,
// activations) before anything is loaded. The plan is node/plan.ts (arithmetic: runtime/memory-plan.ts).
import type { CommandModule } from 'yargs';
import { DEFAULT_MAX_BINDING_BYTES, type MemoryPlan, type PlanWeights } from '../../runtime/memory-plan.js';
import { DEFAULT_PLAN_ALPHA, planModelMemory, type PlanRequest } from '../../node/plan.js';
import { jsonOption } from '../options.js';

interface PlanArgs {
  model?: string;
  config?: string;
  weights: string;
  classifier?: string;
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
      .option('classifier', { type: 'string', choices: ['dense', 'f16', 'int8', 'int4'], describe: 'Classifier storage (default: int8 for w4a8, as aser quantize writes it; dense otherwise)' })
      .option('max-binding', { type: 'number', default: DEFAULT_MAX_BINDING_BYTES, describe: 'maxStorageBufferBindingSize in bytes' })
      .options(jsonOption())
      .conflicts('alpha', 'rank')
      .conflicts('model', 'config')
      .example('$0 plan --model llama3-8b', 'LLaMA-3-8B W4A8 at α 0.05, 4096-token f16 KV cache')
      .example('$0 plan --model qwen1.5-7b --rank 64 --ctx 8192 --json', 'fixed rank 64, as JSON') as never,
  handler: async (args) => {
    const { plan, origin } = planModelMemory({
      model: args.model, config: args.config, weights: args.weights as PlanWeights, alpha: args.alpha, rank: args.rank, outliers: args.outliers,
      ctx: args.ctx, kv: args.kv as 'f32' | 'f16' | undefined, batch: args.batch, embedding: args.embedding as 'auto' | 'gpu' | 'host', maxBinding: args['max-binding'],
      classifier: args.classifier as PlanRequest['classifier'],
    });
    if (args.json) {
      console.log(JSON.stringify({ origin, ...plan }));
      return;
    }
    console.log(formatPlanTable(plan, origin));
  },
};
