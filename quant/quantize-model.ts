// Quantizes every block linear of a model (core/model.ts BLOCK_LINEARS) with one method, from
// calibration statistics, layer by layer: the CLI's `quantize` command is a thin wrapper around this.
// By default the linears reading one input (q|k|v, gate|up) are smoothed together — one m per shared
// input, so the runtime can quantize that input once — and `smoothing: 'per-linear'` gives each its own.
import { readTensorF32 } from '../core/dtype.js';
import { BLOCK_LINEARS, layerTensorName, type ModelSource } from '../core/model.js';
import { DEFAULT_SMOOTHING_SCOPE, isSmoothingScope, SMOOTHING_SCOPES, type QuantizedLinear, type SmoothingScope } from '../core/quantized.js';
import type { CalibrationStats } from './calibrate.js';
import { quantizeLinearGroup, type LinearToQuantize, type QuantDiagnostics, type QuantizeOptions, type QuantMethod } from './methods.js';
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
  /** One smoothing vector per shared input ('shared-input', default) or one per linear. */
  smoothing?: SmoothingScope;
}

/** Module name of a block linear ("model.layers.{i}.{self_attn.q_proj|…}"). */
export function linearModuleName(layer: number, linear: string): string {
  return layerTensorName(layer, linear);
}

export function quantizeModel(source: ModelSource, stats: CalibrationStats, method: QuantMethod, options: QuantizeModelOptions = {}): ModelQuantization {
  const smoothing = options.smoothing ?? DEFAULT_SMOOTHING_SCOPE;
  if (!isSmoothingScope(smoothing)) throw new QuantizeError(`smoothing must be ${SMOOTHING_SCOPES.join(' or ')}, got ${JSON.stringify(smoothing)}`);
  const result: ModelQuantization = { layers: new Map(), diagnostics: new Map() };
  const layers = options.layers ? [...options.layers] : Array.from({ length: source.config.nLayers }, (_, i) => i);
  // q|k|v, o, gate|up, down (BLOCK_LINEARS order kept): the groups smoothed together; one each per linear
  const groups = smoothing === 'shared-input'
    ? [...new Set(BLOCK_LINEARS.map((l) => l.input))].map((input) => BLOCK_LINEARS.filter((l) => l.input === input))
    : BLOCK_LINEARS.map((l) => [l]);
  for (const layer of layers) {
    for (const group of groups) {
      const members: LinearToQuantize[] = group.map(({ name, input }) => {
        const module = linearModuleName(layer, name);
        const ref = source.tensor(`${module}.weight`);
        if (ref.shape.length !== 2) throw new QuantizeError(`${module}.weight has shape [${ref.shape}], expected [out, in]`);
        const [outFeatures, inFeatures] = ref.shape as [number, number];
        const bias = source.has(`${module}.bias`) ? readTensorF32(source.tensor(`${module}.bias`)) : undefined;
        return { name: module, weight: readTensorF32(ref), outFeatures, inFeatures, bias, stats: stats.require(layer, input) };
      });
      quantizeLinearGroup(method, members, options).forEach(({ linear, diag }, i) => {
        const module = members[i]!.name!;
        result.layers.set(module, linear);
        result.diagnostics.set(module, diag);
        options.onLinear?.(module, diag);
      });
    }
  }
  return result;
}
