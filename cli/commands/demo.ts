// `aser demo`: the ASER demo (eval/demo.ts), printed as a table and samples.
import type { CommandModule } from 'yargs';
import { runDemo } from '../../eval/demo.js';
import { abitsOption, modelOption } from '../options.js';

interface DemoArgs { model: string; ctx: number; maxWindows: number; rank: number; abits: number }

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'The ASER demo on the default model: quantize (RTN and ASER, W4A8), compare perplexity with fp32, FLOPs overhead, samples',
  builder: (y) =>
    y
      .options(modelOption)
      .option('ctx', { type: 'number', default: 256, describe: 'Perplexity window' })
      .option('max-windows', { type: 'number', default: 100, describe: 'Windows of TinyStories eval text to score' })
      .option('rank', { type: 'number', default: 8, describe: "ASER error-reconstruction rank r; its f outlier columns come on top, as with aser quantize --rank" })
      .options(abitsOption)
      .example('$0 demo', 'about a minute on llvmpipe') as never,
  handler: async (args) => {
    const rows = await runDemo({
      model: args.model, ctx: args.ctx, maxWindows: args.maxWindows, rank: args.rank, abits: args.abits,
      onOpen: (session) => {
        console.log(`adapter: ${session.gpu.describe()}`);
        const c = session.source.config;
        console.log(`model:   ${session.source.id} (dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize})\n`);
      },
      onScored: (name, r) => process.stderr.write(`${name}: ppl ${r.ppl.toFixed(4)} over ${r.tokens} tokens\n`),
    });
    console.log(`\nTinyStories eval perplexity (gptq protocol, ctx ${args.ctx}, first ${args.maxWindows} windows; calibration on tinystories/calib.txt):\n`);
    console.log('| model | ppl | side-path FLOPs |\n|---|---|---|');
    for (const r of rows) console.log(`| ${r.name} | ${r.ppl.toFixed(4)} | ${r.flops} |`);
    for (const r of rows) console.log(`\n[${r.name}] ${r.sample.replace(/\n/g, ' ')}`);
  },
};
