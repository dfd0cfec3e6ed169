import { describe, expect, it } from 'vitest';
import { testGpu, NO_SHADER_F16 } from '../helpers/gpu.js';
import { planAttention } from '../../kernels/attention.js';
import { attentionRef } from '../../kernels/attention.ref.js';
import { f16ToF32Array, f32ToF16Array } from '../../core/dtype.js';
import { maxAbsDiff, runPlan, seededValues } from './run-plan.js';

describe('attention (causal, GQA, over the KV cache)', () => {
  const cases = [
    { rows: 1, pos0: 0, nHeads: 8, nKvHeads: 4, headDim: 8, kvF16: false, seed: 1 }, // first token: one key
    { rows: 1, pos0: 200, nHeads: 8, nKvHeads: 4, headDim: 8, kvF16: false, seed: 2 }, // decode across 4 tiles
    { rows: 17, pos0: 0, nHeads: 6, nKvHeads: 2, headDim: 12, kvF16: false, seed: 3 }, // prefill
    { rows: 5, pos0: 61, nHeads: 4, nKvHeads: 4, headDim: 80, kvF16: false, seed: 4 }, // tile boundary, ACC 2
    { rows: 3, pos0: 130, nHeads: 4, nKvHeads: 1, headDim: 128, kvF16: true, seed: 5 },
    { rows: 9, pos0: 20, nHeads: 6, nKvHeads: 2, headDim: 8, kvF16: false, seed: 6, qStride: 6 * 8 + 2 * 2 * 8 }, // q inside a fused q|k|v row
  ];
  for (const c0 of cases) for (const variant of ['keys', 'rows'] as const) {
    const c = { ...c0, variant };
    it(`${variant}: rows ${c.rows} pos0 ${c.pos0} heads ${c.nHeads}/${c.nKvHeads} hd ${c.headDim} kv ${c.kvF16 ? 'f16' : 'f32'} (seed ${c.seed})`, async (ctx) => {
      const gpu = await testGpu();
      ctx.skip(c.kvF16 && !gpu.features.shaderF16, NO_SHADER_F16);
      const maxSeq = c.pos0 + c.rows + 2;
      const kvElems = maxSeq * c.nKvHeads * c.headDim;
      const qStride = (c as { qStride?: number }).qStride ?? c.nHeads * c.headDim;
      const q = seededValues(c.rows * qStride, c.seed, 3);
      let kc: Float32Array | Uint16Array = seededValues(kvElems, c.seed + 1, 3);
      let vc: Float32Array | Uint16Array = seededValues(kvElems, c.seed + 2, 2);
      let kRef = kc, vRef = vc;
      if (c.kvF16) {
        kc = f32ToF16Array(kRef);
        vc = f32ToF16Array(vRef);
        kRef = f16ToF32Array(kc);
        vRef = f16ToF32Array(vc);
      }
      const res = await runPlan(gpu, planAttention(c), { q, k_cache: kc, v_cache: vc, out: c.rows * c.nHeads * c.headDim * 4 }, ['out']);
      // f32 dot products (scores up to ~25) and an online softmax: ~1e-6 relative; outputs are ≤ 2.
      expect(maxAbsDiff(new Float32Array(res.out!), attentionRef(c, q, kRef, vRef))).toBeLessThan(2e-5);
    });
  }

  // Continuous batching: rows of three sequences in one chunk, each with its own cache region and position.
  for (const variant of ['keys', 'rows'] as const) {
    it(`${variant}: per-row positions over per-sequence cache regions`, async () => {
      const gpu = await testGpu();
      const c = { rows: 6, pos0: 0, nHeads: 4, nKvHeads: 2, headDim: 16, kvF16: false, variant, rowPositions: true };
      const region = 40;
      // (kvBase, pos): a decode row of sequence 0 at 30, a 3-row prefill of sequence 2, decode rows of 1 and 0's neighbour.
      const rowPos = Uint32Array.from([0, 30, 2 * region, 0, 2 * region, 1, 2 * region, 2, region, 7, 3 * region, 39]);
      const kvElems = 4 * region * c.nKvHeads * c.headDim;
      const q = seededValues(c.rows * c.nHeads * c.headDim, 11, 3);
      const kc = seededValues(kvElems, 12, 3);
      const vc = seededValues(kvElems, 13, 2);
      const res = await runPlan(gpu, planAttention(c), { q, k_cache: kc, v_cache: vc, out: c.rows * c.nHeads * c.headDim * 4, row_pos: rowPos }, ['out']);
      expect(maxAbsDiff(new Float32Array(res.out!), attentionRef(c, q, kc, vc, rowPos))).toBeLessThan(2e-5);
    });
  }
});
