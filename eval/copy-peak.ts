/// <reference types="@webgpu/types" />
// The adapter's copy bandwidth, measured with the copy probe of kernels/bench_probes.wgsl (the one
// bench/kernels.ts measures its peaks with): dst[i] = src[i] over vec4<u32>, bytes read + written per
// second, best of a few samples. `aser profile` divides a decode step's bytes per second by it, so a
// run reads as a fraction of the bandwidth bound. GPU timestamps where the device has them, else wall
// clock around submit → done. Portable (no Node APIs).
import type { GpuContext } from '../core/gpu.js';
import { createBuffer } from '../runtime/buffers.js';
import { isCpuAdapter } from '../kernels/matmul_dense.js';
import type { PipelineCache } from '../runtime/pipelines.js';
import { GpuTimer } from '../runtime/profiler.js';

export interface CopyPeak {
  /** Bytes read + written per second, GB/s (1e9), best sample. */
  gbPerSec: number;
  /** Bytes copied per sample (read once, written once). */
  bytes: number;
  samples: number;
  timer: 'timestamp-query' | 'wall';
}

export async function measureCopyPeak(gpu: GpuContext, cache: PipelineCache, o: { bytes?: number; samples?: number } = {}): Promise<CopyPeak> {
  const { device } = gpu;
  const wg = Math.min(256, gpu.limits.maxComputeInvocationsPerWorkgroup);
  const bytes = o.bytes ?? (isCpuAdapter(gpu) ? 64 : 512) * 2 ** 20;
  const samples = o.samples ?? 5;
  const pipeline = await cache.getChecked({ shader: 'bench_probes.wgsl', entryPoint: 'copy', defines: { WG: wg, DOT_CHAINS: 8 }, label: 'bench_probe_copy' });
  const src = createBuffer(device, bytes, 'copy-peak/src');
  const dst = createBuffer(device, bytes, 'copy-peak/dst');
  const timer = GpuTimer.create(gpu, 1);
  try {
    const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [
      { binding: 1, resource: { buffer: src } }, { binding: 2, resource: { buffer: dst } }] });
    const groups = Math.ceil(bytes / 16 / wg);
    const max = gpu.limits.maxComputeWorkgroupsPerDimension;
    const [gx, gy] = groups <= max ? [groups, 1] : [max, Math.ceil(groups / max)];
    let best = Infinity;
    for (let i = 0; i <= samples; i++) {
      const enc = device.createCommandEncoder({ label: 'copy-peak' });
      const writes = timer?.passWrites('copy');
      const pass = enc.beginComputePass(writes ? { timestampWrites: writes } : {});
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(gx, gy);
      pass.end();
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      const wallS = (performance.now() - t0) / 1000;
      const s = timer ? (await timer.read()).seconds : wallS;
      if (i > 0) best = Math.min(best, s > 0 ? s : wallS); // the first is a warm-up
    }
    return { gbPerSec: (2 * bytes) / best / 1e9, bytes, samples, timer: timer ? 'timestamp-query' : 'wall' };
  } finally {
    src.destroy();
    dst.destroy();
    timer?.destroy();
  }
}
