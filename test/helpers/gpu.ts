// One device per test file (vitest forks a process per file), opened lazily.
import { openNodeDevice } from '../../loaders/node-gpu.js';
import type { GpuContext } from '../../runtime/device.js';

let ctx: Promise<GpuContext> | undefined;
export function testGpu(): Promise<GpuContext> {
  ctx ??= openNodeDevice();
  return ctx;
}
