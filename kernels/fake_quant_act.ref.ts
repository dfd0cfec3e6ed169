// CPU reference for kernels/fake_quant_act and the whole simulated linear (runtime/simulated-linear.ts):
// kernel A's reference quantizer (w4a8_act_quant.ref.ts), then x̂ = fl(s_x · q) and t = x̃ · L_A,
// then y = x̂ · Ŵᵀ + t · L_B + bias in float64 with Ŵ = fl(s_w · q_w).
import type { QuantizedLinear } from '../core/quantized.js';
import { actQuantRef } from './w4a8_act_quant.ref.js';
import { inverseSmoothing } from './w4a8_act_quant.js';
import { simulatedDenseWeight } from './fake_quant_act.js';

/** z [tokens, in + rank] = [fl(s_x·q) | x̃·L_A]: the x̂ part equals the GPU bit for bit. */
export function fakeQuantRef(x: Float32Array, tokens: number, q: QuantizedLinear): Float64Array {
  const K = q.inFeatures;
  const R = q.rank;
  const { xq, sx, t } = actQuantRef(x, tokens, K, { aBits: q.aBits, invSmooth: q.smooth && inverseSmoothing(q.smooth), rank: R, la: q.la });
  const width = K + R;
  const z = new Float64Array(tokens * width);
  for (let tok = 0; tok < tokens; tok++) {
    for (let k = 0; k < K; k++) z[tok * width + k] = Math.fround(sx[tok]! * xq[tok * K + k]!);
    for (let j = 0; j < R; j++) z[tok * width + K + j] = t[tok * R + j]!;
  }
  return z;
}

/** y [tokens, out] of the simulated linear in float64. */
export function simulatedLinearRef(x: Float32Array, tokens: number, q: QuantizedLinear): Float64Array {
  const z = fakeQuantRef(x, tokens, q);
  const w = simulatedDenseWeight(q);
  const width = q.inFeatures + q.rank;
  const out = q.outFeatures;
  const y = new Float64Array(tokens * out);
  for (let tok = 0; tok < tokens; tok++) {
    for (let o = 0; o < out; o++) {
      let acc = q.bias ? q.bias[o]! : 0;
      for (let k = 0; k < width; k++) acc += z[tok * width + k]! * w[o * width + k]!;
      y[tok * out + o] = acc;
    }
  }
  return y;
}
