// Node entry to WebGPU: Dawn through the `webgpu` package. Everything else in runtime/ is portable and
// receives the GPU from here (or navigator.gpu in a browser).
import { create, globals } from 'webgpu';
import { openDevice, type OpenDeviceOptions } from '../runtime/device.js';
import { GpuUnavailableError } from '../core/errors.js';
import { type GpuContext } from '../core/gpu.js';

export const INSTALL_HINT =
  'install Mesa\'s Vulkan driver (llvmpipe) from bookworm-backports: ' +
  'bash scripts/install-system.sh  (or: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1)';

let gpuSingleton: GPU | undefined;

export function nodeGpu(): GPU {
  if (!gpuSingleton) {
    Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, … as in a browser
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    gpuSingleton = create([]);
  }
  return gpuSingleton;
}

/** Opens the default adapter; a missing adapter becomes a GpuUnavailableError that says what to install. */
export async function openNodeDevice(options: OpenDeviceOptions = {}): Promise<GpuContext> {
  try {
    return await openDevice(nodeGpu(), options);
  } catch (err) {
    if (err instanceof GpuUnavailableError) throw new GpuUnavailableError(`${err.message}; ${INSTALL_HINT}`);
    throw err;
  }
}
