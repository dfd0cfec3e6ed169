import type { CommandModule } from 'yargs';
import { runPpl, type PplRunOptions } from '../../eval/ppl-run.js';
import { progressBar } from '../../node/progress.js';
import { modelOptions, numericsOption, ctxOption, jsonOption } from '../options.js';
import { requireInteger } from '../argv-check.js';

/** What yargs hands the handler: the library's options (check-numerics spelled as typed) plus --json. */
interface PplArgs extends Omit<PplRunOptions, 'checkNumerics' | 'onProgress'> {
  json: boolean;
  'check-numerics': boolean;
}

export const pplCommand: CommandModule<object, PplArgs> = {
  command: 'ppl',
  describe: 'Perplexity of a model on a dataset (log-softmax and NLL computed on the GPU)',
  builder: (y) =>
    y
      .options(modelOptions)
      .options(numericsOption)
      .option('dataset', { type: 'string', default: 'tinystories', describe: 'wikitext2 | ptb | c4 | tinystories, or a text file path' })
      .options(ctxOption)
      .option('protocol', { type: 'string', choices: ['gptq', 'llamacpp'], default: 'gptq', describe: 'gptq: score every token of non-overlapping windows; llamacpp: score the second half of each window' })
      .option('max-windows', { type: 'number', describe: 'Score at most this many windows' })
      .option('simulate', { type: 'boolean', default: false, describe: 'With --artifact: run the same quantization as f32 fake quant on the dense path (reference for the fused kernels)' })
      .options(jsonOption('Print one JSON object on the last line of stdout'))
      .example('$0 ppl --model stories260k --dataset tinystories --ctx 256 --json', 'TinyStories perplexity of the default model')
      .example('$0 ppl --model llama3-8b --dataset wikitext2 --ctx 2048', 'paper-protocol WikiText-2 perplexity') as never,
  handler: async (args) => {
    requireInteger('ctx', args.ctx, 2);
    if (args.maxWindows !== undefined) requireInteger('max-windows', args.maxWindows, 1);
    let bar: ReturnType<typeof progressBar> | undefined;
    const { summary, result } = await runPpl({
      model: args.model, dtype: args.dtype, tokenizer: args.tokenizer, artifact: args.artifact, simulate: args.simulate,
      dataset: args.dataset, ctx: args.ctx, protocol: args.protocol, maxWindows: args.maxWindows, checkNumerics: args['check-numerics'],
      onProgress: (dataset, p) => {
        bar ??= progressBar(`ppl ${dataset}`, p.windows, 'windows');
        bar.update(p.window, `ppl ${p.ppl.toFixed(4)}`);
      },
    });
    bar?.finish(`ppl ${result.ppl.toFixed(4)}`);
    if (args.json) {
      console.log(JSON.stringify(summary));
    } else {
      // The artifact is named: a line from a table of runs must say which quantized model it was.
      const what = summary.artifact
        ? `${summary.model} with artifact ${summary.artifact} (${summary.method} W${summary.wBits}A${summary.aBits}, ${summary.path === 'simulate' ? 'simulated in f32' : 'fused kernels'})`
        : summary.model;
      console.log(`${what} on ${summary.dataset} (${summary.protocol}, ctx ${summary.ctx}): ppl ${result.ppl.toFixed(4)} ± ${result.pplStdErr.toFixed(4)} ` +
        `over ${result.tokens} tokens in ${result.windows} windows, ${result.seconds.toFixed(2)} s (${(result.tokens / result.seconds).toFixed(0)} tok/s)`);
    }
  },
};
