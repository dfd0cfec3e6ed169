// Calibration captures for deep models whose fp weights do not fit on the GPU: one executor per layer
// group, holding only that group's block weights (the other layers' linears are absentLinear, never
// read from the file). Each group starts from the residual stream the previous group left (the
// carried ResidualState), so it never needs the layers below it; the embedding table stays on the host
// for large vocabularies. GPU memory for calibration is then one group's fp weights plus the
// classifier, instead of the whole fp model.
import type { GpuContext } from '../core/gpu.js';
import { Executor } from '../runtime/executor.js';
import type { ExecutorMemory, ExecutorOptions } from '../runtime/executor-options.js';
import { absentLinear } from '../runtime/linear.js';
import type { ModelSource } from '../core/model.js';
import { captureLinearInputs, type LinearInputCapture } from './capture.js';

export interface GroupCapture extends LinearInputCapture {
  /** The largest GPU footprint of a group executor so far (Executor.memory().total)… */
  readonly peakGpuBytes: number;
  /** …and that executor's breakdown. */
  readonly peakMemory: ExecutorMemory | undefined;
  /** Seconds spent building group executors (weights streamed and uploaded). */
  readonly loadSeconds: number;
  destroy(): void;
}

export function groupCapture(gpu: GpuContext, source: ModelSource, options: Omit<ExecutorOptions, 'linearFactory'>): GroupCapture {
  let current: { key: string; executor: Executor } | undefined;
  let peakMemory: ExecutorMemory | undefined;
  let loadSeconds = 0;
  const executorFor = async (layers: number[]): Promise<Executor> => {
    const key = layers.join(',');
    if (current?.key === key) return current.executor;
    current?.executor.destroy();
    current = undefined;
    const wanted = new Set(layers);
    const t0 = performance.now();
    const executor = await Executor.create(gpu, source, {
      ...options,
      linearFactory: (layer, name, w) => (wanted.has(layer) ? undefined : absentLinear(w.inFeatures, w.outFeatures, `model.layers.${layer}.${name}`)),
    });
    loadSeconds += (performance.now() - t0) / 1000;
    const memory = executor.memory();
    if (!peakMemory || memory.total > peakMemory.total) peakMemory = memory;
    current = { key, executor };
    return executor;
  };
  return {
    config: source.config,
    get peakGpuBytes() { return peakMemory?.total ?? 0; },
    get peakMemory() { return peakMemory; },
    get loadSeconds() { return loadSeconds; },
    async captureLinearInputs(tokens, onInput, opts) {
      const layers = opts?.layers ? [...opts.layers].sort((a, b) => a - b) : Array.from({ length: source.config.nLayers }, (_, i) => i);
      // A group that does not start at layer 0 must start from a carried state: it cannot run the layers below.
      if (layers[0]! > 0 && opts?.from?.afterLayer !== layers[0]! - 1) {
        throw new Error(`groupCapture: layers ${layers[0]}… need the residual state after layer ${layers[0]! - 1}`);
      }
      return captureLinearInputs(await executorFor(layers), tokens, onInput, opts);
    },
    destroy() {
      current?.executor.destroy();
      current = undefined;
    },
  };
}
