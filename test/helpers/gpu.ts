// One device per test file (vitest forks a process per file), opened lazily.
import { openNodeDevice } from '../../node/gpu.js';
import type { GpuContext } from '../../core/gpu.js';

let ctx: Promise<GpuContext> | undefined;
export function testGpu(): Promise<GpuContext> {
  ctx ??= openNodeDevice();
  return ctx;
}
