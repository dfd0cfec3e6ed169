// CPU reference for kernels/convert_bf16: bf16 rows → f32 bits (exact) or f16 bits (round to nearest
// even through the f32 value), each row padded with zeros to `dstStride` elements.
import { bf16BitsToF32, f32ToF16Bits } from '../core/dtype.js';

export function convertBf16Ref(src: Uint16Array, rows: number, cols: number, dstStride: number, to: 'f32' | 'f16'): Uint32Array | Uint16Array {
  const out = to === 'f32' ? new Uint32Array(rows * dstStride) : new Uint16Array(rows * dstStride);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = src[r * cols + c]!;
      out[r * dstStride + c] = to === 'f32' ? (b << 16) >>> 0 : f32ToF16Bits(bf16BitsToF32(b));
    }
  }
  return out;
}
