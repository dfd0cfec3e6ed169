import type { CommandModule } from 'yargs';
import { loadDatasetText } from '../../eval/datasets.js';
import { perplexity } from '../../eval/ppl.js';
import { generate } from '../../runtime/generate.js';
import { createDetokenizer } from '../../loaders/detokenizer.js';
import { openSession } from '../session.js';

interface DemoArgs { model: string; ctx: number; maxWindows: number }

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'The main job on the default model: perplexity on TinyStories and a short greedy story',
  builder: (y) =>
    y
      .option('model', { type: 'string', default: 'stories260k', describe: 'Preset name or model path' })
      .option('ctx', { type: 'number', default: 256, describe: 'Perplexity window' })
      .option('max-windows', { type: 'number', default: 40, describe: 'Windows of TinyStories eval text to score' })
      .example('$0 demo', 'runs in a few seconds on llvmpipe') as never,
  handler: async (args) => {
    const session = await openSession({ model: args.model, maxSeqLen: args.ctx });
    try {
      console.log(`adapter: ${session.gpu.describe()}`);
      console.log(`model:   ${session.source.id} (dim ${session.source.config.dim}, ${session.source.config.nLayers} layers, vocab ${session.source.config.vocabSize})`);
      const data = loadDatasetText('tinystories');
      const ppl = await perplexity(session.executor, session.tokenizer, data.text, { ctx: args.ctx, protocol: 'gptq', maxWindows: args.maxWindows });
      console.log(`\nperplexity (tinystories eval, gptq protocol, ctx ${args.ctx}, ${ppl.tokens} tokens): ${ppl.ppl.toFixed(4)}  [${(ppl.tokens / ppl.seconds).toFixed(0)} tok/s]`);
      const prompt = 'Once upon a time';
      const ids = session.tokenizer.encode(prompt, { bos: true });
      const detok = createDetokenizer(session.tokenizer, ids);
      process.stdout.write(`\ngreedy sample:\n${prompt}`);
      const result = await generate(session.executor, ids, { maxTokens: 80, temperature: 0, onToken: (id) => void process.stdout.write(detok.push(id)) });
      process.stdout.write(detok.flush() + '\n');
      console.log(`[${result.tokens.length} tokens, decode ${((result.tokens.length - 1) / result.decodeSeconds).toFixed(1)} tok/s]`);
    } finally {
      session.close();
    }
  },
};
