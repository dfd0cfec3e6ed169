/// <reference types="@webgpu/types" />
// Times GPU work for benchmarks (runtime/profiler.ts sums passes inside a forward instead): one compute pass per sample, bracketed by timestamp queries when the device has
// them (GpuContext.features.timestampQuery), wall clock around submit → onSubmittedWorkDone otherwise.
import type { GpuContext } from '../core/gpu.js';

export type TimerKind = 'timestamp-query' | 'wall-clock';

export interface Timing {
  /** Median over samples, milliseconds per `reps` encodes divided by reps. */
  medianMs: number;
  minMs: number;
  samples: number;
  timer: TimerKind;
}

export class BenchTimer {
  readonly kind: TimerKind;
  private readonly querySet?: GPUQuerySet;
  private readonly resolve?: GPUBuffer;
  private readonly readback?: GPUBuffer;

  constructor(private readonly gpu: GpuContext) {
    this.kind = gpu.features.timestampQuery ? 'timestamp-query' : 'wall-clock';
    if (this.kind === 'timestamp-query') {
      const d = gpu.device;
      this.querySet = d.createQuerySet({ type: 'timestamp', count: 2, label: 'bench/timestamps' });
      this.resolve = d.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'bench/resolve' });
      this.readback = d.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'bench/readback' });
    }
  }

  /** One sample: `reps` calls of encode inside one compute pass; returns ms per rep. */
  async sample(encode: (pass: GPUComputePassEncoder) => void, reps = 1): Promise<number> {
    const d = this.gpu.device;
    const enc = d.createCommandEncoder({ label: 'bench' });
    const pass = this.querySet
      ? enc.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } })
      : enc.beginComputePass();
    for (let i = 0; i < reps; i++) encode(pass);
    pass.end();
    if (this.querySet) {
      enc.resolveQuerySet(this.querySet, 0, 2, this.resolve!, 0);
      enc.copyBufferToBuffer(this.resolve!, 0, this.readback!, 0, 16);
    }
    const t0 = performance.now();
    d.queue.submit([enc.finish()]);
    if (!this.querySet) {
      await d.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / reps;
    }
    await this.readback!.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(this.readback!.getMappedRange().slice(0));
    this.readback!.unmap();
    const ns = Number(ts[1]! - ts[0]!);
    // Some adapters report 0 for passes they cannot time; fall back to this sample's wall time.
    return ns > 0 ? ns / 1e6 / reps : (performance.now() - t0) / reps;
  }

  /** Warm-up samples (not recorded), then `samples` timed samples. */
  async measure(encode: (pass: GPUComputePassEncoder) => void, opts: { samples: number; warmup?: number; reps?: number }): Promise<Timing> {
    const reps = opts.reps ?? 1;
    for (let i = 0; i < (opts.warmup ?? 1); i++) await this.sample(encode, reps);
    const xs: number[] = [];
    for (let i = 0; i < opts.samples; i++) xs.push(await this.sample(encode, reps));
    xs.sort((a, b) => a - b);
    return { medianMs: xs[Math.floor(xs.length / 2)]!, minMs: xs[0]!, samples: xs.length, timer: this.kind };
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolve?.destroy();
    this.readback?.destroy();
  }
}
