// `aser demo` as a library call: fp32, then RTN and ASER (W4, quantized into a temporary directory),
// each scored on TinyStories and asked for a greedy story.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDatasetText } from '../loaders/datasets.js';
import { generate } from '../runtime/generate.js';
import { createDetokenizer } from '../loaders/detokenizer.js';
import { openSession, type Session } from '../node/session.js';
import { quantizeToArtifact, sidePathFlopsOverhead } from '../node/quantize.js';
import { perplexity, type PerplexityResult } from './ppl.js';

export interface DemoOptions {
  model: string;
  ctx: number;
  maxWindows: number;
  rank: number;
  abits: number;
  /** Once, when the first model is open: the adapter and the model. */
  onOpen?: (session: Session) => void;
  /** After each row's perplexity. */
  onScored?: (name: string, r: PerplexityResult) => void;
}

export interface DemoRow { name: string; ppl: number; flops: string; sample: string }

async function story(session: Session, prompt: string, maxTokens: number): Promise<string> {
  const ids = session.tokenizer.encode(prompt, { bos: true });
  const detok = createDetokenizer(session.tokenizer, ids);
  let text = prompt;
  await generate(session.executor, ids, { maxTokens, temperature: 0, onToken: (id) => void (text += detok.push(id)) });
  return text + detok.flush();
}

export async function runDemo(o: DemoOptions): Promise<DemoRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'aser-demo-'));
  try {
    const rows: DemoRow[] = [];
    const data = loadDatasetText('tinystories');
    const evaluate = async (name: string, artifact?: string, flops = '—') => {
      const session = await openSession({ model: o.model, maxSeqLen: o.ctx, artifact });
      try {
        if (!rows.length) o.onOpen?.(session);
        const r = await perplexity(session.executor, session.tokenizer, data.text, { ctx: o.ctx, protocol: 'gptq', maxWindows: o.maxWindows });
        rows.push({ name, ppl: r.ppl, flops, sample: await story(session, 'Once upon a time', 48) });
        o.onScored?.(name, r);
      } finally {
        session.close();
      }
    };
    await evaluate('fp32');
    for (const method of ['rtn', 'aser'] as const) {
      const out = join(dir, method);
      const { manifest } = await quantizeToArtifact({
        model: o.model, method, wbits: 4, abits: o.abits, rank: method === 'aser' ? o.rank : undefined,
        calib: 'tinystories', calibSamples: 64, calibLen: Math.min(o.ctx, 256), seed: 0, out,
      });
      const label = method === 'rtn' ? `RTN W4A${o.abits}` : `ASER W4A${o.abits} r=${o.rank}`;
      await evaluate(label, out, `+${(sidePathFlopsOverhead(manifest) * 100).toFixed(2)} %`);
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
