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
import { createBuffer, uniformBuffer, uploadBuffer } from './buffers.js';
import { createDenseLinear } from './dense-linear.js';
import { BindGroupCache, checkActivationBuffers } from './linear-support.js';
import { fakeQuantDispatch, fakeQuantParams, fakeQuantSpec, simulatedDenseWeight } from '../kernels/fake_quant_act.js';
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
  const params = uniformBuffer(device, fakeQuantParams(K, R), 'uuuu', `${label}/params`);
  const invM = q.smooth ? uploadBuffer(device, inverseSmoothing(q.smooth), `${label}/inv_m`) : undefined;
  const la = R > 0 ? uploadBuffer(device, Float32Array.from(q.la!), `${label}/la`) : undefined;
  const pipeline = cache.get(fakeQuantSpec({ aBits: q.aBits, smooth: !!invM, lowRank: !!la }));
  const bindGroups = new BindGroupCache<GPUBindGroup>();
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
      const bindGroup = bindGroups.get(x, z, tokens, () => {
        const entries: GPUBindGroupEntry[] = [
          { binding: 0, resource: { buffer: params } },
          { binding: 1, resource: { buffer: x, size: tokens * K * 4 } },
          { binding: 2, resource: { buffer: z, size: tokens * width * 4 } },
        ];
        if (invM) entries.push({ binding: 3, resource: { buffer: invM } });
        if (la) entries.push({ binding: 4, resource: { buffer: la } });
        return device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: `${label}/fake_quant` });
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...fakeQuantDispatch(tokens, gpu.limits.maxComputeWorkgroupsPerDimension));
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
