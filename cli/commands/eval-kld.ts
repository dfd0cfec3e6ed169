// `aser eval kld`: KL divergence of an artifact to the fp model (llama.cpp's --kl-divergence report).
import type { CommandModule } from 'yargs';
import { openResultCache } from '../../node/cache.js';
import { formatKldMarkdown, runKld } from '../../eval/kld-run.js';
import type { PplProtocol } from '../../eval/ppl.js';
import { progressBar, type Progress } from '../../node/progress.js';
import { UsageError } from '../../core/errors.js';
import { cacheOption, ctxOption, jsonOption, modelOption } from '../options.js';

interface KldArgs { model: string; artifact?: string; dataset: string; ctx: number; protocol: PplProtocol; maxWindows: number; json: boolean; cache: boolean }

/** Progress bars for a run's phases, one bar per phase. */
export function phaseProgress(prefix: string, unit = 'windows'): (phase: string, done: number, total: number) => void {
  let bar: Progress | undefined;
  let current = '';
  return (phase, done, total) => {
    if (phase !== current) {
      bar = progressBar(`${prefix} ${phase}`, total, unit);
      current = phase;
    }
    if (done >= total) bar!.finish();
    else bar!.update(done);
  };
}

const f = (x: number, d = 4) => x.toFixed(d);

export const kldCommand: CommandModule<object, KldArgs> = {
  command: 'kld',
  describe: 'KL divergence of a quantized artifact to the fp model: mean ± stderr, percentiles, same-top-token %, Δppl ±',
  builder: (y) =>
    y
      .option('model', { ...modelOption.model, describe: `${modelOption.model.describe} (the fp reference)` })
      .option('artifact', { type: 'string', describe: 'Quantized artifact directory (absent: the fp model against itself, KLD 0)' })
      .option('dataset', { type: 'string', default: 'tinystories', describe: 'wikitext2 | ptb | c4 | tinystories, or a text file' })
      .options(ctxOption)
      .option('protocol', { type: 'string', choices: ['llamacpp', 'gptq'], default: 'llamacpp', describe: 'llamacpp: score the second half of each window (as llama.cpp); gptq: every token' })
      .option('max-windows', { type: 'number', default: 100, describe: 'Windows to score (the fp log-prob rows of these are stored once)' })
      .options(jsonOption('Print one JSON object on the last line of stdout'))
      .options(cacheOption('Reuse and store results in .cache/eval (--no-cache recomputes)'))
      .example('$0 eval kld --artifact /tmp/s260k-rtn', 'RTN vs fp on TinyStories') as never,
  handler: async (args) => {
    if (!Number.isInteger(args.ctx) || args.ctx < 4) throw new UsageError(`--ctx ${args.ctx} must be an integer ≥ 4`);
    if (!Number.isInteger(args.maxWindows) || args.maxWindows < 1) throw new UsageError(`--max-windows ${args.maxWindows} must be a positive integer`);
    const r = await runKld({
      model: args.model, artifact: args.artifact, dataset: args.dataset, ctx: args.ctx, protocol: args.protocol,
      maxWindows: args.maxWindows, cache: openResultCache({ enabled: args.cache }), onWindow: phaseProgress('kld'),
    });
    if (args.json) {
      const { kldSample: _sample, ...rest } = r;
      console.log(JSON.stringify(rest));
    } else {
      console.log(`${r.model}: ${r.method} vs fp32 on ${r.dataset} (${r.protocol}, ctx ${r.ctx}, ${r.windows} windows); fp32 ppl ${f(r.pplRef)}`);
      console.log(formatKldMarkdown([r]));
    }
  },
};
