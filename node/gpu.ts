// Node entry to WebGPU: Dawn through the `webgpu` package. Everything else in runtime/ is portable and
// receives the GPU from here (or navigator.gpu in a browser).
import { create, globals } from 'webgpu';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { openDevice, type OpenDeviceOptions } from '../runtime/device.js';
import { GpuUnavailableError } from '../core/errors.js';
import { type GpuContext } from '../core/gpu.js';

export const INSTALL_HINT =
  'install Mesa\'s Vulkan driver (llvmpipe) from bookworm-backports: ' +
  'bash scripts/install-system.sh  (or: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1)';

/**
 * Dawn's notices that its limits were clamped below the driver's ("maxDynamic…PerPipelineLayout
 * artificially reduced from 1000000 to 16"): printed from C++ on every adapter request, harmless (the
 * runtime uses no dynamic offsets), and alarming to a user. Only these lines are dropped.
 */
export const DAWN_LIMIT_NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

let showDawnNoticesFlag = false;

/** `--verbose`: leave Dawn's limit notices on stderr. */
export function showDawnNotices(show: boolean): void {
  showDawnNoticesFlag = show;
}

interface StderrCapture { begin(): boolean; end(): string }
let stderrCapture: StderrCapture | null | undefined;

/** The optional addon of node/native (built by `npm run build:native`); null when it is not there. */
function loadStderrCapture(): StderrCapture | null {
  if (stderrCapture !== undefined) return stderrCapture;
  stderrCapture = null;
  for (const rel of ['./native/build/Release/aser_stderr_capture.node', '../../node/native/build/Release/aser_stderr_capture.node']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      const addon = createRequire(import.meta.url)(path) as Partial<StderrCapture>;
      if (typeof addon.begin === 'function' && typeof addon.end === 'function') stderrCapture = addon as StderrCapture;
    } catch {
      // An addon built for another Node: run without it.
    }
    break;
  }
  return stderrCapture;
}

/**
 * Runs `call` (synchronous native work) with file descriptor 2 diverted, then writes back every
 * captured line except Dawn's limit notices, so native errors printed meanwhile still show.
 */
export function withDawnNoticesFiltered<T>(call: () => T): T {
  const capture = showDawnNoticesFlag ? null : loadStderrCapture();
  if (!capture || !capture.begin()) return call();
  let captured = '';
  try {
    return call();
  } finally {
    captured = capture.end();
    const kept = captured.split('\n').filter((line, i, all) => !(i === all.length - 1 && line === '') && !DAWN_LIMIT_NOTICE.test(line));
    if (kept.length) process.stderr.write(kept.join('\n') + '\n');
  }
}

let gpuSingleton: GPU | undefined;

export function nodeGpu(): GPU {
  if (!gpuSingleton) {
    Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, … as in a browser
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    const gpu = create([]);
    // Dawn enumerates the adapters (and prints its notices) synchronously inside requestAdapter.
    const requestAdapter = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = (options?: GPURequestAdapterOptions) => withDawnNoticesFiltered(() => requestAdapter(options));
    gpuSingleton = gpu;
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
