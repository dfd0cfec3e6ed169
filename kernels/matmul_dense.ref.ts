// CPU reference for kernels/matmul_dense: plain loops, f64 accumulation.
//   x [tokens, in], W [out, in] (HF layout), bias [out]  ->  y [tokens, out] = x · Wᵀ + bias
// With weightDtype 'f16' the weight is first rounded to f16 (round to nearest even), as the GPU stores it.
import { f16BitsToF32, f32ToF16Bits } from '../core/dtype.js';

export function roundToF16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16BitsToF32(f32ToF16Bits(values[i]!));
  return out;
}

export function matmulDenseRef(
  x: Float32Array,
  weight: Float32Array,
  tokens: number,
  inFeatures: number,
  outFeatures: number,
  opts: { bias?: Float32Array; weightDtype?: 'f32' | 'f16' } = {},
): Float32Array {
  const w = opts.weightDtype === 'f16' ? roundToF16(weight) : weight;
  const y = new Float32Array(tokens * outFeatures);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outFeatures; o++) {
      let acc = 0;
      for (let k = 0; k < inFeatures; k++) acc += x[t * inFeatures + k]! * w[o * inFeatures + k]!;
      y[t * outFeatures + o] = acc + (opts.bias ? opts.bias[o]! : 0);
    }
  }
  return y;
}

/** Σ_k |x[t,k]·W[o,k]| per output: the scale of f32 rounding error in a dot product (for tolerances). */
export function matmulAbsRef(x: Float32Array, weight: Float32Array, tokens: number, inFeatures: number, outFeatures: number): Float32Array {
  const y = new Float32Array(tokens * outFeatures);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outFeatures; o++) {
      let acc = 0;
      for (let k = 0; k < inFeatures; k++) acc += Math.abs(x[t * inFeatures + k]! * weight[o * inFeatures + k]!);
      y[t * outFeatures + o] = acc;
    }
  }
  return y;
}
