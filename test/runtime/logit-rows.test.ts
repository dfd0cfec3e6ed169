// Executor.logitRows: every row's logits, against the float64 CPU reference, across prefill chunks,
// classifier sub-chunks and a non-zero start position.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource } from '../../core/model.js';
import { CpuLlama } from '../reference/cpu-llama.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER = '../shared/tokenizers/tok512/tokenizer.bin';
const F32_TOL = 1e-4;

let model: ModelSource;
let prompt: number[];
let refRows: Float64Array[];

beforeAll(() => {
  model = loadLlama2c(MODEL, 'stories260k');
  const tok = loadLlama2cTokenizer(TOKENIZER, 512);
  prompt = tok.encode('Once upon a time, there was a little dog named Max. He liked to run in the park with his friend Sue.', { bos: true });
  refRows = new CpuLlama(model).logits(prompt);
});
afterAll(() => model.close());

function worstRowDiff(rows: Float32Array, vocab: number, from: number): number {
  let worst = 0;
  for (let i = 0; i * vocab < rows.length; i++) {
    const ref = refRows[from + i]!;
    for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(rows[i * vocab + v]! - ref[v]!));
  }
  return worst;
}

describe('Executor.logitRows', () => {
  it('returns every row of a prefill, equal to the reference', async () => {
    const ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 64 });
    try {
      const vocab = model.config.vocabSize;
      const rows = await ex.logitRows(prompt);
      expect(rows.length).toBe(prompt.length * vocab);
      expect(worstRowDiff(rows, vocab, 0)).toBeLessThan(F32_TOL);
      expect(ex.position).toBe(prompt.length);
      // The last row is also what logits() reads.
      const last = await ex.logits();
      expect(Array.from(last)).toEqual(Array.from(rows.subarray((prompt.length - 1) * vocab)));
    } finally {
      ex.destroy();
    }
  });

  it('works across prefill chunks, classifier sub-chunks and after a cached prefix', async () => {
    // 7-token prefill chunks and 3-row classifier sub-chunks: rows land at the right offsets.
    const ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 64, maxBatchTokens: 7, headRows: 3 });
    try {
      const vocab = model.config.vocabSize;
      const split = 9;
      await ex.forward(prompt.slice(0, split));
      const rows = await ex.logitRows(prompt.slice(split));
      expect(rows.length).toBe((prompt.length - split) * vocab);
      expect(worstRowDiff(rows, vocab, split)).toBeLessThan(F32_TOL);
    } finally {
      ex.destroy();
    }
  });
});
