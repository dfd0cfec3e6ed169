import { describe, expect, it } from 'vitest';
import { testGpu, NO_SHADER_F16 } from '../helpers/gpu.js';
import { planEmbedding, embeddingParts } from '../../kernels/embedding.js';
import { embeddingRef } from '../../kernels/embedding.ref.js';
import { f16ToF32Array, f32ToF16Array } from '../../core/dtype.js';
import { runPlan, seededValues } from './run-plan.js';

describe('embedding gather', () => {
  for (const [rows, dim, vocab, seed] of [[1, 64, 512, 1], [13, 7, 33, 2], [300, 96, 1000, 3]] as const) {
    it(`gathers ${rows} tokens of dim ${dim} from a table split in two parts (seed ${seed})`, async () => {
      const gpu = await testGpu();
      const table = seededValues(vocab * dim, seed);
      const ids = Uint32Array.from({ length: rows }, (_, i) => (i * 7919 + seed) % vocab);
      const split = Math.floor(vocab / 3);
      let out = new Float32Array(rows * dim);
      let expected = new Float32Array(rows * dim);
      for (const [rowStart, rowCount] of [[0, split], [split, vocab - split]] as const) {
        const part = table.subarray(rowStart * dim, (rowStart + rowCount) * dim);
        const plan = planEmbedding({ rows, dim, rowStart, rowCount, tableF16: false });
        const res = await runPlan(gpu, plan, { ids, table: part, out }, ['out']);
        out = new Float32Array(res.out!);
        expected = embeddingRef(ids, part, dim, rowStart, rowCount, expected);
      }
      expect(Array.from(out)).toEqual(Array.from(expected)); // a gather is exact
    });
  }

  it('gathers from an f16 table exactly (the f16 values widened)', async (ctx) => {
    const gpu = await testGpu();
    ctx.skip(!gpu.features.shaderF16, NO_SHADER_F16);
    const [rows, dim, vocab] = [5, 11, 40];
    const bits = f32ToF16Array(seededValues(vocab * dim, 9));
    const ids = Uint32Array.of(0, 39, 17, 17, 3);
    const res = await runPlan(gpu, planEmbedding({ rows, dim, rowStart: 0, rowCount: vocab, tableF16: true }), { ids, table: bits, out: rows * dim * 4 }, ['out']);
    const expected = embeddingRef(ids, f16ToF32Array(bits), dim, 0, vocab, new Float32Array(rows * dim));
    expect(Array.from(new Float32Array(res.out!))).toEqual(Array.from(expected));
  });

  it('splits big tables by the binding limit', () => {
    expect(embeddingParts(32000, 4096, 4, 128 << 20)).toEqual([{ rowStart: 0, rowCount: 8192 }, { rowStart: 8192, rowCount: 8192 }, { rowStart: 16384, rowCount: 8192 }, { rowStart: 24576, rowCount: 7424 }]);
    expect(() => embeddingParts(10, 1 << 20, 4, 1 << 20)).toThrow(/exceeds the storage binding limit/);
  });
});
