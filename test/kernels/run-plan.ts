// Test harness for the executor's kernels: run one KernelPlan on real buffers and read results back.
import type { GpuContext } from '../../core/gpu.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { createBuffer, readBuffer, uploadBuffer } from '../../runtime/buffers.js';
import type { KernelPlan } from '../../kernels/kernel_plan.js';

const caches = new WeakMap<GPUDevice, PipelineCache>();

/**
 * `inputs` maps binding names (plan.bindings) to data to upload or to a byte size for an empty buffer;
 * returns the bytes of every binding named in `read`.
 */
export async function runPlan(
  gpu: GpuContext, plan: KernelPlan, inputs: Record<string, ArrayBufferView | number>, read: string[],
): Promise<Record<string, ArrayBuffer>> {
  const { device } = gpu;
  let cache = caches.get(device);
  if (!cache) caches.set(device, (cache = new PipelineCache(device)));
  const pipeline = await cache.getChecked(plan.spec);
  const uniform = device.createBuffer({ size: plan.uniforms.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniform, 0, plan.uniforms);
  const buffers: Record<string, GPUBuffer> = {};
  for (const name of plan.bindings.slice(1).filter(Boolean)) {
    const v = inputs[name];
    if (v === undefined) throw new Error(`runPlan: no input for binding ${name}`);
    buffers[name] = typeof v === 'number' ? createBuffer(device, v, name) : uploadBuffer(device, v, name);
  }
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: plan.bindings.flatMap((name, i) => (i === 0 || name ? [{ binding: i, resource: { buffer: i === 0 ? uniform : buffers[name]! } }] : [])),
  });
  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...plan.workgroups);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const err = await device.popErrorScope();
  if (err) throw new Error(`runPlan ${plan.spec.label}: ${err.message}`);
  const out: Record<string, ArrayBuffer> = {};
  for (const name of read) out[name] = await readBuffer(device, buffers[name]!);
  for (const b of Object.values(buffers)) b.destroy();
  uniform.destroy();
  return out;
}

/** Deterministic uniform numbers in [-1, 1) (mulberry32), so a failing seed can be replayed. */
export function seededValues(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** Largest |a - b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}
