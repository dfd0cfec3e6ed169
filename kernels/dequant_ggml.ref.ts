// CPU reference for kernels/dequant_ggml: block-quantized rows → f32 bits (core/ggml-blocks.ts, exact)
// or f16 bits (round to nearest even through the f32 value), each row padded with zeros to `dstStride`.
import { f32ToF16Bits } from '../core/dtype.js';
import { dequantizeGgmlBlocks, ggmlBlockBytes, type GgmlBlockFormat } from '../core/ggml-blocks.js';

export function dequantGgmlRef(format: GgmlBlockFormat, src: Uint8Array, rows: number, cols: number, dstStride: number, to: 'f32' | 'f16'): Uint32Array | Uint16Array {
  const values = dequantizeGgmlBlocks(format, src.subarray(0, ggmlBlockBytes(format, rows * cols)), rows * cols);
  const bits = new Uint32Array(values.buffer);
  const out = to === 'f32' ? new Uint32Array(rows * dstStride) : new Uint16Array(rows * dstStride);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      out[r * dstStride + c] = to === 'f32' ? bits[i]! : f32ToF16Bits(values[i]!);
    }
  }
  return out;
}
