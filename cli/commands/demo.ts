import type { CommandModule } from 'yargs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDatasetText } from '../../loaders/datasets.js';
import { perplexity } from '../../eval/ppl.js';
import { generate } from '../../runtime/generate.js';
import { createDetokenizer } from '../../loaders/detokenizer.js';
import { openSession, type Session } from '../../node/session.js';
import { quantizeToArtifact, sidePathFlopsOverhead } from '../../node/quantize.js';
import { abitsOption, modelOption } from '../options.js';

interface DemoArgs { model: string; ctx: number; maxWindows: number; rank: number; abits: number }

async function story(session: Session, prompt: string, maxTokens: number): Promise<string> {
  const ids = session.tokenizer.encode(prompt, { bos: true });
  const detok = createDetokenizer(session.tokenizer, ids);
  let text = prompt;
  await generate(session.executor, ids, { maxTokens, temperature: 0, onToken: (id) => void (text += detok.push(id)) });
  return text + detok.flush();
}

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
    const dir = mkdtempSync(join(tmpdir(), 'aser-demo-'));
    try {
      const rows: Array<{ name: string; ppl: number; flops: string; sample: string }> = [];
      const data = loadDatasetText('tinystories');
      const evaluate = async (name: string, artifact?: string, flops = '—') => {
        const session = await openSession({ model: args.model, maxSeqLen: args.ctx, artifact });
        try {
          if (!rows.length) {
            console.log(`adapter: ${session.gpu.describe()}`);
            const c = session.source.config;
            console.log(`model:   ${session.source.id} (dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize})\n`);
          }
          const r = await perplexity(session.executor, session.tokenizer, data.text, { ctx: args.ctx, protocol: 'gptq', maxWindows: args.maxWindows });
          rows.push({ name, ppl: r.ppl, flops, sample: await story(session, 'Once upon a time', 48) });
          process.stderr.write(`${name}: ppl ${r.ppl.toFixed(4)} over ${r.tokens} tokens\n`);
        } finally {
          session.close();
        }
      };
      await evaluate('fp32');
      for (const method of ['rtn', 'aser'] as const) {
        const out = join(dir, method);
        const { manifest } = await quantizeToArtifact({
          model: args.model, method, wbits: 4, abits: args.abits, rank: method === 'aser' ? args.rank : undefined,
          calib: 'tinystories', calibSamples: 64, calibLen: Math.min(args.ctx, 256), seed: 0, out,
        });
        const label = method === 'rtn' ? `RTN W4A${args.abits}` : `ASER W4A${args.abits} r=${args.rank}`;
        await evaluate(label, out, `+${(sidePathFlopsOverhead(manifest) * 100).toFixed(2)} %`);
      }
      console.log(`\nTinyStories eval perplexity (gptq protocol, ctx ${args.ctx}, first ${args.maxWindows} windows; calibration on tinystories/calib.txt):\n`);
      console.log('| model | ppl | side-path FLOPs |\n|---|---|---|');
      for (const r of rows) console.log(`| ${r.name} | ${r.ppl.toFixed(4)} | ${r.flops} |`);
      for (const r of rows) console.log(`\n[${r.name}] ${r.sample.replace(/\n/g, ' ')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
