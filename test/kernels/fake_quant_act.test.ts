// The simulated (fake-quant f32) quantized linear against its float64 CPU reference, and against the
// fused integer kernels on the same layer: both apply the same quantization, so they may differ only
// by f32 rounding.
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { createSimulatedLinear } from '../../runtime/simulated-linear.js';
import { createQuantizedLinear } from '../../runtime/quantized-linear.js';
import { fakeQuantRef, simulatedLinearRef } from '../../kernels/fake_quant_act.ref.js';
import { simulatedDenseWeight } from '../../kernels/fake_quant_act.js';
import { roundToF16 } from '../../kernels/matmul_dense.ref.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import { maxScaledError, runLinear, seededFloats } from './linear-harness.js';
import { syntheticQuantizedLinear, type SyntheticLayer } from './quant-harness.js';

// Relative to the summed terms' magnitudes: f32 sums of ≤ ~300 terms grow like sqrt(n)·2^-24.
const TOL = 1e-5;

/** Σ |z|·|w'| + |bias| per output: the scale of the terms summed into each y. */
function termScale(q: QuantizedLinear, x: Float32Array, tokens: number): Float32Array {
  const z = fakeQuantRef(x, tokens, q);
  const w = simulatedDenseWeight(q);
  const width = q.inFeatures + q.rank;
  const out = q.outFeatures;
  const s = new Float32Array(tokens * out);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < out; o++) {
      let a = q.bias ? Math.abs(q.bias[o]!) : 0;
      for (let k = 0; k < width; k++) a += Math.abs(z[t * width + k]! * w[o * width + k]!);
      s[t * out + o] = a;
    }
  }
  return s;
}

/** A synthetic layer whose L_A/L_B are f16 values, as the quantizer stores them (both paths then see the same factors). */
function layer(s: SyntheticLayer, seed: number): QuantizedLinear {
  const q = syntheticQuantizedLinear(s, seed);
  if (q.la) q.la = roundToF16(q.la);
  if (q.lb) q.lb = roundToF16(q.lb);
  return q;
}

const CASES: Array<SyntheticLayer & { name: string; tokens: number }> = [
  { name: 'A8 rank 0, one token', inF: 64, outF: 48, rank: 0, tokens: 1 },
  { name: 'A8 smooth rank 5 bias', inF: 172, outF: 64, rank: 5, smooth: true, bias: true, tokens: 37 },
  { name: 'A6 smooth rank 9', inF: 64, outF: 172, rank: 9, aBits: 6, smooth: true, tokens: 70 },
  { name: 'A4 rank 3, width not a multiple of 32', inF: 45, outF: 20, rank: 3, aBits: 4, tokens: 5 },
];

describe('simulated quantized linear (fake_quant_act + dense f32)', () => {
  for (const c of CASES) {
    it(`${c.name}: matches the CPU reference and the fused integer kernels`, async () => {
      const gpu = await testGpu();
      const cache = new PipelineCache(gpu.device);
      const q = layer(c, 11 + c.inF + c.rank);
      const x = seededFloats(c.tokens * c.inF, 7 + c.tokens, 2);
      // One all-zero row: s_x = 0, so the integer part vanishes on both paths.
      if (c.tokens > 3) x.fill(0, 2 * c.inF, 3 * c.inF);
      const sim = createSimulatedLinear(gpu, cache, q, { label: c.name, maxTokens: c.tokens });
      const fused = createQuantizedLinear(gpu, cache, q, { label: c.name, maxTokens: c.tokens });
      try {
        const ySim = await runLinear(gpu, sim, x, c.tokens);
        const yFused = await runLinear(gpu, fused, x, c.tokens);
        const ref = Float32Array.from(simulatedLinearRef(x, c.tokens, q));
        const scale = termScale(q, x, c.tokens);
        expect(maxScaledError(ySim, ref, scale)).toBeLessThan(TOL);
        expect(maxScaledError(yFused, ySim, scale)).toBeLessThan(TOL);
      } finally {
        sim.destroy();
        fused.destroy();
      }
    });
  }
});
