// Plan for kernels/fake_quant_act.wgsl: shape + options -> spec (defines), named bindings, grid,
// uniforms and the bytes of what it binds. Pure functions; the runtime (runtime/simulated-linear.ts)
// owns the buffers.
import type { KernelSpec } from '../core/kernel-spec.js';
import { bindingsInOrder, MAX_WORKGROUPS_PER_DIM, packUniforms, type BindingBytes, type SizedKernelPlan } from './kernel_plan.js';
import { spreadGroups } from './matmul_dense.js';
import { activationQmax } from './w4a8_act_quant.js';
import { unpackW4 } from '../core/w4-layout.js';
import { unpackW8 } from '../core/w8-layout.js';
import type { QuantizedLinear } from '../core/quantized.js';

export const FAKE_QUANT_WG = 64;

/**
 * The shader's resources by name, in `@binding` order: index i is `@binding(i)` in fake_quant_act.wgsl
 * (inv_m only with smoothing, la only with a side path). The one place the TypeScript side writes these numbers.
 */
export const FAKE_QUANT_BINDINGS = ['params', 'x', 'z', 'inv_m', 'la'] as const;
export type FakeQuantBinding = (typeof FAKE_QUANT_BINDINGS)[number];

export interface FakeQuantShape {
  tokens: number;
  inFeatures: number;
  /** Side-path rank: z has inFeatures + rank columns; rank > 0 binds L_A. */
  rank: number;
}

export interface FakeQuantOptions {
  aBits: number;
  /** Divide x by the smoothing factors first (binds inv_m). */
  smooth: boolean;
  /** The adapter's maxComputeWorkgroupsPerDimension (default: the WebGPU minimum); shapes the grid only. */
  maxWorkgroupsPerDim?: number;
}

export type FakeQuantBuffers = BindingBytes<FakeQuantBinding>;
export type FakeQuantPlan = SizedKernelPlan<FakeQuantBinding>;

/** z = [s_x·q(x̃) | x̃·L_A] for `tokens` tokens, one workgroup per token. */
export function planFakeQuant(s: FakeQuantShape, o: FakeQuantOptions): FakeQuantPlan {
  const lowRank = s.rank > 0;
  return {
    spec: fakeQuantSpec({ aBits: o.aBits, smooth: o.smooth, lowRank }),
    workgroups: fakeQuantDispatch(s.tokens, o.maxWorkgroupsPerDim ?? MAX_WORKGROUPS_PER_DIM),
    uniforms: fakeQuantUniforms(s),
    bindings: bindingsInOrder(FAKE_QUANT_BINDINGS, (b) => (b === 'inv_m' ? o.smooth : b === 'la' ? lowRank : true)),
    buffers: {
      x: s.tokens * s.inFeatures * 4,
      z: s.tokens * (s.inFeatures + s.rank) * 4,
      inv_m: o.smooth ? s.inFeatures * 4 : 0,
      la: lowRank ? s.inFeatures * s.rank * 4 : 0,
    },
    reads: { x: s.tokens * s.inFeatures * 4, z: 0, inv_m: o.smooth ? s.inFeatures * 4 : 0, la: lowRank ? s.inFeatures * s.rank * 4 : 0 },
  };
}

export function fakeQuantSpec(o: { aBits: number; smooth: boolean; lowRank: boolean }): KernelSpec {
  const defines = { WG: FAKE_QUANT_WG, QMAX: activationQmax(o.aBits), SMOOTH: o.smooth, HAS_LR: o.lowRank };
  const flags = [`a${o.aBits}`, o.smooth ? 'smooth' : '', o.lowRank ? 'lr' : ''].filter(Boolean);
  return { shader: 'fake_quant_act.wgsl', entryPoint: 'main', defines, label: `fake_quant_act_${flags.join('_')}` };
}

/** Params uniform, field for field as in the WGSL struct: in_features, rank, z_stride (= in + rank), _pad. */
export function fakeQuantUniforms(s: Pick<FakeQuantShape, 'inFeatures' | 'rank'>): ArrayBuffer {
  return packUniforms([s.inFeatures, s.rank, s.inFeatures + s.rank, 0], 'uuuu');
}

/** One workgroup per token, spread over x and y past the per-dimension limit. */
function fakeQuantDispatch(tokens: number, maxPerDim: number): [number, number, number] {
  const [gx, gy] = spreadGroups(tokens, maxPerDim);
  return [gx, gy, 1];
}

/** [Ŵ | L_Bᵀ] as the simulated linear's dense weight, [out, in + rank] row-major, f32. */
export function simulatedDenseWeight(q: QuantizedLinear): Float32Array {
  const { inFeatures: K, outFeatures: out, rank: R } = q;
  const ints = q.wBits === 8 ? unpackW8(q.qweight, out, K) : unpackW4(q.qweight, out, K);
  const width = K + R;
  const w = new Float32Array(out * width);
  for (let o = 0; o < out; o++) {
    const s = q.wScale[o]!;
    for (let k = 0; k < K; k++) w[o * width + k] = s * ints[o * K + k]!;
    for (let j = 0; j < R; j++) w[o * width + K + j] = q.lb![j * out + o]!;
  }
  return w;
}
