// Plan for kernels/vec_add.wgsl.
import type { KernelSpec } from '../core/kernel-spec.js';
import { MAX_WORKGROUPS_PER_DIM, type KernelPlan } from './kernel_plan.js';
import { spreadGroups } from './matmul_dense.js';

export const VEC_ADD_WG = 256;

/** y += z over n elements. No uniforms: the shader reads n from arrayLength(&y). */
export function planVecAdd(n: number, maxWorkgroupsPerDim = MAX_WORKGROUPS_PER_DIM): KernelPlan<'y' | 'z'> {
  return { spec: vecAddSpec(), workgroups: vecAddDispatch(n, maxWorkgroupsPerDim), uniforms: new ArrayBuffer(0), bindings: ['y', 'z'], reads: { y: n * 4, z: n * 4 } };
}

export function vecAddSpec(): KernelSpec {
  return { shader: 'vec_add.wgsl', entryPoint: 'main', defines: { WG: VEC_ADD_WG }, label: 'vec_add' };
}

export function vecAddDispatch(n: number, maxPerDim: number): [number, number, number] {
  const [gx, gz] = spreadGroups(Math.ceil(n / VEC_ADD_WG), maxPerDim);
  return [gx, 1, gz];
}
