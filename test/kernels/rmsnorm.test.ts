import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { planRmsnorm } from '../../kernels/rmsnorm.js';
import { rmsnormRef } from '../../kernels/rmsnorm.ref.js';
import { maxAbsDiff, runPlan, seededValues } from './run-plan.js';

// f32 sums of ≤ 4096 squares vs float64: relative error ~1e-6; outputs are O(1), so 1e-5 absolute.
const TOL = 1e-5;

describe('rmsnorm', () => {
  const cases = [
    { rows: 1, dim: 64, rowStart: 0, add: false, seed: 1, cpu: false },
    { rows: 7, dim: 7, rowStart: 0, add: true, seed: 2, cpu: false },
    { rows: 33, dim: 300, rowStart: 4, add: true, seed: 3, cpu: false },
    { rows: 3, dim: 4096, rowStart: 2, add: false, seed: 4, cpu: false },
    { rows: 5, dim: 64, rowStart: 1, add: true, seed: 5, cpu: true },
    { rows: 2, dim: 4097, rowStart: 0, add: false, seed: 6, cpu: true },
  ];
  for (const c of cases) {
    it(`rows ${c.rows} dim ${c.dim} rowStart ${c.rowStart} ${c.add ? 'with' : 'without'} residual add${c.cpu ? ', 8-wide' : ''} (seed ${c.seed})`, async () => {
      const gpu = await testGpu();
      const total = (c.rowStart + c.rows) * c.dim;
      const x = seededValues(total, c.seed, 3);
      const delta = seededValues(total, c.seed + 100, 2);
      const weight = seededValues(c.dim, c.seed + 200, 1.5);
      const plan = planRmsnorm({ rows: c.rows, dim: c.dim, eps: 1e-5, rowStart: c.rowStart, addResidual: c.add, cpu: c.cpu });
      const res = await runPlan(gpu, plan, { x, weight, delta, out: c.rows * c.dim * 4 }, ['x', 'out']);
      const xRef = x.slice();
      const expected = rmsnormRef(xRef, weight, c.dim, c.rows, 1e-5, c.rowStart, c.add ? delta : undefined);
      expect(maxAbsDiff(new Float32Array(res.out!), expected)).toBeLessThan(TOL);
      // Rows before rowStart are untouched; the rest carry the residual sum (exact f32 adds).
      expect(Array.from(new Float32Array(res.x!))).toEqual(Array.from(xRef));
    });
  }
});
