// Quantizes every block linear of a model (core/model.ts BLOCK_LINEARS) with one method, from
// calibration statistics, layer by layer: the CLI's `quantize` command is a thin wrapper around this.
import { readTensorF32 } from '../core/dtype.js';
import { BLOCK_LINEARS, layerTensorName, type ModelSource } from '../core/model.js';
import type { QuantizedLinear } from '../core/quantized.js';
import type { CalibrationStats } from './calibrate.js';
import { quantizeLinear, type QuantDiagnostics, type QuantizeOptions, type QuantMethod } from './methods.js';
import { QuantizeError } from './errors.js';

export interface ModelQuantization {
  /** Keyed by module name, e.g. "model.layers.3.mlp.down_proj". */
  layers: Map<string, QuantizedLinear>;
  diagnostics: Map<string, QuantDiagnostics>;
}

export interface QuantizeModelOptions extends QuantizeOptions {
  /** Layers to quantize (default all of config.nLayers). */
  layers?: Iterable<number>;
  /** Called after each linear with its diagnostics. */
  onLinear?: (name: string, diag: QuantDiagnostics) => void;
}

/** Module name of a block linear ("model.layers.{i}.{self_attn.q_proj|…}"). */
export function linearModuleName(layer: number, linear: string): string {
  return layerTensorName(layer, linear);
}

export function quantizeModel(source: ModelSource, stats: CalibrationStats, method: QuantMethod, options: QuantizeModelOptions = {}): ModelQuantization {
  const result: ModelQuantization = { layers: new Map(), diagnostics: new Map() };
  const layers = options.layers ? [...options.layers] : Array.from({ length: source.config.nLayers }, (_, i) => i);
  for (const layer of layers) {
    for (const { name, input } of BLOCK_LINEARS) {
      const module = linearModuleName(layer, name);
      const ref = source.tensor(`${module}.weight`);
      if (ref.shape.length !== 2) throw new QuantizeError(`${module}.weight has shape [${ref.shape}], expected [out, in]`);
      const [outFeatures, inFeatures] = ref.shape as [number, number];
      const bias = source.has(`${module}.bias`) ? readTensorF32(source.tensor(`${module}.bias`)) : undefined;
      const { linear, diag } = quantizeLinear(method, {
        name: module, weight: readTensorF32(ref), outFeatures, inFeatures, bias, stats: stats.require(layer, input),
      }, options);
      result.layers.set(module, linear);
      result.diagnostics.set(module, diag);
      options.onLinear?.(module, diag);
    }
  }
  return result;
}
