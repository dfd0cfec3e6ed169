import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { planSwiglu } from '../../kernels/swiglu.js';
import { swigluRef } from '../../kernels/swiglu.ref.js';
import { maxAbsDiff, runPlan, seededValues } from './run-plan.js';

describe('swiglu', () => {
  for (const [rows, hidden, seed] of [[1, 172, 1], [9, 37, 2], [64, 1000, 3]] as const) {
    it(`rows ${rows} hidden ${hidden} (seed ${seed})`, async () => {
      const gpu = await testGpu();
      const gate = seededValues(rows * hidden, seed, 20); // ±20 reaches exp overflow-free tails
      const up = seededValues(rows * hidden, seed + 1, 2);
      gate[0] = -200; // exp(200) overflows f32: silu must still give -0·up, not NaN
      const res = await runPlan(gpu, planSwiglu({ rows, hidden }), { gate, up, out: rows * hidden * 4 }, ['out']);
      const got = new Float32Array(res.out!);
      // f32 exp and division: ~1e-6 relative of values up to 40.
      expect(maxAbsDiff(got, swigluRef(gate, up))).toBeLessThan(1e-4);
      expect(Number.isFinite(got[0])).toBe(true);
    });
  }
});

describe('swiglu on a fused gate|up buffer', () => {
  it('rows 5 hidden 37 (seed 4)', async () => {
    const gpu = await testGpu();
    const [rows, hidden] = [5, 37];
    const gate = seededValues(rows * hidden, 4, 6);
    const up = seededValues(rows * hidden, 5, 2);
    const gateUp = new Float32Array(rows * hidden * 2);
    for (let t = 0; t < rows; t++) {
      gateUp.set(gate.subarray(t * hidden, (t + 1) * hidden), t * 2 * hidden);
      gateUp.set(up.subarray(t * hidden, (t + 1) * hidden), t * 2 * hidden + hidden);
    }
    const res = await runPlan(gpu, planSwiglu({ rows, hidden, gateUpFused: true }), { gate_up: gateUp, out: rows * hidden * 4 }, ['out']);
    expect(maxAbsDiff(new Float32Array(res.out!), swigluRef(gate, up))).toBeLessThan(1e-5);
  });
});
