/// <reference types="@webgpu/types" />
// Bind groups from a plan's named bindings: the plan (kernels/*.ts) says which name sits at which
// `@binding` and which ones its variant uses; the caller says which buffer range each name is.
import type { KernelPlan } from '../kernels/kernel_plan.js';

/**
 * The bind group of one dispatch of `plan`. `resources` may name more than the variant binds (those
 * are skipped); a binding the variant uses but `resources` leaves out is an error.
 */
export function planBindGroup<B extends string>(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  plan: Pick<KernelPlan<B>, 'bindings'>,
  resources: Partial<Record<B, GPUBufferBinding>>,
  label: string,
): GPUBindGroup {
  const entries: GPUBindGroupEntry[] = [];
  plan.bindings.forEach((name, binding) => {
    if (name === '') return;
    const resource = resources[name];
    if (!resource) throw new RangeError(`${label}: binding ${binding} ('${name}') has no buffer`);
    entries.push({ binding, resource });
  });
  return device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
}
