import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { planLogsoftmaxNll, UNSCORED_TARGET } from '../../kernels/logsoftmax_nll.js';
import { logsoftmaxNllRef } from '../../kernels/logsoftmax_nll.ref.js';
import { maxAbsDiff, runPlan, seededValues } from './run-plan.js';

describe('logsoftmax_nll', () => {
  for (const [rows, vocab, first, seed, cpu] of [[1, 512, 0, 1, false], [7, 511, 3, 2, false], [40, 32000, 5, 3, false], [6, 517, 2, 4, true]] as const) {
    it(`rows ${rows} vocab ${vocab} first ${first}${cpu ? ' 8-wide' : ''} (seed ${seed})`, async () => {
      const gpu = await testGpu();
      const logits = seededValues(rows * vocab, seed, 12);
      const targets = new Uint32Array(first + rows).fill(UNSCORED_TARGET);
      for (let r = 0; r < rows; r++) targets[first + r] = (r * 131 + seed) % vocab;
      if (rows > 1) targets[first + 1] = UNSCORED_TARGET;
      const res = await runPlan(gpu, planLogsoftmaxNll({ rows, vocab, first, cpu }), { logits, targets, out: (first + rows) * 8 }, ['out']);
      const out = new Float32Array(res.out!);
      const got = Array.from({ length: rows }, (_, r) => out[2 * (first + r)]!);
      const bad = Array.from({ length: rows }, (_, r) => out[2 * (first + r) + 1]!);
      // f32 log-sum-exp of ≤ 32000 terms with values ≤ 12: ~1e-6 relative of an NLL ≈ 12.
      expect(maxAbsDiff(got, logsoftmaxNllRef(logits, vocab, targets.subarray(first)))).toBeLessThan(2e-5);
      expect(bad.every((b) => b === 0)).toBe(true);
    });
  }

  it('counts non-finite logits per row', async () => {
    const gpu = await testGpu();
    const vocab = 300;
    const logits = seededValues(2 * vocab, 5);
    logits[vocab + 10] = NaN;
    logits[vocab + 11] = Infinity;
    const res = await runPlan(gpu, planLogsoftmaxNll({ rows: 2, vocab, first: 0 }), { logits, targets: Uint32Array.of(1, 2), out: 16 }, ['out']);
    const out = new Float32Array(res.out!);
    expect([out[1], out[3]]).toEqual([0, 2]);
  });
});
