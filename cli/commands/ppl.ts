import type { CommandModule } from 'yargs';
import { loadDatasetText } from '../../loaders/datasets.js';
import { perplexity, type PplProtocol } from '../../eval/ppl.js';
import { progressBar } from '../../node/progress.js';
import { modelOptions, numericsOption, ctxOption, jsonOption } from '../options.js';
import { openSession } from '../../node/session.js';
import { UsageError } from '../../core/errors.js';

interface PplArgs {
  model: string;
  dtype: 'f32' | 'f16';
  tokenizer?: string;
  artifact?: string;
  simulate: boolean;
  dataset: string;
  ctx: number;
  protocol: PplProtocol;
  maxWindows?: number;
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
    if (!Number.isInteger(args.ctx) || args.ctx < 2) throw new UsageError(`--ctx ${args.ctx} must be an integer ≥ 2`);
    const data = loadDatasetText(args.dataset, { protocol: args.protocol });
    const session = await openSession({ model: args.model, dtype: args.dtype, tokenizer: args.tokenizer, artifact: args.artifact, simulate: args.simulate, maxSeqLen: args.ctx, checkNumerics: args['check-numerics'] });
    try {
      const { maxSeqLen } = session.source.config;
      if (args.ctx > maxSeqLen) throw new UsageError(`--ctx ${args.ctx} is longer than the model's context of ${maxSeqLen} tokens`, `use --ctx ${maxSeqLen} or less`);
      let bar: ReturnType<typeof progressBar> | undefined;
      const result = await perplexity(session.executor, session.tokenizer, data.text, {
        ctx: args.ctx,
        protocol: args.protocol,
        maxWindows: args.maxWindows ?? data.maxWindows,
        onProgress: (p) => {
          bar ??= progressBar(`ppl ${data.name}`, p.windows, 'windows');
          bar.update(p.window, `ppl ${p.ppl.toFixed(4)}`);
        },
      });
      bar?.finish(`ppl ${result.ppl.toFixed(4)}`);
      const summary = {
        model: session.source.id, dataset: data.name, protocol: result.protocol, ctx: result.ctx,
        tokens: result.tokens, nll: result.nll, ppl: result.ppl, seconds: result.seconds,
        ...(args.artifact ? { artifact: args.artifact, path: args.simulate ? 'simulate' : 'fused' } : {}),
      };
      if (args.json) {
        console.log(JSON.stringify(summary));
      } else {
        console.log(`${summary.model} on ${summary.dataset} (${summary.protocol}, ctx ${summary.ctx}): ppl ${result.ppl.toFixed(4)} ` +
          `over ${result.tokens} tokens in ${result.windows} windows, ${result.seconds.toFixed(2)} s (${(result.tokens / result.seconds).toFixed(0)} tok/s)`);
      }
    } finally {
      session.close();
    }
  },
};
