// Plan for kernels/swiglu.wgsl: out = silu(gate) · up over [rows, hidden].
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

/** One element per invocation; 256 is a safe size on every adapter. */
export const SWIGLU_WG = 256;

/** swiglu.wgsl's bindings by name (gate_up with gateUpFused, else gate and up). */
export type SwigluBinding = 'params' | 'gate' | 'up' | 'gate_up' | 'out';

/** `gateUpFused`: gate and up come as one [rows, 2·hidden] buffer (one fused gate|up projection). */
export function planSwiglu(s: { rows: number; hidden: number; gateUpFused?: boolean }): KernelPlan<SwigluBinding> {
  const count = s.rows * s.hidden;
  return {
    spec: { shader: 'swiglu.wgsl', defines: { WG: SWIGLU_WG, GATE_UP_FUSED: !!s.gateUpFused }, label: s.gateUpFused ? 'swiglu_fused' : 'swiglu' },
    workgroups: grid1d(Math.ceil(count / SWIGLU_WG)),
    uniforms: packUniforms([count, s.hidden], 'uu'),
    // With gateUpFused binding 2 is unused.
    bindings: s.gateUpFused ? ['params', 'gate_up', '', 'out'] : ['params', 'gate', 'up', 'out'],
    reads: { gate: count * 4, up: count * 4, gate_up: 2 * count * 4, out: 0 },
  };
}
