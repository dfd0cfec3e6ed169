// `aser flops`: side-path FLOPs, parameter and byte overhead per layer and for the whole model, from an
// artifact's ranks or from a config with given (mean) ranks (eval/flops-run.ts; arithmetic: eval/flops.ts).
import type { CommandModule } from 'yargs';
import { formatFlopsMarkdown } from '../../eval/flops.js';
import { runFlops } from '../../eval/flops-run.js';
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
      .option('ranks', { type: 'string', describe: 'Rank r for every linear (a mean, may be fractional), or nLayers×7 comma-separated ranks; no outlier columns are added (side path r wide)' })
      .option('alpha', { type: 'number', describe: 'Mean rank estimated from ASER Table 4 for threshold α (scaled by dim/4096)' })
      .options(jsonOption('Print the accounting as JSON'))
      .conflicts('ranks', 'alpha')
      .example('$0 flops --artifact /tmp/s260k-aser', 'an artifact')
      .example('$0 flops --model llama3-8b --alpha 0.05', 'LLaMA-3-8B shapes at the paper’s α = 0.05 mean rank')
      .example('$0 flops --config config.json --ranks 30.58', 'any config, mean rank 30.58') as never,
  handler: async (args) => {
    const { accounting, origin } = runFlops({ artifact: args.artifact, config: args.config, model: args.model, ranks: args.ranks, alpha: args.alpha });
    if (args.json) console.log(JSON.stringify({ origin, ...accounting }));
    else {
      console.log(`side-path accounting per token: ${origin}`);
      console.log(formatFlopsMarkdown(accounting));
    }
  },
};
