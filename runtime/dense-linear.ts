/// <reference types="@webgpu/types" />
// Dense f32/f16 LinearOp over kernels/matmul_dense: GEMV for decode, tiled GEMM for prefill.
// Weights bigger than one storage binding are split along `out` into slices (one buffer, bind group
// and dispatch each); activations bigger than one binding are split along tokens. Both are invisible
// to the caller. Each dispatch comes from the kernel's plan (planDenseMatmul: spec, grid, uniforms,
// named bindings).
import type { GpuContext } from '../core/gpu.js';
import type { LinearOp } from './linear.js';
import type { PipelineCache } from './pipelines.js';
import { uniformBufferFrom, STORAGE, uploadBuffer } from './buffers.js';
import { f32ToF16Array } from '../core/dtype.js';
import type { WeightRows } from './weight-rows.js';
import type { WeightUploader } from './weight-upload.js';
import { BindGroupCache, checkActivationBuffers, tokenChunks } from './linear-support.js';
import { planBindGroup } from './plan-binding.js';
import {
  denseElementBytes, denseEntry, denseKernelSpec, denseMatmulUniforms, denseRowStride, denseTiling, denseWeightFormat,
  planDenseMatmul, type DenseMatmulOptions, type DenseTiling,
} from '../kernels/matmul_dense.js';
import { LinearConfigError } from './errors.js';

export interface DenseWeights {
  inFeatures: number;
  outFeatures: number;
  /** [out, in] row-major (Hugging Face layout). */
  weight: Float32Array;
  /** The same weight as a row source in its stored dtype (the executor streams from this; `weight` is then read only on access). */
  rows?: WeightRows;
  /** [out] */
  bias?: Float32Array;
}

export interface DenseLinearOptions {
  label: string;
  /** Storage type of the weight on the GPU; activations and accumulation are always f32. */
  dtype: 'f32' | 'f16';
  maxTokens: number;
  /** Largest weight slice in bytes (default: the device's maxStorageBufferBindingSize); tests force splits with it. */
  maxSliceBytes?: number;
  /** Largest activation binding in bytes (default: maxStorageBufferBindingSize); tests force token chunks with it. */
  maxBindingBytes?: number;
  /** Overrides of the adapter-derived tiling (benchmarks and tests). */
  tiling?: Partial<DenseTiling>;
}

interface Slice {
  rowStart: number;
  rows: number;
  weight: GPUBuffer;
  params: GPUBuffer;
}

