import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource } from '../../core/model.js';
import { loadDatasetText } from '../../loaders/datasets.js';
import { perplexity } from '../../eval/ppl.js';
import { CpuLlama } from '../reference/cpu-llama.js';
import { PerplexityError } from '../../eval/errors.js';

const CTX = 64;
let model: ModelSource;
let ex: Executor;
let ref: CpuLlama;
const tok = loadLlama2cTokenizer('../shared/tokenizers/tok512/tokenizer.bin', 512);
// A slice of the evaluation text: enough for 4 windows of 64 tokens.
const text = loadDatasetText('tinystories').text.slice(0, 1200);

beforeAll(async () => {
  model = loadLlama2c('../shared/models/stories260K/model.bin', 'stories260k');
  ref = new CpuLlama(model);
  ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 128 });
});
afterAll(() => {
  ex.destroy();
  model.close();
});

/** The protocols re-derived from their definitions, on the float64 reference. */
function referencePpl(protocol: 'gptq' | 'llamacpp'): { ppl: number; tokens: number; windows: number; nllStdErr: number } {
  const ids = tok.encode(text, { bos: true });
  const windows = Math.floor(ids.length / CTX);
  let sum = 0, count = 0;
  const all: number[] = [];
  for (let w = 0; w < windows; w++) {
    const win = ids.slice(w * CTX, (w + 1) * CTX);
    if (protocol === 'llamacpp') win[0] = 1;
    const nll = ref.nll(win.slice(0, -1), win.slice(1));
    const from = protocol === 'llamacpp' ? CTX / 2 : 0;
    for (let j = from; j < CTX - 1; j++, count++) {
      sum += nll[j]!;
      all.push(nll[j]!);
    }
  }
  // Standard error of the mean, two-pass: sample variance / N.
  const mean = sum / count;
  const sampleVariance = all.reduce((a, x) => a + (x - mean) ** 2, 0) / (count - 1);
  return { ppl: Math.exp(mean), tokens: count, windows, nllStdErr: Math.sqrt(sampleVariance / count) };
}

describe('perplexity', () => {
  for (const protocol of ['gptq', 'llamacpp'] as const) {
    it(`${protocol} protocol agrees with the float64 reference within 1e-4 relative`, async () => {
      const want = referencePpl(protocol);
      const progress: number[] = [];
      const got = await perplexity(ex, tok, text, { ctx: CTX, protocol, onProgress: (p) => progress.push(p.window) });
      expect(want.windows).toBeGreaterThanOrEqual(4);
      expect(got.windows).toBe(want.windows);
      expect(got.tokens).toBe(want.tokens);
      expect(got.tokens).toBe(want.windows * (protocol === 'gptq' ? CTX - 1 : CTX / 2 - 1));
      expect(Math.abs(got.ppl / want.ppl - 1)).toBeLessThan(1e-4);
      // The ± of `aser ppl`: the per-token NLLs' spread (f32 on the GPU vs float64 here).
      expect(Math.abs(got.nllStdErr / want.nllStdErr - 1)).toBeLessThan(1e-3);
      expect(got.pplStdErr).toBeCloseTo(got.ppl * got.nllStdErr, 12);
      expect(progress).toEqual(Array.from({ length: got.windows }, (_, i) => i + 1));
      expect(got.ppl).toBeGreaterThan(1);
      expect(got.ppl).toBeLessThan(30);
    });
  }

  it('honours maxWindows and rejects contexts the executor cannot hold', async () => {
    expect((await perplexity(ex, tok, text, { ctx: CTX, protocol: 'gptq', maxWindows: 2 })).windows).toBe(2);
    await expect(perplexity(ex, tok, text, { ctx: 256, protocol: 'gptq' })).rejects.toThrow(PerplexityError);
    await expect(perplexity(ex, tok, 'tiny', { ctx: CTX, protocol: 'gptq' })).rejects.toThrow(/fewer than one window/);
  });
});
