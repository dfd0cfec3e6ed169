// `aser flops`: side-path FLOPs, parameter and byte overhead per layer and for the whole model, from an
// artifact's ranks or from a config with given (mean) ranks. The arithmetic is eval/flops.ts.
import type { CommandModule } from 'yargs';
import { readArtifactManifest } from '../../loaders/artifact.js';
import { meanRankForAlpha } from '../../runtime/memory-plan.js';
import { configLinears, flopsAccounting, formatFlopsMarkdown, manifestLinears, type FlopsAccounting } from '../../eval/flops.js';
import { UsageError } from '../../core/errors.js';
import { resolvePlanConfig } from './plan.js';
import { MemoryPlanError } from '../../runtime/errors.js';
import { jsonOption } from '../options.js';

interface FlopsArgs { artifact?: string; config?: string; model?: string; ranks?: string; alpha?: number; json: boolean }

export const flopsCommand: CommandModule<object, FlopsArgs> = {
  command: 'flops',
  describe: 'Side-path FLOPs, parameter and byte overhead per layer and for the whole model (artifact, or config + ranks)',
  builder: (y) =>
    y
      .option('artifact', { type: 'string', describe: 'Artifact directory: its per-linear ranks' })
      .option('config', { type: 'string', describe: 'HF config.json (with --ranks or --alpha)' })
      .option('model', { type: 'string', describe: 'Preset or path whose config to use (with --ranks or --alpha); llama3-8b and qwen1.5-7b work without weights' })
      .option('ranks', { type: 'string', describe: 'One rank for every linear (a mean, may be fractional), or nLayers×7 comma-separated ranks' })
      .option('alpha', { type: 'number', describe: 'Mean rank estimated from ASER Table 4 for threshold α (scaled by dim/4096)' })
      .options(jsonOption('Print the accounting as JSON'))
      .conflicts('ranks', 'alpha')
      .example('$0 flops --artifact /tmp/s260k-aser', 'an artifact')
      .example('$0 flops --model llama3-8b --alpha 0.05', 'LLaMA-3-8B shapes at the paper’s α = 0.05 mean rank')
      .example('$0 flops --config config.json --ranks 30.58', 'any config, mean rank 30.58') as never,
  handler: async (args) => {
    let accounting: FlopsAccounting;
    let origin: string;
    if (args.artifact) {
      if (args.config || args.model || args.ranks || args.alpha !== undefined) throw new UsageError('--artifact carries its own shapes and ranks; drop --config/--model/--ranks/--alpha');
      const manifest = readArtifactManifest(args.artifact);
      accounting = flopsAccounting(manifestLinears(manifest.layers), { wBits: manifest.wBits });
      origin = `${args.artifact} (${manifest.method} W${manifest.wBits}A${manifest.aBits})`;
    } else {
      if (!args.config && !args.model) throw new UsageError('give --artifact DIR, or --config config.json / --model NAME with --ranks or --alpha');
      if (args.ranks === undefined && args.alpha === undefined) throw new UsageError('--config/--model need --ranks R[,R…] or --alpha A');
      const { config, origin: where } = resolvePlanConfig(args.model, args.config);
      let ranks: number | number[];
      if (args.alpha !== undefined) {
        try {
          ranks = meanRankForAlpha(args.alpha, config.dim);
        } catch (err) {
          if (err instanceof MemoryPlanError) throw new UsageError(err.message);
          throw err;
        }
      } else {
        const list = args.ranks!.split(',').map((s) => Number(s.trim()));
        if (list.some((r) => !Number.isFinite(r) || r < 0)) throw new UsageError(`--ranks ${args.ranks}: ranks must be non-negative numbers`);
        ranks = list.length === 1 ? list[0]! : list;
      }
      try {
        accounting = flopsAccounting(configLinears(config, ranks));
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`--ranks: ${err.message}`);
        throw err;
      }
      origin = `${where}${args.alpha !== undefined ? `, α = ${args.alpha} → mean rank ${(ranks as number).toFixed(2)}` : ''}`;
    }
    if (args.json) console.log(JSON.stringify({ origin, ...accounting }));
    else {
      console.log(`side-path accounting per token: ${origin}`);
      console.log(formatFlopsMarkdown(accounting));
    }
  },
};
