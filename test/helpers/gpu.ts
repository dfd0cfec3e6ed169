// One device per test file (vitest forks a process per file), opened lazily.
import { openNodeDevice } from '../../node/gpu.js';
import type { GpuContext } from '../../core/gpu.js';

let ctx: Promise<GpuContext> | undefined;
export function testGpu(): Promise<GpuContext> {
  ctx ??= openNodeDevice();
  return ctx;
}

/** Why an f16 test is skipped (vitest lists it as skipped with this note). */
export const NO_SHADER_F16 = "the adapter lacks the 'shader-f16' feature";
