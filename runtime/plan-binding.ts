/// <reference types="@webgpu/types" />
// Bind groups from a plan's named bindings: the plan (kernels/*.ts) says which name sits at which
// `@binding` and which ones its variant uses; the caller says which buffer (range) each name is.
import type { KernelPlan } from '../kernels/kernel_plan.js';

/** A buffer bound whole, or a range of one. */
export type PlanResource = GPUBuffer | GPUBufferBinding;

/** What each binding name of a plan is bound to (names its variant leaves unused may be absent). */
export type PlanResources<B extends string> = Partial<Record<B, PlanResource>>;

/**
 * A pipeline and the plan it was compiled from. Binding through the pair keeps the plan's bindings
 * those of the pipeline's variant (same defines), which a plan re-derived at the call site might not be.
 */
export interface PlannedPipeline<B extends string = string> {
  pipeline: GPUComputePipeline;
  plan: KernelPlan<B>;
}

/**
 * The bind group of one dispatch of `plan`. `resources` may name more than the variant binds (those
 * are skipped); a binding the variant uses but `resources` leaves out is an error.
 */
export function planBindGroup<B extends string>(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  plan: Pick<KernelPlan<B>, 'bindings'>,
  resources: PlanResources<B>,
  label: string,
): GPUBindGroup {
  const entries: GPUBindGroupEntry[] = [];
  plan.bindings.forEach((name, binding) => {
    if (name === '') return;
    const resource = resources[name];
    if (!resource) throw new RangeError(`${label}: binding ${binding} ('${name}') has no buffer`);
    // A GPUBufferBinding has a `buffer` member, a GPUBuffer none: a whole buffer binds as { buffer }.
    entries.push({ binding, resource: 'buffer' in resource ? resource : { buffer: resource } });
  });
  return device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
}

/** planBindGroup for a pipeline and its own plan. */
export function bindPlanned<B extends string>(device: GPUDevice, planned: PlannedPipeline<B>, resources: PlanResources<B>, label: string): GPUBindGroup {
  return planBindGroup(device, planned.pipeline, planned.plan, resources, label);
}
