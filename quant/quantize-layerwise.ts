// Layer-by-layer quantization for models whose calibration statistics do not fit in memory at once:
// for each group of `layersPerPass` layers, run the calibration windows through the group's layers
// (from the residual stream the group before left, stopping after the group's last layer), accumulate only that group's statistics, quantize its linears,
// hand them to `sink` (which writes them), and free the statistics. Host memory then holds at most one
// group's H matrices (LLaMA-3-8B: 3 × 4096² + 14336² float64 = 2.0 GiB per layer), whatever the depth;
// the price is holding each window's residual stream on the host between groups ([tokens, dim] × 2 f32:
// 32 MiB for 8 × 128 tokens at width 4096), so the whole calibration is still one forward pass.
import type { ModelSource } from '../core/model.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { collectCalibrationStats } from './calibrate.js';
import type { LinearInputCapture, ResidualState } from './capture.js';
import { quantizeModel, type QuantizeModelOptions } from './quantize-model.js';
import type { QuantDiagnostics, QuantMethod } from './methods.js';

export interface LayerwiseOptions extends Omit<QuantizeModelOptions, 'layers'> {
  /** Layers calibrated and quantized per pass (default 1). */
  layersPerPass?: number;
  /** Seed of the statistics' reservoir samples. */
  seed?: number;
  /** Called per window of each pass, and when a group's quantization starts. */
  onCalibrate?: (group: number[], done: number, total: number) => void;
  /** Called after each group with its timings (seconds) and the tokens accumulated per linear input. */
  onGroup?: (report: LayerGroupReport) => void;
}

export interface LayerGroupReport {
  layers: number[];
  calibrateSeconds: number;
  quantizeSeconds: number;
  writeSeconds: number;
  tokens: number;
}

/** Receives one transformer layer's quantized linears (module name → linear) and their diagnostics. */
export type LayerSink = (layer: number, linears: Map<string, QuantizedLinear>, diagnostics: Map<string, QuantDiagnostics>) => void;

export async function quantizeLayerwise(
  capture: LinearInputCapture, source: ModelSource, windows: number[][], method: QuantMethod, sink: LayerSink, options: LayerwiseOptions = {},
): Promise<{ groups: LayerGroupReport[] }> {
  const per = options.layersPerPass ?? 1;
  if (!Number.isInteger(per) || per < 1) throw new RangeError(`layersPerPass must be a positive integer, got ${per}`);
  const n = source.config.nLayers;
  const groups: LayerGroupReport[] = [];
  // Each window's residual stream after the previous group: a pass runs only its own layers, so
  // calibration costs one forward over the windows in all, not one per group (quadratic in depth).
  const carry: Array<ResidualState | undefined> = new Array(windows.length);
  for (let first = 0; first < n; first += per) {
    const layers = Array.from({ length: Math.min(per, n - first) }, (_, i) => first + i);
    const t0 = performance.now();
    const stats = await collectCalibrationStats(capture, windows, {
      layers, seed: options.seed, carry, onWindow: (done, total) => options.onCalibrate?.(layers, done, total),
    });
    const t1 = performance.now();
    const tokens = stats.require(layers[0]!, 'attn_in').tokens;
    let writeMs = 0;
    let quantizeMs = 0;
    for (const layer of layers) {
      const q0 = performance.now();
      const result = quantizeModel(source, stats, method, { ...options, layers: [layer] });
      stats.freeLayer(layer); // before writing: the next group never sees two layers' H at once
      const w0 = performance.now();
      quantizeMs += w0 - q0;
      sink(layer, result.layers, result.diagnostics);
      writeMs += performance.now() - w0;
    }
    const report = { layers, calibrateSeconds: (t1 - t0) / 1000, quantizeSeconds: quantizeMs / 1000, writeSeconds: writeMs / 1000, tokens };
    groups.push(report);
    options.onGroup?.(report);
  }
  return { groups };
}
