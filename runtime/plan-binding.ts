/// <reference types="@webgpu/types" />
// Bind groups from a plan's named bindings: the plan (kernels/*.ts) says which name sits at which
// `@binding` and which ones its variant uses; the caller says which buffer (range) each name is.
import { callReadBytes, type KernelPlan } from '../kernels/kernel_plan.js';
import { recordBindGroupReads } from './traffic.js';

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
  plan: Pick<KernelPlan<B>, 'bindings' | 'reads'>,
  resources: PlanResources<B>,
  label: string,
): GPUBindGroup {
  const entries: GPUBindGroupEntry[] = [];
  const bound = new Map<B, number>();
  plan.bindings.forEach((name, binding) => {
    if (name === '') return;
    const resource = resources[name];
    if (!resource) throw new RangeError(`${label}: binding ${binding} ('${name}') has no buffer`);
    // A GPUBufferBinding has a `buffer` member, a GPUBuffer none: a whole buffer binds as { buffer }.
    const range: GPUBufferBinding = 'buffer' in resource ? resource : { buffer: resource };
    bound.set(name, range.size ?? range.buffer.size - (range.offset ?? 0));
    entries.push({ binding, resource: range });
  });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
  // What one dispatch with this bind group reads (runtime/traffic.ts counts it when profiling).
  recordBindGroupReads(group, callReadBytes(plan, (name) => bound.get(name) ?? 0)!, !plan.reads);
  return group;
}

/** planBindGroup for a pipeline and its own plan. */
export function bindPlanned<B extends string>(device: GPUDevice, planned: PlannedPipeline<B>, resources: PlanResources<B>, label: string): GPUBindGroup {
  return planBindGroup(device, planned.pipeline, planned.plan, resources, label);
}
