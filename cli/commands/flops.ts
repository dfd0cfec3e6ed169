// `aser flops`: side-path FLOPs, parameter and byte overhead per layer and for the whole model, from an
// artifact's ranks or from a config with given (mean) ranks (eval/flops-run.ts; arithmetic: eval/flops.ts).
import type { CommandModule } from 'yargs';
import { formatFlopsMarkdown, formatRankGridMarkdown } from '../../eval/flops.js';
import { runFlops } from '../../eval/flops-run.js';
import { jsonOption } from '../options.js';
import { LOW_RANK_DTYPES, type LowRankDtype } from '../../core/quantized.js';

interface FlopsArgs { artifact?: string; config?: string; model?: string; ranks?: string; alpha?: number; lowrankDtype?: string; json: boolean }

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
      .option('lowrank-dtype', { type: 'string', choices: [...LOW_RANK_DTYPES], describe: 'L_A/L_B storage with --config/--model (default f16; an artifact records its own)' })
      .options(jsonOption('Print the accounting as JSON'))
      .conflicts('ranks', 'alpha')
      .example('$0 flops --artifact /tmp/s260k-aser', 'an artifact')
      .example('$0 flops --model llama3-8b --alpha 0.05', 'LLaMA-3-8B shapes at the paper’s α = 0.05 mean rank')
      .example('$0 flops --config config.json --ranks 30.58', 'any config, mean rank 30.58')
      .example('$0 flops --model llama3-8b --alpha 0.05 --lowrank-dtype int8', 'the same with 8-bit L_A/L_B') as never,
  handler: async (args) => {
    const { accounting, origin, linears, budget } = runFlops({ artifact: args.artifact, config: args.config, model: args.model, ranks: args.ranks, alpha: args.alpha, lowRankDtype: args.lowrankDtype as LowRankDtype | undefined });
    // Per-linear ranks where they differ within a layer (an α rule or a budget chose them).
    const varied = new Set(linears.map((l) => l.rank)).size > 1;
    if (args.json) console.log(JSON.stringify({ origin, ...accounting, ...(budget ? { budget } : {}), ...(args.artifact ? { linears: linears.map(({ layer, name, rank, outlierColumns }) => ({ layer, name, rank, outlierColumns: outlierColumns ?? 0 })) } : {}) }));
    else {
      console.log(`side-path accounting per token: ${origin}`);
      console.log(formatFlopsMarkdown(accounting));
      if (budget) console.log(`\nbudget +${budget.percent} % ${budget.unit} (objective ${budget.objective ?? 'output'}): spent +${budget.spentPercent.toFixed(3)} %; whitened error Σσ² ${budget.errorSq.toExponential(3)}, left after reconstruction ${budget.droppedSq.toExponential(3)} (each linear computed at rank ${budget.computedRank}, then cut)`);
      if (varied && args.artifact) console.log(`\nside-path columns per linear (reconstruction rank + outlier columns):\n${formatRankGridMarkdown(linears)}`);
    }
  },
};
