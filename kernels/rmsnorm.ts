// Plan for kernels/rmsnorm.wgsl: RMSNorm of rows, optionally fused with the preceding residual add.
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

/** Invocations per row; a power of two for the tree reduction. 64 keeps small rows (dim 64) fully busy. */
export const RMSNORM_WG = 64;
/**
 * On CPU adapters (llvmpipe runs a workgroup as coroutines of 8 SIMD lanes and switches all of them at
 * every barrier) one 8-lane batch per row makes the reduction's barriers nearly free.
 */
export const RMSNORM_WG_CPU = 8;

export interface RmsnormShape {
  rows: number;
  dim: number;
  eps: number;
  /** First row of x (and delta) to read; output rows start at 0. */
  rowStart?: number;
  /** x += delta first (x written back), as before every norm after the first. */
  addResidual: boolean;
  /** A CPU adapter (see RMSNORM_WG_CPU). */
  cpu?: boolean;
}

/** rmsnorm.wgsl's bindings by name (delta only with addResidual). */
export type RmsnormBinding = 'params' | 'x' | 'weight' | 'out' | 'delta';

export function planRmsnorm(s: RmsnormShape): KernelPlan<RmsnormBinding> {
  return {
    spec: {
      shader: 'rmsnorm.wgsl',
      defines: { WG: s.cpu ? RMSNORM_WG_CPU : RMSNORM_WG, ADD_RESIDUAL: s.addResidual },
      label: `${s.addResidual ? 'rmsnorm_add' : 'rmsnorm'}${s.cpu ? '_wg8' : ''}`,
    },
    workgroups: grid1d(s.rows),
    uniforms: packUniforms([s.rows, s.dim, s.rowStart ?? 0, s.eps], 'uuuf'),
    bindings: s.addResidual ? ['params', 'x', 'weight', 'out', 'delta'] : ['params', 'x', 'weight', 'out'],
    reads: { x: s.rows * s.dim * 4, weight: s.dim * 4, out: 0, delta: s.addResidual ? s.rows * s.dim * 4 : 0 },
  };
}
