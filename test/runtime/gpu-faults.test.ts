// GPU faults as typed errors, on the real device: an allocation beyond the adapter's limit or memory
// (GpuAllocationError / GpuOutOfMemoryError instead of an uncaptured error), and a device destroyed
// under a running executor (GpuDeviceLostError from the call in flight and every later one).
import { describe, expect, it } from 'vitest';
import { openNodeDevice } from '../../node/gpu.js';
import { createBufferChecked } from '../../runtime/device.js';
import { GpuAllocationError, GpuDeviceLostError, GpuOutOfMemoryError } from '../../core/errors.js';
import { Executor } from '../../runtime/executor.js';
import { isCpuAdapter } from '../../kernels/matmul_dense.js';
import { syntheticModel } from '../reference/synthetic-model.js';
import { testGpu } from '../helpers/gpu.js';

const STORAGE = 0x80 | 0x08;

describe('GPU allocation faults', () => {
  it('a buffer over maxBufferSize is a GpuAllocationError naming the buffer, size and limit', async () => {
    const gpu = await testGpu();
    const size = gpu.limits.maxBufferSize + 4;
    await expect(createBufferChecked(gpu.device, { size, usage: STORAGE, label: 'too-big' })).rejects.toThrow(GpuAllocationError);
    await expect(createBufferChecked(gpu.device, { size, usage: STORAGE, label: 'too-big' })).rejects.toThrow(new RegExp(`"too-big" of ${size} bytes refused: .*exceeds the max buffer size`));
    // The device is still fine afterwards.
    (await createBufferChecked(gpu.device, { size: 1024, usage: STORAGE, label: 'small' })).destroy();
  });

  it('a buffer of the full allowed size is out of memory on this adapter (or allocates, where memory allows)', async () => {
    const gpu = await testGpu();
    const size = Math.min(gpu.limits.maxBufferSize, 2 ** 40);
    const result = await createBufferChecked(gpu.device, { size, usage: STORAGE, label: 'everything' }).catch((e: unknown) => e);
    if (isCpuAdapter(gpu)) {
      // llvmpipe caps one allocation below 4 GiB: Vulkan reports VK_ERROR_OUT_OF_DEVICE_MEMORY.
      expect(result).toBeInstanceOf(GpuOutOfMemoryError);
      expect((result as Error).message).toMatch(/"everything" of \d+ bytes: the device is out of memory/);
    } else if (result instanceof Error) {
      expect(result).toBeInstanceOf(GpuOutOfMemoryError);
    } else {
      (result as GPUBuffer).destroy();
    }
    (await createBufferChecked(gpu.device, { size: 1024, usage: STORAGE, label: 'small' })).destroy();
  });
});

describe('GPU device loss', () => {
  it('device.destroy() under an executor turns the call in flight and later calls into GpuDeviceLostError', async () => {
    const gpu = await openNodeDevice();
    const ex = await Executor.create(gpu, syntheticModel(undefined, 2), { dtype: 'f32', maxSeqLen: 32 });
    await ex.forward([1, 2, 3]);
    expect((await ex.logits()).length).toBe(97);
    await ex.forward([4]);
    const inFlight = ex.logits();
    gpu.device.destroy();
    await expect(inFlight).rejects.toThrow(GpuDeviceLostError);
    await expect(ex.forward([5])).rejects.toThrow(/the GPU device was lost \(destroyed/);
    ex.destroy();
  });
});
