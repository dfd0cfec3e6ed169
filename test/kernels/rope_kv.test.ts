import { describe, expect, it } from 'vitest';
import { testGpu, NO_SHADER_F16 } from '../helpers/gpu.js';
import { planRopeKv, ropeInvFrequencies, ropeTable } from '../../kernels/rope_kv.js';
import { ropeKvRef } from '../../kernels/rope_kv.ref.js';
import { f16ToF32Array, f32ToF16Array } from '../../core/dtype.js';
import type { RopeStyle } from '../../core/model.js';
import { maxAbsDiff, runPlan, seededValues } from './run-plan.js';

describe('rope_kv', () => {
  const cases: Array<{ rows: number; pos0: number; nHeads: number; nKvHeads: number; headDim: number; style: RopeStyle; kvF16: boolean; seed: number; qkvFused?: boolean }> = [
    { rows: 1, pos0: 0, nHeads: 8, nKvHeads: 4, headDim: 8, style: 'interleaved', kvF16: false, seed: 1 },
    { rows: 1, pos0: 37, nHeads: 8, nKvHeads: 4, headDim: 8, style: 'half', kvF16: false, seed: 2 },
    { rows: 13, pos0: 5, nHeads: 3, nKvHeads: 1, headDim: 6, style: 'interleaved', kvF16: false, seed: 3 },
    { rows: 9, pos0: 50, nHeads: 4, nKvHeads: 2, headDim: 128, style: 'half', kvF16: false, seed: 4 },
    { rows: 7, pos0: 3, nHeads: 4, nKvHeads: 2, headDim: 64, style: 'interleaved', kvF16: true, seed: 5 },
    { rows: 11, pos0: 9, nHeads: 6, nKvHeads: 2, headDim: 10, style: 'half', kvF16: false, seed: 6, qkvFused: true },
    { rows: 1, pos0: 40, nHeads: 8, nKvHeads: 4, headDim: 8, style: 'interleaved', kvF16: true, seed: 7, qkvFused: true },
  ];
  for (const c of cases) {
    it(`${c.qkvFused ? 'fused qkv, ' : ''}${c.style} rows ${c.rows} pos0 ${c.pos0} heads ${c.nHeads}/${c.nKvHeads} hd ${c.headDim} kv ${c.kvF16 ? 'f16' : 'f32'} (seed ${c.seed})`, async (ctx) => {
      const gpu = await testGpu();
      ctx.skip(c.kvF16 && !gpu.features.shaderF16, NO_SHADER_F16);
      const maxSeq = c.pos0 + c.rows + 3;
      const table = ropeTable(c.headDim, 10000, maxSeq);
      const q = seededValues(c.rows * c.nHeads * c.headDim, c.seed, 2);
      const k = seededValues(c.rows * c.nKvHeads * c.headDim, c.seed + 1, 2);
      const v = seededValues(c.rows * c.nKvHeads * c.headDim, c.seed + 2, 2);
      const cacheElems = maxSeq * c.nKvHeads * c.headDim;
      const cacheInit = seededValues(cacheElems, c.seed + 3);
      const cacheData = c.kvF16 ? f32ToF16Array(cacheInit) : cacheInit;
      const plan = planRopeKv(c);
      // The fused layout: per token, q heads then k heads then v heads.
      const hd = c.headDim, qRow = c.nHeads * hd, kvRow = c.nKvHeads * hd;
      const qkv = new Float32Array(c.rows * (qRow + 2 * kvRow));
      for (let t = 0; t < c.rows; t++) {
        const at = t * (qRow + 2 * kvRow);
        qkv.set(q.subarray(t * qRow, (t + 1) * qRow), at);
        qkv.set(k.subarray(t * kvRow, (t + 1) * kvRow), at + qRow);
        qkv.set(v.subarray(t * kvRow, (t + 1) * kvRow), at + qRow + kvRow);
      }
      const inputs = c.qkvFused ? { qkv, table, k_cache: cacheData, v_cache: cacheData } : { q, k, v, table, k_cache: cacheData, v_cache: cacheData };
      const res = await runPlan(gpu, plan, inputs, [c.qkvFused ? 'qkv' : 'q', 'k_cache', 'v_cache']);
      if (c.qkvFused) {
        // Rotated q comes back in place; k and v stay as they were.
        const out = new Float32Array(res.qkv!);
        const gotQ = new Float32Array(c.rows * qRow);
        for (let t = 0; t < c.rows; t++) {
          gotQ.set(out.subarray(t * (qRow + 2 * kvRow), t * (qRow + 2 * kvRow) + qRow), t * qRow);
          expect(Array.from(out.subarray(t * (qRow + 2 * kvRow) + qRow, (t + 1) * (qRow + 2 * kvRow)))).toEqual(Array.from(qkv.subarray(t * (qRow + 2 * kvRow) + qRow, (t + 1) * (qRow + 2 * kvRow))));
        }
        res.q = gotQ.buffer;
      }
      const widen = (b: ArrayBuffer) => (c.kvF16 ? f16ToF32Array(new Uint16Array(b, 0, cacheElems)) : new Float32Array(b, 0, cacheElems));
      const qRef = Float64Array.from(q);
      const kRef = Float64Array.from(c.kvF16 ? f16ToF32Array(cacheData as Uint16Array) : cacheInit);
      const vRef = kRef.slice();
      ropeKvRef(c, qRef, k, v, table, kRef, vRef);
      // f32 rotation: two products and a sum of values ≤ 2 → ~1e-7; f16 cache adds its rounding (2^-11 relative of ≤ 2.9).
      const cacheTol = c.kvF16 ? 2e-3 : 1e-6;
      expect(maxAbsDiff(new Float32Array(res.q!), qRef)).toBeLessThan(1e-6);
      expect(maxAbsDiff(widen(res.k_cache!), kRef)).toBeLessThan(cacheTol);
      expect(maxAbsDiff(widen(res.v_cache!), vRef)).toBeLessThan(cacheTol);
    });
  }

  for (const qkvFused of [false, true]) {
    it(`${qkvFused ? 'fused qkv, ' : ''}per-row positions write each sequence's cache region`, async () => {
      const gpu = await testGpu();
      const c = { rows: 5, pos0: 0, nHeads: 4, nKvHeads: 2, headDim: 8, style: 'half' as const, kvF16: false, qkvFused, rowPositions: true };
      const region = 16;
      const rowPos = Uint32Array.from([0, 9, region, 0, region, 1, 2 * region, 15, 3 * region, 4]);
      const table = ropeTable(c.headDim, 10000, region);
      const hd = c.headDim, qRow = c.nHeads * hd, kvRow = c.nKvHeads * hd;
      const q = seededValues(c.rows * qRow, 21, 2);
      const k = seededValues(c.rows * kvRow, 22, 2);
      const v = seededValues(c.rows * kvRow, 23, 2);
      const cacheElems = 4 * region * kvRow;
      const cacheInit = seededValues(cacheElems, 24);
      const qkv = new Float32Array(c.rows * (qRow + 2 * kvRow));
      for (let t = 0; t < c.rows; t++) {
        const at = t * (qRow + 2 * kvRow);
        qkv.set(q.subarray(t * qRow, (t + 1) * qRow), at);
        qkv.set(k.subarray(t * kvRow, (t + 1) * kvRow), at + qRow);
        qkv.set(v.subarray(t * kvRow, (t + 1) * kvRow), at + qRow + kvRow);
      }
      const inputs = qkvFused ? { qkv, table, k_cache: cacheInit, v_cache: cacheInit, row_pos: rowPos } : { q, k, v, table, k_cache: cacheInit, v_cache: cacheInit, row_pos: rowPos };
      const res = await runPlan(gpu, planRopeKv(c), inputs, [qkvFused ? 'qkv' : 'q', 'k_cache', 'v_cache']);
      let gotQ = new Float32Array(res.q ?? new ArrayBuffer(0));
      if (qkvFused) {
        const out = new Float32Array(res.qkv!);
        gotQ = new Float32Array(c.rows * qRow);
        for (let t = 0; t < c.rows; t++) gotQ.set(out.subarray(t * (qRow + 2 * kvRow), t * (qRow + 2 * kvRow) + qRow), t * qRow);
      }
      const qRef = Float64Array.from(q);
      const kRef = Float64Array.from(cacheInit);
      const vRef = kRef.slice();
      ropeKvRef(c, qRef, k, v, table, kRef, vRef, rowPos);
      expect(maxAbsDiff(gotQ, qRef)).toBeLessThan(1e-6);
      expect(maxAbsDiff(new Float32Array(res.k_cache!), kRef)).toBeLessThan(1e-6);
      expect(maxAbsDiff(new Float32Array(res.v_cache!), vRef)).toBeLessThan(1e-6);
    });
  }

  it('applies llama3 frequency scaling band by band', () => {
    const scaling = { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    const plain = ropeInvFrequencies(128, 500000);
    const scaled = ropeInvFrequencies(128, 500000, scaling);
    expect(scaled[0]).toBe(plain[0]); // wavelength 2π < 8192/4: high frequency, kept
    expect(scaled[63]).toBeCloseTo(plain[63]! / 8, 15); // wavelength > 8192: divided by the factor
    const mid = Array.from(plain.keys()).find((j) => { const w = (2 * Math.PI) / plain[j]!; return w > 2048 && w < 8192; })!;
    expect(scaled[mid]!).toBeLessThan(plain[mid]!);
    expect(scaled[mid]!).toBeGreaterThan(plain[mid]! / 8);
  });
});
