/// <reference types="@webgpu/types" />
// The executor's LinearFactory for a quantized model: every block linear that `lookup` finds (by module
// name, as an artifact holds them) runs as a quantized op, the rest stay dense. A lookup rather than a
// map, so an artifact can be read one layer file at a time while the executor builds.
//   fused     the integer kernels the runtime ships (runtime/quantized-linear.ts)
//   simulate  the same quantization as f32 fake-quant on the dense path (runtime/simulated-linear.ts):
//             the reference the fused kernels are checked against end to end
import type { GpuContext } from '../core/gpu.js';
import type { ClassifierFactory, LinearFactory } from './forward-build.js';
import type { PipelineCache } from './pipelines.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { createQuantizedLinear, quantizedGroupConflict } from './quantized-linear.js';
import { createSimulatedLinear } from './simulated-linear.js';

export type QuantizedPath = 'fused' | 'simulate';

export function quantizedLinearFactory(
  gpu: GpuContext,
  pipelines: PipelineCache,
  lookup: (module: string) => QuantizedLinear | undefined,
  opts: { maxTokens: number; path?: QuantizedPath },
): LinearFactory {
  const path = opts.path ?? 'fused';
  const factory: LinearFactory = (layer, name, _w, scratch) => {
    const module = `model.layers.${layer}.${name}`;
    const q = lookup(module);
    if (!q) return undefined;
    return path === 'simulate'
      ? createSimulatedLinear(gpu, pipelines, q, { label: `${module}/sim-w4a${q.aBits}`, maxTokens: opts.maxTokens })
      : createQuantizedLinear(gpu, pipelines, q, { label: `${module}/w4a${q.aBits}`, maxTokens: opts.maxTokens, scratch });
  };
  // Linears of one input run as one group (one kernel A, one kernel B) when the quantizer gave them
  // equal aBits and identical (or no) smoothing; the simulation keeps them one by one.
  if (path === 'fused') {
    factory.group = (layer, names, scratch) => {
      const qs = names.map((n) => lookup(`model.layers.${layer}.${n}`));
      if (qs.some((q) => !q)) return undefined;
      const linears = qs as QuantizedLinear[];
      if (quantizedGroupConflict(linears)) return undefined;
      const label = `model.layers.${layer}.${names.map((n) => n.split('.')[1]).join('|')}/w4a${linears[0]!.aBits}`;
      return createQuantizedLinear(gpu, pipelines, linears, { label, maxTokens: opts.maxTokens, scratch });
    };
  }
  return factory;
}

/** The executor's ClassifierFactory for an artifact's quantized classifier (int8/int4 weights, 8-bit activations). */
export function quantizedClassifierFactory(
  gpu: GpuContext,
  pipelines: PipelineCache,
  q: QuantizedLinear,
  opts: { path?: QuantizedPath },
): ClassifierFactory {
  return (_w, maxTokens, scratch) => opts.path === 'simulate'
    ? createSimulatedLinear(gpu, pipelines, q, { label: `lm_head/sim-w${q.wBits}a${q.aBits}`, maxTokens })
    : createQuantizedLinear(gpu, pipelines, q, { label: `lm_head/w${q.wBits}a${q.aBits}`, maxTokens, scratch });
}
