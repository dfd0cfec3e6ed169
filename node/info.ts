// `aser info` as a library call: the software versions, the WebGPU adapter (features, limits; whether
// it is a CPU emulation) and, given a model, its shape.
import { openNodeDevice } from './gpu.js';
import { softwareVersions } from './versions.js';
import { resolveModel } from '../loaders/registry.js';

/**
 * Adapters that run WebGPU on the CPU: Mesa's llvmpipe/lavapipe, SwiftShader, Microsoft's WARP (Basic
 * Render Driver). Dawn reports architecture "software" for llvmpipe; the names catch the rest.
 */
const SOFTWARE_ADAPTER = /\b(software|llvmpipe|lavapipe|swiftshader|basic render|warp)\b/i;

export function isSoftwareAdapter(info: { vendor: string; architecture: string; device: string; description: string }): boolean {
  return [info.architecture, info.device, info.description].some((s) => SOFTWARE_ADAPTER.test(s));
}

/** Opens the default adapter (and resolves `model`, closed again) and describes both. */
export async function systemInfo(model?: string) {
  const gpu = await openNodeDevice();
  const resolved = model ? resolveModel(model) : undefined;
  const out = {
    versions: softwareVersions(),
    adapter: gpu.describe(),
    softwareAdapter: isSoftwareAdapter(gpu.adapterInfo),
    adapterInfo: gpu.adapterInfo,
    features: gpu.features,
    limits: gpu.limits,
    model: resolved ? { id: resolved.source.id, ...resolved.source.config } : undefined,
  };
  resolved?.source.close();
  return out;
}
