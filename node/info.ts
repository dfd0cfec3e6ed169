// `aser info` as a library call: the WebGPU adapter (features, limits) and, given a model, its shape.
import { openNodeDevice } from './gpu.js';
import { resolveModel } from '../loaders/registry.js';

/** Opens the default adapter (and resolves `model`, closed again) and describes both. */
export async function systemInfo(model?: string) {
  const gpu = await openNodeDevice();
  const resolved = model ? resolveModel(model) : undefined;
  const out = {
    adapter: gpu.describe(),
    adapterInfo: gpu.adapterInfo,
    features: gpu.features,
    limits: gpu.limits,
    model: resolved ? { id: resolved.source.id, ...resolved.source.config } : undefined,
  };
  resolved?.source.close();
  return out;
}
