// Zero-shot scoring (eval/zeroshot.ts) on the small fixtures: the shared-prefix + rewind scores equal
// scoring every choice from scratch, LAMBADA's greedy check agrees with the full logit rows, and the
// metrics follow lm-eval's definitions (acc, byte-normalised acc_norm, sample stderr).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource, TextTokenizer } from '../../core/model.js';
import {
  binaryStderr, choiceMetrics, encodePair, lambadaMetrics, scoreChoices, scoreLambada, type ChoiceDoc,
} from '../../eval/zeroshot.js';
import { loadTask, mcContext } from '../../eval/zeroshot-data.js';
import { dataDir } from '../../loaders/datasets.js';
import { FormatError, NotFoundError } from '../../loaders/errors.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER = '../shared/tokenizers/tok512/tokenizer.bin';
const FIXTURES = join(dataDir(), 'zeroshot', 'small_test_fixtures');

let model: ModelSource;
let tok: TextTokenizer;
let ex: Executor;
beforeAll(async () => {
  model = loadLlama2c(MODEL, 'stories260k');
  tok = loadLlama2cTokenizer(TOKENIZER, 512);
  ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 512 });
});
afterAll(() => {
  ex.destroy();
  model.close();
});

/** Σ log p(continuation) of one choice, from position 0 with no cache reuse. */
async function scratchLoglik(context: string, continuation: string): Promise<number> {
  const { tokens, split } = encodePair(tok, context, continuation, ex.maxSeqLen + 1);
  ex.reset();
  const inputs = tokens.slice(0, -1);
  const nll = await ex.nll(inputs, inputs.map((_, j) => (j + 1 >= split ? tokens[j + 1]! : -1)));
  let s = 0;
  for (let j = split - 1; j < inputs.length; j++) s -= nll[j]!;
  return s;
}

describe('zero-shot data', () => {
  it('loads the fixtures of every shape, with lm-eval prompts', () => {
    const piqa = loadTask('piqa', { file: join(FIXTURES, 'piqa_small.jsonl') });
    expect(piqa.kind).toBe('mc');
    expect(piqa.docs).toHaveLength(4);
    const mmlu = loadTask('mmlu');
    expect(mmlu.kind === 'mc' && mmlu.docs[0]!.contexts[0]!.endsWith('\nAnswer:')).toBe(true);
    expect(mmlu.kind === 'mc' && mmlu.docs[0]!.continuations).toEqual([' A', ' B', ' C', ' D']);
    expect(mcContext('Question: Why?')).toBe('Question: Why?\nAnswer:');
    expect(mcContext('Question: Why?\n')).toBe('Question: Why?\nAnswer:');
    expect(mcContext('Q?\nAnswer:')).toBe('Q?\nAnswer:');
    expect(mcContext('The man turned on the faucet, therefore')).toBe('The man turned on the faucet, therefore');
    const lam = loadTask('lambada', { file: join(FIXTURES, 'lambada_small.jsonl') });
    expect(lam.kind === 'lambada' && lam.docs[0]!.continuation.startsWith(' ')).toBe(true);
    const wg = loadTask('winogrande', { limit: 3 });
    expect(wg.kind === 'schema' && wg.docs[0]!.contexts).toHaveLength(2);
    expect(() => loadTask('nope')).toThrow(NotFoundError);
    expect(() => loadTask('piqa', { file: join(FIXTURES, 'lambada_small.jsonl') })).toThrow(FormatError);
  });

  it('splits context and continuation as lm-eval does (trailing spaces move to the continuation)', () => {
    const a = encodePair(tok, 'Once upon a time ', 'there', 1000);
    const b = encodePair(tok, 'Once upon a time', ' there', 1000);
    expect(a).toEqual(b);
    expect(a.tokens.slice(0, a.split)).toEqual(tok.encode('Once upon a time', { bos: true }));
    const cut = encodePair(tok, 'Once upon a time', ' there', 4);
    expect(cut.tokens).toHaveLength(4);
    expect(cut.tokens.slice(-1)).toEqual(a.tokens.slice(-1));
  });
});

describe('zero-shot scoring on stories260K', () => {
  it('shared prefix + rewind gives the same log-likelihoods as scoring each choice from scratch', async () => {
    const docs: ChoiceDoc[] = [];
    for (const t of ['piqa', 'hellaswag', 'mmlu']) {
      const d = loadTask(t, { file: t === 'piqa' ? join(FIXTURES, 'piqa_small.jsonl') : undefined, limit: 2 });
      if (d.kind !== 'lambada') docs.push(...d.docs);
    }
    const wg = loadTask('winogrande', { limit: 2 }); // different contexts per choice: partial evaluation
    if (wg.kind === 'schema') docs.push(...wg.docs);
    for (const doc of docs) {
      const s = await scoreChoices(ex, tok, doc);
      expect(s.loglik).toHaveLength(doc.contexts.length);
      for (let i = 0; i < doc.contexts.length; i++) {
        expect(s.loglik[i]!).toBeLessThan(0);
        expect(Math.abs(s.loglik[i]! - (await scratchLoglik(doc.contexts[i]!, doc.continuations[i]!)))).toBeLessThan(1e-3);
      }
    }
  });

  it('LAMBADA: log-likelihood equals the NLL route; greedy means every target is the row argmax', async () => {
    const lam = loadTask('lambada', { file: join(FIXTURES, 'lambada_small.jsonl') });
    if (lam.kind !== 'lambada') throw new Error('kind');
    const easy = { context: 'Once upon a time, there was a little girl named Lily. She liked to play with her ball. One day, Lily', continuation: ' went' };
    for (const d of [...lam.docs, easy]) {
      const s = await scoreLambada(ex, tok, d);
      expect(Math.abs(s.loglik - (await scratchLoglik(d.context, d.continuation)))).toBeLessThan(1e-3);
      const { tokens, split } = encodePair(tok, d.context, d.continuation, ex.maxSeqLen + 1);
      ex.reset();
      const rows = await ex.logitRows(tokens.slice(0, -1));
      const v = ex.config.vocabSize;
      let greedy = true;
      for (let j = split; j < tokens.length; j++) {
        const row = rows.subarray((j - 1) * v, j * v);
        if (row.indexOf(Math.max(...row)) !== tokens[j]) greedy = false;
      }
      expect(s.greedy).toBe(greedy);
    }
  });
});

describe('zero-shot metrics', () => {
  it('acc, byte-normalised acc_norm, chance and stderr', () => {
    // Doc 1: choice 0 wins raw, choice 1 wins per byte. Doc 2: 3 choices, gold wins both ways.
    const m = choiceMetrics('t', [
      { loglik: [-4, -6], bytes: [2, 6], gold: 1 },
      { loglik: [-1, -5, -9], bytes: [3, 3, 3], gold: 0 },
    ], 0);
    expect(m.acc).toBe(0.5);
    expect(m.accNorm).toBe(1);
    expect(m.chance).toBeCloseTo((1 / 2 + 1 / 3) / 2, 12);
    expect(m.accStderr).toBeCloseTo(Math.sqrt(0.25 / 1), 12);
    expect(binaryStderr(0.7, 101)).toBeCloseTo(Math.sqrt(0.21 / 100), 12);
    const l = lambadaMetrics('lambada', [{ loglik: -1, greedy: true }, { loglik: -3, greedy: false }], 0);
    expect(l.acc).toBe(0.5);
    expect(l.ppl).toBeCloseTo(Math.exp(2), 12);
    expect(l.chance).toBe(0);
  });
});
