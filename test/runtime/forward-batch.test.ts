// Executor.forwardBatch (continuous batching): rows of several sequences in one forward, each in its
// own KV slot with its own positions, against the float64 CPU reference of each sequence alone.
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
      await expect(single.forwardBatch([1], [0], [0], 1)).rejects.toThrow(/one KV slot/);
    } finally {
      ex.destroy();
      single.destroy();
    }
  });
});
