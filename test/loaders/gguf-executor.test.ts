import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.js';
import { loadGguf } from '../../loaders/gguf.js';
import { exportGguf } from '../../loaders/gguf-writer.js';
import { ggufTokenizer, ggufVocabFromLlama2c } from '../../loaders/gguf-tokenizer.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { Executor } from '../../runtime/executor.js';
import type { ExecutorDType } from '../../runtime/executor-options.js';
import type { ModelSource } from '../../core/model.js';
import { asHalfStyle } from '../reference/synthetic-model.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER_BIN = '../shared/models/stories260K/tokenizer.bin';

/** Last-token logits after a prefill and after 8 decode steps (prefill and decode kernels both run). */
async function logitsOf(model: ModelSource, dtype: ExecutorDType, prompt: number[]): Promise<Float32Array[]> {
  const ex = await Executor.create(await testGpu(), model, { dtype, maxSeqLen: 64 });
  try {
    await ex.forward(prompt);
    const out = [await ex.logits()];
    for (const id of [261, 300, 410, 13, 2, 5, 400, 399]) {
      await ex.forward([id]);
      out.push(await ex.logits());
    }
    return out;
  } finally {
    ex.destroy();
  }
}

describe('stories260K exported to GGUF runs with identical logits on the GPU', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aser-gguf-gpu-'));
  const original = loadLlama2c(MODEL, 'stories260k');
  let prompt: number[];
  beforeAll(() => {
    const vocab = ggufVocabFromLlama2c(TOKENIZER_BIN, 512);
    for (const dtype of ['f32', 'f16'] as const) exportGguf(original, vocab, join(dir, `${dtype}.gguf`), { dtype });
    const l2c = loadLlama2c(MODEL);
    exportGguf(asHalfStyle(l2c), vocab, join(dir, 'from-half.gguf'));
    l2c.close();
    const g = loadGguf(join(dir, 'f32.gguf'));
    prompt = ggufTokenizer(g.gguf).encode('Once upon a time, there was a little dog named Max. He liked to run.', { bos: true });
    g.close();
  });
  afterAll(() => original.close());

  for (const [file, dtype] of [['f32.gguf', 'f32'], ['f16.gguf', 'f16'], ['from-half.gguf', 'f32']] as const) {
    it(`${file} in ${dtype} equals the llama2.c original bit for bit`, async (ctx) => {
      const gpu = await testGpu();
      if (dtype === 'f16' && !gpu.features.shaderF16) ctx.skip(); // needs shader-f16; the f32 cases cover the loader
      const g = loadGguf(join(dir, file));
      try {
        expect(prompt.length).toBeGreaterThan(15);
        const [ours, ref] = [await logitsOf(g, dtype, prompt), await logitsOf(original, dtype, prompt)];
        expect(ours.length).toBe(9);
        for (let i = 0; i < ours.length; i++) expect(ours[i], `step ${i}`).toEqual(ref[i]);
      } finally {
        g.close();
      }
    });
  }
});
