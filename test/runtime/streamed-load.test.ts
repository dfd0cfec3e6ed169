// Streamed loading on a small bf16 synthetic model: weights read in row chunks and widened on the GPU,
// the embedding table kept on the host, against the whole-table path and the float64 CPU reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHfModel } from '../../loaders/hf-model.js';
import { writeSynthModel } from '../../loaders/synth.js';
import { Executor } from '../../runtime/executor.js';
import type { ExecutorOptions } from '../../runtime/executor-options.js';
import type { ModelConfig } from '../../core/model.js';
import { CpuLlama } from '../reference/cpu-llama.js';
import { testGpu, NO_SHADER_F16 } from '../helpers/gpu.js';

const TINY: ModelConfig = {
  arch: 'llama', dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 512, maxSeqLen: 256,
  normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 1, eosId: 2,
};
const TOK512 = '../shared/tokenizers/tok512';
const PROMPT = [1, 17, 300, 42, 511, 7, 7, 99];

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'aser-stream-'));
  writeSynthModel(join(root, 'untied'), { shape: TINY, seed: 11, tokenizerDir: TOK512, shardBytes: 60_000 });
  writeSynthModel(join(root, 'tied'), { shape: { ...TINY, tiedEmbeddings: true }, seed: 12, tokenizerDir: TOK512 });
  writeSynthModel(join(root, 'qwen'), { shape: { ...TINY, arch: 'qwen2', nKvHeads: 4, attentionBias: true }, seed: 13, tokenizerDir: TOK512 });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(dir: string, opts: Partial<ExecutorOptions>) {
  const { source } = loadHfModel(join(root, dir));
  const ex = await Executor.create(await testGpu(), source, { dtype: 'f32', maxSeqLen: 64, ...opts });
  try {
    await ex.forward(PROMPT);
    const logits = await ex.logits();
    return { logits, memory: ex.memory(), stats: ex.loadStats!, embedding: ex.embedding, cpu: new CpuLlama(source) };
  } finally {
    ex.destroy();
    source.close();
  }
}

function maxAbsDiff(a: Float32Array, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('streamed loading (bf16 rows widened on the GPU)', () => {
  for (const dir of ['untied', 'tied', 'qwen']) {
    it(`${dir}: host embedding + 1 KiB upload chunks give the same logits as the GPU table, and match the CPU reference`, async () => {
      const whole = await run(dir, { embedding: 'gpu' });
      const streamed = await run(dir, { embedding: 'host', uploadChunkBytes: 1024 });
      expect(whole.embedding).toBe('gpu');
      expect(streamed.embedding).toBe('host');
      expect(Array.from(streamed.logits)).toEqual(Array.from(whole.logits)); // f32: bf16 widening is exact both ways
      // Everything came in as bf16 and was widened on the GPU, ≤ 1 KiB of source bytes at a time.
      expect(streamed.stats.gpuConverted).toBe(streamed.stats.bytesRead);
      expect(streamed.stats.largestChunk).toBeLessThanOrEqual(1024);
      expect(streamed.stats.chunks).toBeGreaterThan(100);
      // No table on the GPU in host mode; the classifier (lm_head, or the tied matrix) is still there.
      expect(streamed.memory.embedding).toBe(0);
      expect(whole.memory.embedding).toBe(TINY.vocabSize * TINY.dim * 4);
      expect(streamed.memory.classifier).toBeGreaterThanOrEqual(TINY.vocabSize * TINY.dim * 4);
      expect(whole.memory.total - streamed.memory.total).toBe(whole.memory.embedding);
      const ref = streamed.cpu.logits(PROMPT).at(-1)!;
      expect(maxAbsDiff(streamed.logits, ref)).toBeLessThan(1e-4);
    });
  }

  it('f16 weights: streamed bf16 → f16 on the GPU, host and GPU embeddings agree', async (ctx) => {
    const gpu = await testGpu();
    ctx.skip(!gpu.features.shaderF16, NO_SHADER_F16);
    const whole = await run('untied', { dtype: 'f16', embedding: 'gpu' });
    const streamed = await run('untied', { dtype: 'f16', embedding: 'host', uploadChunkBytes: 4096 });
    // bf16 values in f16's normal range convert exactly, so the two tables hold the same numbers.
    expect(maxAbsDiff(streamed.logits, whole.logits)).toBeLessThan(1e-5);
    expect(maxAbsDiff(streamed.logits, streamed.cpu.logits(PROMPT).at(-1)!)).toBeLessThan(0.05);
    expect(streamed.memory.classifier).toBeLessThan(whole.memory.embedding + 4096); // f16 classifier: half the f32 bytes
  });
});