interface Dispatch {
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

export function createDenseLinear(gpu: GpuContext, cache: PipelineCache, w: DenseWeights, opts: DenseLinearOptions): LinearOp {
  if (w.weight.length !== w.inFeatures * w.outFeatures) {
    throw new LinearConfigError(opts.label, `weight has ${w.weight.length} values, expected ${w.outFeatures}×${w.inFeatures}`);
  }
  const layout = sliceLayout(gpu, w.inFeatures, w.outFeatures, w.bias, opts);
  const slices = layout.ranges.map(({ rowStart, rows, name }) => ({
    rowStart,
    rows,
    weight: uploadWeightSlice(gpu.device, w.weight, w.inFeatures, rowStart, rows, layout.rowStride, opts.dtype, name),
    params: uniformBufferFrom(gpu.device, denseMatmulUniforms({ inFeatures: w.inFeatures, outFeatures: w.outFeatures, rowStart, rows }), `${name}/params`),
  }));
  return denseOp(gpu, cache, w.inFeatures, w.outFeatures, w.bias, opts, layout.tiling, layout.format, slices);
}

/**
 * The same op with its weight streamed from a row source (bf16 checkpoints: raw rows uploaded in
 * chunks and widened on the GPU by the uploader); no f32 copy of the weight exists on the host.
 */
export async function createDenseLinearStreamed(
  gpu: GpuContext, cache: PipelineCache, w: { rows: WeightRows; bias?: Float32Array }, opts: DenseLinearOptions, uploader: WeightUploader,
): Promise<LinearOp> {
  const inFeatures = w.rows.cols;
  const outFeatures = w.rows.rows;
  const layout = sliceLayout(gpu, inFeatures, outFeatures, w.bias, opts);
  const slices: Slice[] = [];
  try {
    for (const { rowStart, rows, name } of layout.ranges) {
      const weight = await uploader.upload(w.rows, rowStart, rows, layout.rowStride, denseElementBytes(layout.format) === 2 ? 'f16' : 'f32', name);
      slices.push({ rowStart, rows, weight, params: uniformBufferFrom(gpu.device, denseMatmulUniforms({ inFeatures, outFeatures, rowStart, rows }), `${name}/params`) });
    }
  } catch (err) {
    for (const sl of slices) (sl.weight.destroy(), sl.params.destroy());
    throw err;
  }
  return denseOp(gpu, cache, inFeatures, outFeatures, w.bias, opts, layout.tiling, layout.format, slices);
}

/** Validates the shape and options and splits `out` into slices that each fit one binding. */
function sliceLayout(gpu: GpuContext, inFeatures: number, outFeatures: number, bias: Float32Array | undefined, opts: DenseLinearOptions) {
  const label = opts.label;
  if (!Number.isInteger(inFeatures) || !Number.isInteger(outFeatures) || inFeatures < 1 || outFeatures < 1) {
    throw new LinearConfigError(label, `shape [${outFeatures}, ${inFeatures}] must be positive integers`);
  }
  if (bias && bias.length !== outFeatures) throw new LinearConfigError(label, `bias has ${bias.length} values, expected ${outFeatures}`);
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new LinearConfigError(label, `maxTokens = ${opts.maxTokens} must be a positive integer`);
  if (opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new LinearConfigError(label, `dtype ${String(opts.dtype)} is not f32 or f16`);
  const tiling: DenseTiling = { ...denseTiling(gpu), ...opts.tiling };
  const format = denseWeightFormat(gpu, opts.dtype);
  const elemBytes = denseElementBytes(format);
  const rowStride = denseRowStride(inFeatures);
  const rowBytes = rowStride * elemBytes;
  const maxSlice = Math.min(opts.maxSliceBytes ?? gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const rowsPerSlice = Math.floor(maxSlice / rowBytes);
  if (rowsPerSlice < 1) throw new LinearConfigError(label, `one weight row (${rowBytes} bytes) exceeds the ${maxSlice}-byte binding limit`);
  if (Math.ceil(Math.min(rowsPerSlice, outFeatures) / tiling.tn) > gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new LinearConfigError(label, `${outFeatures} rows need more GEMM workgroups than the adapter allows in one dimension`);
  }
  const ranges: Array<{ rowStart: number; rows: number; name: string }> = [];
  for (let rowStart = 0; rowStart < outFeatures; rowStart += rowsPerSlice) {
    const rows = Math.min(rowsPerSlice, outFeatures - rowStart);
    const name = ranges.length || rowStart + rows < outFeatures ? `${label}/w[${rowStart}:${rowStart + rows}]` : `${label}/w`;
    ranges.push({ rowStart, rows, name });
  }
  return { tiling, format, rowStride, ranges };
}

function denseOp(
  gpu: GpuContext, cache: PipelineCache, inFeatures: number, outFeatures: number, biasValues: Float32Array | undefined,
  opts: DenseLinearOptions, tiling: DenseTiling, format: ReturnType<typeof denseWeightFormat>, slices: Slice[],
): LinearOp {
  const label = opts.label;
  const device = gpu.device;
  const bias = biasValues ? uploadBuffer(device, biasValues, `${label}/bias`) : undefined;
  const planOpts: DenseMatmulOptions = { format, hasBias: !!bias, tiling, maxWorkgroupsPerDim: gpu.limits.maxComputeWorkgroupsPerDimension };
  // Both entry points compiled up front; a call's token count picks one for all its chunks and slices.
  const pipelines = { gemv: cache.get(denseKernelSpec('gemv', planOpts)), gemm: cache.get(denseKernelSpec('gemm', planOpts)) };
  const bindGroups = new BindGroupCache<{ pipeline: GPUComputePipeline; dispatches: Dispatch[] }>();
  const maxBinding = Math.min(opts.maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize);

  const build = (x: GPUBuffer, y: GPUBuffer, tokens: number) => {
    const entry = denseEntry(tokens, tiling);
    const pipeline = pipelines[entry];
    const dispatches: Dispatch[] = [];
    for (const chunk of tokenChunks(tokens, Math.max(inFeatures, outFeatures) * 4, maxBinding)) {
      for (const s of slices) {
        const plan = planDenseMatmul({ tokens: chunk.count, inFeatures, outFeatures, rowStart: s.rowStart, rows: s.rows, entry }, planOpts);
        dispatches.push({
          bindGroup: planBindGroup(device, pipeline, plan, {
            params: { buffer: s.params },
            x: { buffer: x, offset: chunk.t0 * inFeatures * 4, size: plan.buffers.x },
            weight: { buffer: s.weight },
            y: { buffer: y, offset: chunk.t0 * outFeatures * 4, size: plan.buffers.y },
            bias: bias && { buffer: bias },
          }, `${label}/${entry}`),
          workgroups: plan.workgroups,
        });
      }
    }
    return { pipeline, dispatches };
  };

  let byteSize = slices.reduce((n, s) => n + s.weight.size + s.params.size, 0) + (bias?.size ?? 0);
  return {
    inFeatures,
    outFeatures,
    label,
    get byteSize() {
      return byteSize;
    },
    encode(pass, x, y, tokens) {
      checkActivationBuffers(label, x, y, tokens, inFeatures, outFeatures, opts.maxTokens);
      const { pipeline, dispatches } = bindGroups.get(x, y, tokens, () => build(x, y, tokens));
      pass.setPipeline(pipeline);
      for (const d of dispatches) {
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(...d.workgroups);
      }
    },
    destroy() {
      for (const s of slices) {
        s.weight.destroy();
        s.params.destroy();
      }
      bias?.destroy();
      bindGroups.clear();
      byteSize = 0;
    },
  };
}

/** Rows [rowStart, rowStart + rows) of W, each padded to rowStride elements, written straight into a mapped buffer. */
function uploadWeightSlice(
  device: GPUDevice,
  weight: Float32Array,
  inFeatures: number,
  rowStart: number,
  rows: number,
  rowStride: number,
  dtype: 'f32' | 'f16',
  label: string,
): GPUBuffer {
  const elemBytes = dtype === 'f32' ? 4 : 2;
  const buffer = device.createBuffer({ size: Math.max(4, Math.ceil((rows * rowStride * elemBytes) / 4) * 4), usage: STORAGE, mappedAtCreation: true, label });
  const mapped = buffer.getMappedRange();
  if (dtype === 'f32') {
    const dst = new Float32Array(mapped);
    if (rowStride === inFeatures) dst.set(weight.subarray(rowStart * inFeatures, (rowStart + rows) * inFeatures));
    else for (let r = 0; r < rows; r++) dst.set(weight.subarray((rowStart + r) * inFeatures, (rowStart + r + 1) * inFeatures), r * rowStride);
  } else {
    const dst = new Uint16Array(mapped, 0, rows * rowStride);
    if (rowStride === inFeatures) dst.set(f32ToF16Array(weight.subarray(rowStart * inFeatures, (rowStart + rows) * inFeatures)));
    else for (let r = 0; r < rows; r++) dst.set(f32ToF16Array(weight.subarray((rowStart + r) * inFeatures, (rowStart + r + 1) * inFeatures)), r * rowStride);
  }
  buffer.unmap();
  return buffer;
}
