/// <reference types="@webgpu/types" />
// Streamed weight upload: rows of a WeightRows source go to a GPU buffer in chunks of at most
// `chunkBytes` source bytes. bf16 chunks are uploaded raw into a reused staging buffer and widened on
// the GPU (kernels/convert_bf16.wgsl: exact to f32, round-to-nearest-even to f16), block-quantized GGUF
// rows (Q8_0, Q4_0, Q4_K, Q6_K) likewise and dequantized there (kernels/dequant_ggml.wgsl); f32/f16 sources are
// converted on the CPU one chunk at a time. After every chunk the uploader waits for the queue, so the
// host never holds more than one chunk (plus Dawn's copy of it) whatever the tensor's size.
import type { GpuContext } from '../core/gpu.js';
import type { PipelineCache } from './pipelines.js';
import type { WeightRows } from './weight-rows.js';
import { STORAGE, align4, createBuffer, writeBuffer, UNIFORM } from './buffers.js';
import { DTYPE_BYTES, bytesToF32, f32ToF16Array } from '../core/dtype.js';
import { planConvertBf16 } from '../kernels/convert_bf16.js';
import { planDequantGgml } from '../kernels/dequant_ggml.js';
import type { KernelPlan } from '../kernels/kernel_plan.js';
import { planBindGroup } from './plan-binding.js';

/** Default source bytes per chunk: large enough to keep the GPU busy, small next to any model. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 16 << 20;

export interface UploadStats {
  /** Source bytes read from the model. */
  bytesRead: number;
  /** Of those, bf16 bytes widened and block-quantized bytes dequantized on the GPU. */
  gpuConverted: number;
  chunks: number;
  /** Largest chunk (source bytes) held on the host at once. */
  largestChunk: number;
}

export class WeightUploader {
  readonly stats: UploadStats = { bytesRead: 0, gpuConverted: 0, chunks: 0, largestChunk: 0 };
  private staging?: GPUBuffer;
  private readonly params: GPUBuffer;
  private readonly device: GPUDevice;

  constructor(
    gpu: GpuContext,
    private readonly cache: PipelineCache,
    private readonly chunkBytes = DEFAULT_UPLOAD_CHUNK_BYTES,
  ) {
    this.device = gpu.device;
    this.params = this.device.createBuffer({ size: 32, usage: UNIFORM, label: 'weight-upload/params' });
  }

  /**
   * Writes rows [rowStart, rowStart + rowCount) of `src` into `dst` from byte 0, each row padded with
   * zeros to `rowStride` elements of `to`.
   */
  async write(dst: GPUBuffer, src: WeightRows, rowStart: number, rowCount: number, rowStride: number, to: 'f32' | 'f16'): Promise<void> {
    const srcRowBytes = src.blocks ? src.blocks.rowBytes : src.cols * DTYPE_BYTES[src.dtype];
    const outBytes = to === 'f32' ? 4 : 2;
    let perChunk = Math.max(1, Math.floor(this.chunkBytes / srcRowBytes));
    // f16 output is written in words of two elements: chunks must start on an even element.
    if (to === 'f16' && rowStride % 2 === 1 && perChunk > 1) perChunk -= perChunk % 2;
    else if (to === 'f16' && rowStride % 2 === 1) perChunk = 2;
    for (let r = 0; r < rowCount; r += perChunk) {
      const n = Math.min(perChunk, rowCount - r);
      const dstOffset = r * rowStride * outBytes;
      const raw = src.blocks ? src.blocks.readRows(rowStart + r, n) : src.read(rowStart + r, n);
      this.stats.bytesRead += raw.byteLength;
      this.stats.chunks++;
      this.stats.largestChunk = Math.max(this.stats.largestChunk, raw.byteLength);
      const chunk = { rows: n, cols: src.cols, dstStride: rowStride, dstOffsetWords: dstOffset / 4, to };
      if (src.blocks || src.dtype === 'bf16') {
        this.runOnGpu(dst, raw, src.blocks ? planDequantGgml({ ...chunk, format: src.blocks.format }) : planConvertBf16(chunk));
        this.stats.gpuConverted += raw.byteLength;
      } else {
        writeBuffer(this.device, dst, padRows(hostConvert(raw, src.dtype, to), n, src.cols, rowStride), dstOffset);
      }
      await this.device.queue.onSubmittedWorkDone();
    }
  }

  /** A new storage buffer of `rowCount` rows × `rowStride` elements filled from `src`. */
  async upload(src: WeightRows, rowStart: number, rowCount: number, rowStride: number, to: 'f32' | 'f16', label: string): Promise<GPUBuffer> {
    const buffer = createBuffer(this.device, rowCount * rowStride * (to === 'f32' ? 4 : 2), label, STORAGE);
    await this.write(buffer, src, rowStart, rowCount, rowStride, to);
    return buffer;
  }

  destroy(): void {
    this.staging?.destroy();
    this.staging = undefined;
    this.params.destroy();
  }

  /** Uploads one raw chunk into the staging buffer and runs `plan` (convert_bf16 or dequant_ggml) from it into dst. */
  private runOnGpu(dst: GPUBuffer, raw: Uint8Array, plan: KernelPlan<'params' | 'src' | 'dst'>): void {
    const need = align4(raw.byteLength);
    if (!this.staging || this.staging.size < need) {
      this.staging?.destroy();
      this.staging = createBuffer(this.device, Math.max(need, Math.min(this.chunkBytes, 1 << 30)), 'weight-upload/staging');
    }
    writeBuffer(this.device, this.staging, raw);
    this.device.queue.writeBuffer(this.params, 0, plan.uniforms);
    const pipeline = this.cache.get(plan.spec);
    const src = { buffer: this.staging, offset: 0, size: need };
    const bindGroup = planBindGroup(this.device, pipeline, plan, { params: this.params, src, dst }, plan.spec.label ?? 'weight-upload');
    const enc = this.device.createCommandEncoder({ label: 'weight-upload' });
    const pass = enc.beginComputePass({ label: plan.spec.label });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...plan.workgroups);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }
}

/** f32/f16 source bytes → the output element type, on the CPU (one chunk). */
function hostConvert(raw: Uint8Array, from: 'f32' | 'f16' | 'bf16', to: 'f32' | 'f16'): Uint8Array {
  if (from === to) return raw;
  const f = bytesToF32(raw, from);
  const out = to === 'f32' ? f : f32ToF16Array(f);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function padRows(bytes: Uint8Array, rows: number, cols: number, stride: number): Uint8Array {
  if (stride === cols) return bytes;
  const elem = bytes.byteLength / (rows * cols);
  const out = new Uint8Array(rows * stride * elem);
  for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * cols * elem, (r + 1) * cols * elem), r * stride * elem);
  return out;
}
