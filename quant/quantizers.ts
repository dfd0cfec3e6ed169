// The paper's quantizers: symmetric per-output-channel weight RTN and symmetric per-token activation
// fake quantization, both rounding half to even (as WGSL's round() does) so the integer parts agree
// bit for bit with the GPU kernels. Scales are rounded to f32 before use, because the kernels hold f32.
import { symmetricQmax } from '../core/quantized.js';

/** Largest integer level of a symmetric b-bit quantizer: 2^(b-1) - 1 (127, 31, 7). */
export function qmax(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new RangeError(`quantizer bits must be 2..8, got ${bits}`);
  return symmetricQmax(bits);
}

/** Round half to even (banker's rounding), the rounding of WGSL round() and of IEEE roundTiesToEven. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

export interface WeightQuantization {
  /** [out, in] row-major integers in -qmax..qmax (0 in skipped columns). */
  q: Int8Array;
  /** [out] per-output-channel scale (f32): s_w[o] = max_i |W[o, i]| / qmax over the non-skipped columns. */
  scale: Float32Array;
}

/**
 * Symmetric per-output-channel RTN: q = clamp(round(W / s_w), ±qmax). An all-zero row gets scale 0 and
 * q = 0. Columns in `skipColumns` (kept in floating point elsewhere) neither set the scale nor get a value.
 */
export function quantizeWeightsPerChannel(
  w: ArrayLike<number>,
  outFeatures: number,
  inFeatures: number,
  bits: number,
  skipColumns?: ArrayLike<number>,
  /** When given ([out, in]), receives the error E = W − s_w·q (0 in skipped columns) in the same pass. */
  errorOut?: Float64Array,
): WeightQuantization {
  if (w.length !== outFeatures * inFeatures || (errorOut && errorOut.length !== w.length)) {
    throw new RangeError(`quantizeWeightsPerChannel: ${w.length} values for shape [${outFeatures}, ${inFeatures}]`);
  }
  const level = qmax(bits);
  const skip = new Uint8Array(inFeatures);
  for (let i = 0; i < (skipColumns?.length ?? 0); i++) skip[skipColumns![i]!] = 1;
  const q = new Int8Array(outFeatures * inFeatures);
  const scale = new Float32Array(outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    const row = o * inFeatures;
    let absmax = 0;
    for (let i = 0; i < inFeatures; i++) if (!skip[i]) absmax = Math.max(absmax, Math.abs(w[row + i]!));
    const s = Math.fround(absmax / level);
    scale[o] = s;
    if (s === 0) {
      if (errorOut) for (let i = 0; i < inFeatures; i++) errorOut[row + i] = skip[i] ? 0 : w[row + i]!;
      continue;
    }
    for (let i = 0; i < inFeatures; i++) {
      if (skip[i]) {
        if (errorOut) errorOut[row + i] = 0;
        continue;
      }
      const x = w[row + i]!;
      const r = roundHalfEven(x / s);
      const v = r > level ? level : r < -level ? -level : r;
      q[row + i] = v;
      if (errorOut) errorOut[row + i] = x - s * v;
    }
  }
  return { q, scale };
}

/** Ŵ[o, i] = s_w[o] · q[o, i] in double precision, [out, in]. */
export function dequantizeWeights(quant: WeightQuantization, outFeatures: number, inFeatures: number): Float64Array {
  const out = new Float64Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    const s = quant.scale[o]!;
    const row = o * inFeatures;
    for (let i = 0; i < inFeatures; i++) out[row + i] = s * quant.q[row + i]!;
  }
  return out;
}

export interface ActivationQuantization {
  /** [tokens, features] integers in -qmax..qmax. */
  q: Int8Array;
  /** [tokens] per-token scale (f32): s_x[t] = max_i |x[t, i]| / qmax; 0 for an all-zero row. */
  scale: Float32Array;
}

/** Symmetric per-token quantization of x [tokens, features] in f32 arithmetic, as the kernels do it. */
export function quantizeActivationsPerToken(x: ArrayLike<number>, tokens: number, features: number, bits: number): ActivationQuantization {
  if (x.length !== tokens * features) {
    throw new RangeError(`quantizeActivationsPerToken: ${x.length} values for shape [${tokens}, ${features}]`);
  }
  const level = qmax(bits);
  const q = new Int8Array(tokens * features);
  const scale = new Float32Array(tokens);
  for (let t = 0; t < tokens; t++) {
    const row = t * features;
    let absmax = 0;
    for (let i = 0; i < features; i++) absmax = Math.max(absmax, Math.abs(x[row + i]!));
    const s = Math.fround(Math.fround(absmax) / level);
    scale[t] = s;
    if (s === 0) continue;
    for (let i = 0; i < features; i++) {
      const v = roundHalfEven(Math.fround(x[row + i]! / s));
      q[row + i] = v > level ? level : v < -level ? -level : v;
    }
  }
  return { q, scale };
}

/** Quantize-dequantize per token: x̂[t, i] = s_x[t] · q[t, i], in double precision. */
export function fakeQuantActivations(x: ArrayLike<number>, tokens: number, features: number, bits: number): Float64Array {
  const { q, scale } = quantizeActivationsPerToken(x, tokens, features, bits);
  const out = new Float64Array(tokens * features);
  for (let t = 0; t < tokens; t++) {
    const s = scale[t]!;
    for (let i = 0, row = t * features; i < features; i++) out[row + i] = s * q[row + i]!;
  }
  return out;
}
