// The llama2.c -> Hugging Face conversion round trip: the converted directory (q/k rows permuted to
// rotate-half, ropeStyle 'half') gives the same logits on the GPU as the original checkpoint.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.js';
import { convertLlama2cToHf } from '../../loaders/convert.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import { Executor } from '../../runtime/executor.js';

describe('aser convert --from llama2c --to hf', () => {
  it('gives the same logits as the original model', async () => {
    const gpu = await testGpu();
    const out = join(mkdtempSync(join(tmpdir(), 'aser-convert-')), 'hf');
    try {
      convertLlama2cToHf('models/stories260k/model.bin', 'models/stories260k', out);
      const original = loadLlama2c('models/stories260k/model.bin');
      const { source: converted } = loadHfModel(out);
      expect(converted.config.ropeStyle).toBe('half');
      const prompt = [1, 403, 407, 261, 378, 442, 395, 267, 297, 370, 293, 500];
      const logitsOf = async (source: typeof original) => {
        const ex = await Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: 64 });
        await ex.forward(prompt);
        const prefill = await ex.logits();
        await ex.forward([300]);
        const decode = await ex.logits();
        ex.destroy();
        return [prefill, decode];
      };
      const [a0, a1] = await logitsOf(original);
      const [b0, b1] = await logitsOf(converted);
      let maxDiff = 0;
      for (const [a, b] of [[a0!, b0!], [a1!, b1!]] as const) for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      // Same weights, same arithmetic up to the order RoPE pairs are visited: f32 rounding only.
      expect(maxDiff).toBeLessThan(1e-4);
      original.close();
      converted.close();
    } finally {
      rmSync(join(out, '..'), { recursive: true, force: true });
    }
  });
});
