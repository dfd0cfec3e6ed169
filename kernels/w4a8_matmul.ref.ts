// CPU reference for kernels/w4a8_matmul (kernel B) and for a whole quantized linear:
//   acc[t, o] = Σ_k Xq[t, k] · Wq[o, k]                       (int32, exact)
//   y[t, o]   = s_x[t] · s_w[o] · acc[t, o] + Σ_j t[t, j] · L_B[j, o] + bias[o]   (f64 here)
import type { QuantizedLinear } from '../core/quantized.js';
import { roundToF16 } from './matmul_dense.ref.js';
import { actQuantRef } from './w4a8_act_quant.ref.js';
import { inverseSmoothing, type LowRankFormat } from './w4a8_act_quant.js';
import { unpackW4 } from '../core/w4-layout.js';
import { unpackW8 } from '../core/w8-layout.js';

export function w4MatmulAccRef(xq: Int8Array, wq: Int8Array, tokens: number, inFeatures: number, outFeatures: number): Int32Array {
  const acc = new Int32Array(tokens * outFeatures);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outFeatures; o++) {
      let s = 0;
      for (let k = 0; k < inFeatures; k++) s += xq[t * inFeatures + k]! * wq[o * inFeatures + k]!;
      acc[t * outFeatures + o] = s;
    }
  }
  return acc;
}

export interface EpilogueRef {
  y: Float64Array;
  /** |s_x·s_w·acc| + Σ_j |t·L_B| + |bias|: the size of the terms, for float tolerances. */
  scale: Float64Array;
}

export function w4EpilogueRef(
  acc: Int32Array,
  sx: Float32Array,
  sw: Float32Array,
  tokens: number,
  outFeatures: number,
  side: { rank: number; t?: Float64Array; lb?: Float32Array; bias?: Float32Array },
): EpilogueRef {
  const y = new Float64Array(tokens * outFeatures);
  const scale = new Float64Array(tokens * outFeatures);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outFeatures; o++) {
      const main = sx[t]! * sw[o]! * acc[t * outFeatures + o]!;
      let v = main;
      let s = Math.abs(main);
      for (let j = 0; j < side.rank; j++) {
        const term = side.t![t * side.rank + j]! * side.lb![j * outFeatures + o]!;
        v += term;
        s += Math.abs(term);
      }
      if (side.bias) {
        v += side.bias[o]!;
        s += Math.abs(side.bias[o]!);
      }
      y[t * outFeatures + o] = v;
      scale[t * outFeatures + o] = s;
    }
  }
  return { y, scale };
}

export interface QuantizedLinearRef extends EpilogueRef {
  xq: Int8Array;
  sx: Float32Array;
  t: Float64Array;
  acc: Int32Array;
}

/** The whole layer on the CPU, with L_A/L_B rounded as `lowRank` stores them on the GPU. */
export function quantizedLinearRef(q: QuantizedLinear, x: Float32Array, tokens: number, lowRank: LowRankFormat): QuantizedLinearRef {
  const rank = lowRank === 'none' ? 0 : q.rank;
  const la = rank && q.la ? (lowRank === 'f16' ? roundToF16(q.la) : q.la) : undefined;
  const lb = rank && q.lb ? (lowRank === 'f16' ? roundToF16(q.lb) : q.lb) : undefined;
  const a = actQuantRef(x, tokens, q.inFeatures, { aBits: q.aBits, invSmooth: q.smooth ? inverseSmoothing(q.smooth) : undefined, rank, la });
  const wq = (q.wBits === 8 ? unpackW8 : unpackW4)(q.qweight, q.outFeatures, q.inFeatures);
  const acc = w4MatmulAccRef(a.xq, wq, tokens, q.inFeatures, q.outFeatures);
  const e = w4EpilogueRef(acc, a.sx, q.wScale, tokens, q.outFeatures, { rank, t: a.t, lb, bias: q.bias });
  return { ...e, xq: a.xq, sx: a.sx, t: a.t, acc };
}
