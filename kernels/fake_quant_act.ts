// Plan for kernels/fake_quant_act.wgsl: defines, uniforms and grid. Pure functions.
import type { KernelSpec } from '../core/kernel-spec.js';
import { spreadGroups } from './matmul_dense.js';
import { activationQmax } from './w4a8_act_quant.js';
import { unpackW4 } from '../core/w4-layout.js';
import type { QuantizedLinear } from '../core/quantized.js';

export const FAKE_QUANT_WG = 64;

export function fakeQuantSpec(o: { aBits: number; smooth: boolean; lowRank: boolean }): KernelSpec {
  const defines = { WG: FAKE_QUANT_WG, QMAX: activationQmax(o.aBits), SMOOTH: o.smooth, HAS_LR: o.lowRank };
  const flags = [`a${o.aBits}`, o.smooth ? 'smooth' : '', o.lowRank ? 'lr' : ''].filter(Boolean);
  return { shader: 'fake_quant_act.wgsl', entryPoint: 'main', defines, label: `fake_quant_act_${flags.join('_')}` };
}

/** Params uniform, field for field as in the WGSL struct. */
export function fakeQuantParams(inFeatures: number, rank: number): number[] {
  return [inFeatures, rank, inFeatures + rank, 0];
}

/** One workgroup per token, spread over x and y past the per-dimension limit. */
export function fakeQuantDispatch(tokens: number, maxPerDim: number): [number, number, number] {
  const [gx, gy] = spreadGroups(tokens, maxPerDim);
  return [gx, gy, 1];
}

/** [Ŵ | L_Bᵀ] as the simulated linear's dense weight, [out, in + rank] row-major, f32. */
export function simulatedDenseWeight(q: QuantizedLinear): Float32Array {
  const { inFeatures: K, outFeatures: out, rank: R } = q;
  const ints = unpackW4(q.qweight, out, K);
  const width = K + R;
  const w = new Float32Array(out * width);
  for (let o = 0; o < out; o++) {
    const s = q.wScale[o]!;
    for (let k = 0; k < K; k++) w[o * width + k] = s * ints[o * K + k]!;
    for (let j = 0; j < R; j++) w[o * width + K + j] = q.lb![j * out + o]!;
  }
  return w;
}
