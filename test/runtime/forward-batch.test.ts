// Executor.forwardBatch (continuous batching): rows of several sequences in one forward, each in its
// own KV slot with its own positions, against the float64 CPU reference of each sequence alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource } from '../../core/model.js';
import { CpuLlama } from '../reference/cpu-llama.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSynthModel } from '../../loaders/synth.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import type { ModelConfig } from '../../core/model.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { quantizedLinearFactory } from '../../runtime/artifact-linears.js';
import { collectCalibrationStats } from '../../quant/calibrate.js';
import { executorCapture } from '../../quant/capture.js';
import { quantizeModel } from '../../quant/quantize-model.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER = '../shared/tokenizers/tok512/tokenizer.bin';
const F32_TOL = 1e-4;

let model: ModelSource;
let seqs: number[][];
let refs: Float64Array[][];

beforeAll(() => {
  model = loadLlama2c(MODEL, 'stories260k');
  const tok = loadLlama2cTokenizer(TOKENIZER, 512);
  seqs = ['Once upon a time, there was a little dog named Max.', 'The sun was hot and Lily', 'Sam had a red ball. He threw it to his mom and she'].map((s) => tok.encode(s, { bos: true }));
  const cpu = new CpuLlama(model);
  refs = seqs.map((s) => cpu.logits(s));
});
afterAll(() => model.close());

function diff(got: Float32Array, ref: Float64Array): number {
  let worst = 0;
  for (let v = 0; v < ref.length; v++) worst = Math.max(worst, Math.abs(got[v]! - ref[v]!));
  return worst;
}

describe('Executor.forwardBatch', () => {
  it('runs prefill chunks and decode rows of three sequences in shared steps, each equal to its reference', async () => {
    const ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 64, slots: 4, maxBatchTokens: 16 });
    try {
      const vocab = model.config.vocabSize;
      // Sequences live in slots 3, 0 and 2; each step takes ≤ 4 prompt rows of each unfinished one.
      const slotOf = [3, 0, 2];
      const done = seqs.map(() => 0);
      let worst = 0;
      let steps = 0;
      while (done.some((d, i) => d < seqs[i]!.length)) {
        const plain: Array<[number, number, number]> = [];
        const wanted: Array<[number, number, number]> = [];
        const who: number[] = [];
        seqs.forEach((s, i) => {
          const n = Math.min(4, s.length - done[i]!);
          for (let k = 0; k < n; k++) {
            const pos = done[i]! + k;
            // Each sequence's last row of the step goes to the tail (its logits are read back).
            if (k === n - 1) {
              wanted.push([s[pos]!, slotOf[i]!, pos]);
              who.push(i);
            } else plain.push([s[pos]!, slotOf[i]!, pos]);
          }
          done[i]! += n;
        });
        const rows = [...plain, ...wanted];
        const logits = await ex.forwardBatch(rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), wanted.length);
        expect(logits.length).toBe(wanted.length * vocab);
        who.forEach((i, j) => (worst = Math.max(worst, diff(logits.subarray(j * vocab, (j + 1) * vocab), refs[i]![done[i]! - 1]!))));
        steps++;
      }
      expect(steps).toBeGreaterThan(3);
      expect(worst).toBeLessThan(F32_TOL);
    } finally {
      ex.destroy();
    }
  });

  it('refuses rows outside the slots or the slot length, and executors with one slot', async () => {
    const ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 32, slots: 2, maxBatchTokens: 8 });
    const single = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 32 });
    try {
      await expect(ex.forwardBatch([1], [2], [0], 1)).rejects.toThrow(/slot 2/);
      await expect(ex.forwardBatch([1], [0], [32], 1)).rejects.toThrow(/position 32/);
      await expect(ex.forwardBatch([1, 2], [0, 1], [0, 0], 3)).rejects.toThrow(/logitRows 3/);
      expect((await ex.forwardBatch([1, 2], [0, 0], [0, 1], 0)).length).toBe(0); // prompt rows only
      await expect(single.forwardBatch([1], [0], [0], 1)).rejects.toThrow(/one KV slot/);
    } finally {
      ex.destroy();
      single.destroy();
    }
  });

  it('runs quantized layers with fused edges (an artifact\'s W4A8 path) like the one-sequence forward', async () => {
    const TINY: ModelConfig = {
      arch: 'llama', dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 512, maxSeqLen: 128,
      normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 1, eosId: 2,
    };
    const root = mkdtempSync(join(tmpdir(), 'aser-forward-batch-'));
    writeSynthModel(join(root, 'llama'), { shape: TINY, seed: 5, tokenizerDir: '../shared/tokenizers/tok512' });
    const source = loadHfModel(join(root, 'llama')).source;
    const gpu = await testGpu();
    try {
      const calib = await Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: 64 });
      const windows = [Array.from({ length: 32 }, (_, i) => (i * 31 + 3) % 512)];
      const stats = await collectCalibrationStats(executorCapture(calib), windows, { seed: 1 });
      calib.destroy();
      const layers = quantizeModel(source, stats, 'aser', { rank: 4, outliers: 2 }).layers;
      const make = (slots: number) => {
        const cache = new PipelineCache(gpu.device);
        return Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: 32, maxBatchTokens: 16, slots, pipelines: cache, linearFactory: quantizedLinearFactory(gpu, cache, (m) => layers.get(m), { maxTokens: 16 }) });
      };
      const one = await make(1);
      const batched = await make(3);
      try {
        const a = [1, 17, 300, 42, 9, 511, 77];
        const b = [1, 128, 3, 64];
        // Alone: each sequence's last-token logits through the one-sequence forward.
        const alone = [];
        for (const s of [a, b]) {
          one.reset();
          await one.forward(s);
          alone.push(await one.logits());
        }
        // Together: a's first 5 rows, b's first 3 rows, then a's last 2 rows and b's last row in one step.
        await batched.forwardBatch([...a.slice(0, 5), ...b.slice(0, 3)], [2, 2, 2, 2, 2, 0, 0, 0], [0, 1, 2, 3, 4, 0, 1, 2], 1);
        const rows = await batched.forwardBatch([a[5]!, a[6]!, b[3]!], [2, 2, 0], [5, 6, 3], 2);
        const vocab = TINY.vocabSize;
        const span = (x: Float32Array) => Math.max(...x) - Math.min(...x);
        [rows.subarray(0, vocab), rows.subarray(vocab)].forEach((got, i) => {
          let worst = 0;
          for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(got[v]! - alone[i]![v]!));
          // Per-token activation quantization keeps rows independent; the float side path and scales
          // sum in the GEMM's order instead of the GEMV's, and an activation may round the other way.
          expect(worst).toBeLessThan(1e-3 * span(alone[i]!));
        });
      } finally {
        one.destroy();
        batched.destroy();
      }
    } finally {
      source.close();
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});
