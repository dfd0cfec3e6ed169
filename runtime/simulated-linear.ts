/// <reference types="@webgpu/types" />
// A quantized linear simulated in f32 on the dense path ("fake quant"): the reference the fused integer
// kernels are checked against end to end (`aser ppl --artifact DIR --simulate`). Same quantization,
// different arithmetic:
//   kernels/fake_quant_act: z = [s_x·q(x̃) | x̃·L_A] per token (kernel A's quantizer, bit for bit)
//   kernels/matmul_dense:   y = z · [Ŵ | L_Bᵀ]ᵀ + bias, Ŵ = s_w·q_w dequantized to f32
// so y = Σ_k (s_x q_k)(s_w q_wk) + (x̃·L_A)·L_B in f32 where the fused path computes s_x·s_w·Σ q·q_w in
// int32. Costs a dense f32 weight of [out, in + rank] and a z scratch of maxTokens × (in + rank).
import type { GpuContext } from '../core/gpu.js';
import type { LinearOp } from './linear.js';
import type { PipelineCache } from './pipelines.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { createBuffer, uniformBufferFrom, uploadBuffer } from './buffers.js';
import { createDenseLinear } from './dense-linear.js';
import { BindGroupCache, checkActivationBuffers } from './linear-support.js';
import { planBindGroup } from './plan-binding.js';
import { planFakeQuant, simulatedDenseWeight, type FakeQuantOptions } from '../kernels/fake_quant_act.js';
import { inverseSmoothing } from '../kernels/w4a8_act_quant.js';
import { LinearConfigError } from './errors.js';

export function createSimulatedLinear(gpu: GpuContext, cache: PipelineCache, q: QuantizedLinear, opts: { label: string; maxTokens: number }): LinearOp {
  const { inFeatures: K, outFeatures: out, rank: R } = q;
  const { label, maxTokens } = opts;
  if (R > 0 && (!q.la || !q.lb || q.la.length !== K * R || q.lb.length !== R * out)) {
    throw new LinearConfigError(label, `rank ${R} needs L_A [${K}, ${R}] and L_B [${R}, ${out}]`);
  }
  if (q.smooth && q.smooth.length !== K) throw new LinearConfigError(label, `smoothing has ${q.smooth.length} values, expected ${K}`);
  const device = gpu.device;
  const width = K + R;
  const zBytes = maxTokens * width * 4;
  if (zBytes > gpu.limits.maxStorageBufferBindingSize) {
    throw new LinearConfigError(label, `${maxTokens} tokens × ${width} f32 exceed one storage binding; simulate with fewer tokens per batch`);
  }
  const dense = createDenseLinear(gpu, cache, { inFeatures: width, outFeatures: out, weight: simulatedDenseWeight(q), bias: q.bias }, { label: `${label}/dense`, dtype: 'f32', maxTokens });
  const z = createBuffer(device, zBytes, `${label}/z`);
  // The spec and uniforms do not depend on the token count: plan them once, for the largest call.
  const planOpts: FakeQuantOptions = { aBits: q.aBits, smooth: !!q.smooth, maxWorkgroupsPerDim: gpu.limits.maxComputeWorkgroupsPerDimension };
  const plan = (tokens: number) => planFakeQuant({ tokens, inFeatures: K, rank: R }, planOpts);
  const cold = plan(maxTokens);
  const params = uniformBufferFrom(device, cold.uniforms, `${label}/params`);
  const invM = q.smooth ? uploadBuffer(device, inverseSmoothing(q.smooth), `${label}/inv_m`) : undefined;
  const la = R > 0 ? uploadBuffer(device, Float32Array.from(q.la!), `${label}/la`) : undefined;
  const pipeline = cache.get(cold.spec);
  const bindGroups = new BindGroupCache<{ bindGroup: GPUBindGroup; workgroups: [number, number, number] }>();
  let byteSize = dense.byteSize + z.size + params.size + (invM?.size ?? 0) + (la?.size ?? 0);

  return {
    inFeatures: K,
    outFeatures: out,
    label,
    get byteSize() {
      return byteSize;
    },
    encode(pass, x, y, tokens) {
      checkActivationBuffers(label, x, y, tokens, K, out, maxTokens);
      const { bindGroup, workgroups } = bindGroups.get(x, z, tokens, () => {
        const p = plan(tokens);
        const bindGroup = planBindGroup(device, pipeline, p, {
          params: { buffer: params },
          x: { buffer: x, size: p.buffers.x },
          z: { buffer: z, size: p.buffers.z },
          inv_m: invM && { buffer: invM },
          la: la && { buffer: la },
        }, `${label}/fake_quant`);
        return { bindGroup, workgroups: p.workgroups };
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...workgroups);
      dense.encode(pass, z, y, tokens);
    },
    destroy() {
      dense.destroy();
      for (const b of [z, params, invM, la]) b?.destroy();
      bindGroups.clear();
      byteSize = 0;
    },
  };
}
