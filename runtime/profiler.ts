/// <reference types="@webgpu/types" />
// GPU time of compute passes through timestamp queries (when the device granted 'timestamp-query'):
// each pass that asks gets a begin/end pair; read() resolves the pairs used since the last read and
// returns their summed duration. Adapters may quantize timestamps; sums over many passes stay useful.
import type { GpuContext } from '../core/gpu.js';
import { READBACK } from './buffers.js';

// QUERY_RESOLVE | COPY_SRC as a literal (globals may be absent at import time).
const RESOLVE_USAGE = 0x0200 | 0x0004;

export class GpuTimer {
  private used = 0;
  private dropped = 0;
  private labels: string[] = [];

  private constructor(
    private readonly device: GPUDevice,
    private readonly querySet: GPUQuerySet,
    private readonly resolve: GPUBuffer,
    private readonly staging: GPUBuffer,
    readonly maxPasses: number,
  ) {}

  /** A timer for up to `maxPasses` passes between reads, or undefined without timestamp-query. */
  static create(gpu: GpuContext, maxPasses = 1024): GpuTimer | undefined {
    if (!gpu.features.timestampQuery) return undefined;
    const { device } = gpu;
    const count = maxPasses * 2;
    const querySet = device.createQuerySet({ type: 'timestamp', count, label: 'gpu-timer' });
    const resolve = device.createBuffer({ size: count * 8, usage: RESOLVE_USAGE, label: 'gpu-timer/resolve' });
    const staging = device.createBuffer({ size: count * 8, usage: READBACK, label: 'gpu-timer/read' });
    return new GpuTimer(device, querySet, resolve, staging, maxPasses);
  }

  /** Timestamp writes for the next pass (undefined once the set is full; read() frees it). */
  passWrites(label = 'pass'): GPUComputePassTimestampWrites | undefined {
    if (this.used >= this.maxPasses) {
      this.dropped++;
      return undefined;
    }
    const i = this.used++;
    this.labels[i] = label;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Summed GPU seconds of the passes timed since the last read, in total and per pass label;
   * `dropped` passes found no free slot.
   */
  async read(): Promise<{ seconds: number; passes: number; dropped: number; byLabel: Map<string, number> }> {
    const n = this.used;
    const dropped = this.dropped;
    this.used = 0;
    this.dropped = 0;
    const byLabel = new Map<string, number>();
    if (n === 0) return { seconds: 0, passes: 0, dropped, byLabel };
    const encoder = this.device.createCommandEncoder({ label: 'gpu-timer/resolve' });
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, this.staging, 0, 2 * n * 8);
    this.device.queue.submit([encoder.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ, 0, 2 * n * 8);
    const t = new BigUint64Array(this.staging.getMappedRange(0, 2 * n * 8).slice(0));
    this.staging.unmap();
    let ns = 0n;
    for (let i = 0; i < n; i++) {
      const d = t[2 * i + 1]! > t[2 * i]! ? t[2 * i + 1]! - t[2 * i]! : 0n;
      ns += d;
      byLabel.set(this.labels[i]!, (byLabel.get(this.labels[i]!) ?? 0) + Number(d) / 1e9);
    }
    return { seconds: Number(ns) / 1e9, passes: n, dropped, byLabel };
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
    this.staging.destroy();
  }
}
