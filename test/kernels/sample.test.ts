import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { planSample, sampleBufferBytes, type SampleDraw } from '../../kernels/sample.js';
import { sampleFrom } from '../../runtime/sampler.js';
import { createRng } from '../../core/rng.js';
import { runPlan } from './run-plan.js';
import { isCpuAdapter } from '../../kernels/matmul_dense.js';

/**
 * Logits shaped like a language model's: a broad body, a few strong candidates, and with `step`
 * values rounded to multiples of it (many exactly equal logits, so cutoffs fall inside tie groups).
 */
function logitRow(vocab: number, rng: () => number, step = 0): Float32Array {
  const row = new Float32Array(vocab);
  const spread = 1 + 3 * rng();
  for (let i = 0; i < vocab; i++) row[i] = spread * (rng() + rng() + rng() - 1.5);
  for (let s = 0; s < 8; s++) row[Math.floor(rng() * vocab)] = spread * (2 + 4 * rng());
  if (step) for (let i = 0; i < vocab; i++) row[i] = Math.round(row[i]! / step) * step;
  return row;
}

/** Random settings covering every mode: greedy, plain temperature, top-k, top-p, both; k at the edges. */
function randomDraw(vocab: number, rng: () => number): SampleDraw {
  const kinds = [0, 1, 2, 3, 4];
  const kind = kinds[Math.floor(rng() * kinds.length)]!;
  const temperature = kind === 0 ? 0 : [0.3, 0.7, 0.8, 1, 1.5][Math.floor(rng() * 5)]!;
  const ks = [1, 2, 40, 100, vocab - 1, vocab, vocab + 5];
  const topK = kind === 2 || kind === 4 ? ks[Math.floor(rng() * ks.length)]! : 0;
  const topP = kind === 3 || kind === 4 ? 0.05 + 0.94 * rng() : 1;
  return { temperature, topK, topP, u: rng() };
}

/** The GPU's pick; `wide` forces the 256-wide workgroup (the GPU variant) on a CPU adapter too. */
async function gpuPick(logits: Float32Array, vocab: number, row: number, draw: SampleDraw, wide = false): Promise<{ id: number; bad: number }> {
  const gpu = await testGpu();
  const plan = planSample({ vocab, row, draw, cpu: !wide && isCpuAdapter(gpu) });
  const bytes = sampleBufferBytes(vocab);
  const res = await runPlan(gpu, plan, { logits, masses: bytes.masses, candidates: bytes.candidates, out: bytes.out }, ['out']);
  const out = new Uint32Array(res.out!);
  return { id: out[0]!, bad: out[1]! };
}

describe('sample', () => {
  // Each case: a fresh row (or one of several rows in the buffer), random settings and u; the GPU's
  // token must equal the host sampler's, exactly (seeds in the test names replay a case).
  for (const [vocab, rows, cases, seed, step] of [
    [512, 3, 300, 1, 0], [517, 1, 300, 2, 0], [1000, 2, 200, 3, 0.25], [32003, 1, 60, 4, 0], [128256, 1, 25, 5, 0], [128256, 1, 10, 6, 0.5],
  ] as const) {
    it(`vocab ${vocab}${step ? `, logits in steps of ${step}` : ''}: ${cases} random draws pick the host's token (seed ${seed})`, async () => {
      const rng = createRng(seed);
      const mismatches: string[] = [];
      for (let c = 0; c < cases; c++) {
        const logits = new Float32Array(rows * vocab);
        for (let r = 0; r < rows; r++) logits.set(logitRow(vocab, rng, step), r * vocab);
        const row = Math.floor(rng() * rows);
        const draw = randomDraw(vocab, rng);
        const want = sampleFrom(logits.subarray(row * vocab, (row + 1) * vocab), draw);
        const got = await gpuPick(logits, vocab, row, draw, c % 2 === 1);
        expect(got.bad).toBe(0);
        if (got.id !== want) mismatches.push(`case ${c}: ${JSON.stringify(draw)} host ${want} gpu ${got.id}`);
      }
      expect(mismatches).toEqual([]);
    }, 120_000);
  }

  it('breaks ties by the lowest id: greedy, the top-k cutoff and the pick inside a tie group', async () => {
    const vocab = 300;
    const logits = new Float32Array(vocab).fill(-5);
    for (const i of [17, 42, 250]) logits[i] = 3; // three equal maxima
    for (const i of [5, 99, 100, 280]) logits[i] = 2;
    expect((await gpuPick(logits, vocab, 0, { temperature: 0, topK: 0, topP: 1, u: 0 })).id).toBe(17);
    // top-k 5: the three maxima and the two lowest ids of the next tie group; u walks them in that order.
    for (const u of [0, 0.3, 0.55, 0.8, 0.99]) {
      const draw = { temperature: 1, topK: 5, topP: 1, u };
      const want = sampleFrom(logits, draw);
      expect([17, 42, 250, 5, 99]).toContain(want);
      expect((await gpuPick(logits, vocab, 0, draw)).id).toBe(want);
    }
  });

  it('counts non-finite logits (the caller throws)', async () => {
    const logits = new Float32Array(600).fill(1);
    logits[7] = NaN;
    logits[300] = -Infinity;
    const got = await gpuPick(logits, 600, 0, { temperature: 0.8, topK: 40, topP: 0.9, u: 0.5 });
    expect(got.bad).toBe(2);
  });
});
