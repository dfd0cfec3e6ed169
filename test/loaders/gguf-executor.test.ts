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
import type { ModelSource, TensorRef } from '../../core/model.js';
import { asHalfStyle } from '../reference/synthetic-model.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER_BIN = '../shared/models/stories260K/tokenizer.bin';

/** Last-token logits after a prefill and after 8 decode steps (prefill and decode kernels both run). */
async function logitsOf(model: ModelSource, dtype: ExecutorDType, prompt: number[], onLoad?: (ex: Executor) => void): Promise<Float32Array[]> {
  const ex = await Executor.create(await testGpu(), model, { dtype, maxSeqLen: 64 });
  try {
    onLoad?.(ex);
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

/** The same source with block-quantized tensors offered only as f32 (dequantized on the host). */
function withoutBlocks(model: ModelSource): ModelSource {
  return {
    ...model,
    tensor(name) {
      const { blocks: _raw, ...t } = model.tensor(name);
      const whole = t.read();
      return { ...t, read: () => whole, readRange: undefined } as TensorRef;
    },
  };
}

describe('block-quantized GGUF weights are dequantized on the GPU at load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aser-gguf-blocks-'));
  const original = loadLlama2c(MODEL, 'stories260k');
  const vocab = ggufVocabFromLlama2c(TOKENIZER_BIN, 512);
  for (const dtype of ['q8_0', 'q4_0'] as const) exportGguf(original, vocab, join(dir, `${dtype}.gguf`), { dtype });
  original.close();
  const prompt = [1, 403, 407, 261, 378, 283, 300, 410, 13];

  for (const [file, dtype] of [['q8_0.gguf', 'f32'], ['q4_0.gguf', 'f32'], ['q4_0.gguf', 'f16']] as const) {
    it(`${file} (${dtype} weights on the GPU): the same logits as its host-dequantized weights, bit for bit`, async (ctx) => {
      const gpu = await testGpu();
      if (dtype === 'f16' && !gpu.features.shaderF16) ctx.skip(); // needs shader-f16; the f32 cases cover the loader
      const g = loadGguf(join(dir, file));
      try {
        const types = new Set(g.gguf.tensors.map((t) => t.type.name));
        expect(types.has(file.startsWith('q8') ? 'Q8_0' : 'Q4_0')).toBe(true);
        expect(g.tensor('model.layers.0.self_attn.q_proj.weight').blocks).toBeDefined();
        let onGpu = 0;
        const [ours, ref] = [await logitsOf(g, dtype, prompt, (ex) => (onGpu = ex.loadStats?.gpuConverted ?? 0)), await logitsOf(withoutBlocks(g), dtype, prompt)];
        expect(onGpu).toBeGreaterThan(0); // the blocks went to the GPU raw
        for (let i = 0; i < ours.length; i++) expect(ours[i], `step ${i}`).toEqual(ref[i]);
      } finally {
        g.close();
      }
    });
  }
});
