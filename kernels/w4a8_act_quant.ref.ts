// CPU reference for kernels/w4a8_act_quant (kernel A): plain loops over
//   x [tokens, in] -> (norm: x ← fl(fl(x · rstd) · w_norm), rstd = 1/sqrt(mean(x²) + eps) or the kernel's)
//                  x̃ = fl(x · fl(1/m)),  s_x = RN(absmax/qmax),  q = clamp(round_half_even(fl(x̃ · RN(qmax/absmax))))
//   t [tokens, rank] = x̃ · L_A (f64 accumulation; L_A as stored on the GPU, i.e. f16-rounded for f16)
// Integer outputs (q, and s_x, which is exact too) must equal the GPU bit for bit.
import { activationQmax, activationWordsPerRow } from './w4a8_act_quant.js';

/** Rows whose absmax is below this are zero rows (s_x = 0, q = 0), as in the kernel. */
export const ZERO_ROW_MAX = 2 ** -100;

/** Round half to even, as WGSL's round(). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface ActQuantRefResult {
  /** [tokens, in] quantized values. */
  xq: Int8Array;
  /** [tokens] */
  sx: Float32Array;
  /** [tokens, rank] side-path input t = x̃ · L_A. */
  t: Float64Array;
  /** [tokens, in] smoothed activations x̃ as the kernel computes them. */
  xs: Float32Array;
  /** [tokens] 1/sqrt(mean(x²) + eps) in f64 (with opts.norm; else 0). */
  rstd: Float64Array;
}

export function actQuantRef(
  x: Float32Array,
  tokens: number,
  inFeatures: number,
  opts: {
    aBits: number; invSmooth?: Float32Array; rank?: number; la?: Float32Array;
    /** The RMSNorm fused into kernel A: its weight, epsilon and (for bit-exact integers) the kernel's rstd per row. */
    norm?: { weight: Float32Array; eps: number; rstd?: Float32Array };
  },
): ActQuantRefResult {
  const qmax = activationQmax(opts.aBits);
  const rank = opts.rank ?? 0;
  const xq = new Int8Array(tokens * inFeatures);
  const sx = new Float32Array(tokens);
  const t = new Float64Array(tokens * rank);
  const xs = new Float32Array(tokens * inFeatures);
  const rstd = new Float64Array(tokens);
  for (let tok = 0; tok < tokens; tok++) {
    const row = tok * inFeatures;
    let amax = 0;
    const norm = opts.norm;
    if (norm) {
      let ss = 0;
      for (let k = 0; k < inFeatures; k++) ss += x[row + k]! * x[row + k]!;
      rstd[tok] = 1 / Math.sqrt(ss / inFeatures + norm.eps);
    }
    const r = norm?.rstd ? norm.rstd[tok]! : Math.fround(rstd[tok]!);
    for (let k = 0; k < inFeatures; k++) {
      const xk = norm ? Math.fround(Math.fround(x[row + k]! * r) * norm.weight[k]!) : x[row + k]!;
      const v = opts.invSmooth ? Math.fround(xk * opts.invSmooth[k]!) : xk;
      xs[row + k] = v;
      amax = Math.max(amax, Math.abs(v));
    }
    let inv = 0;
    if (amax >= ZERO_ROW_MAX) {
      sx[tok] = amax / qmax; // Float32Array store = round to nearest f32; f64 division then f32 rounding is correctly rounded
      inv = Math.fround(qmax / amax);
    }
    for (let k = 0; k < inFeatures; k++) {
      const q = roundHalfEven(Math.fround(xs[row + k]! * inv));
      xq[row + k] = Math.max(-qmax, Math.min(qmax, q));
    }
    for (let j = 0; j < rank; j++) {
      let acc = 0;
      for (let k = 0; k < inFeatures; k++) acc += xs[row + k]! * opts.la![k * rank + j]!;
      t[tok * rank + j] = acc;
    }
  }
  return { xq, sx, t, xs, rstd };
}

/** [tokens, in] int8 -> the kernel's packed words [tokens, 8·ceil(in/32)], 4 lanes per word in k order. */
export function packActivationsRef(xq: Int8Array, tokens: number, inFeatures: number): Uint32Array {
  const words = activationWordsPerRow(inFeatures);
  const out = new Uint32Array(tokens * words);
  for (let tok = 0; tok < tokens; tok++) {
    for (let k = 0; k < inFeatures; k++) {
      const w = tok * words + (k >> 2);
      out[w] = (out[w]! | ((xq[tok * inFeatures + k]! & 0xff) << (8 * (k & 3)))) >>> 0;
    }
  }
  return out;
}
