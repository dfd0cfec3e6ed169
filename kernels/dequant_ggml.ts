// Plan for kernels/dequant_ggml.wgsl: one chunk of block-quantized GGUF weight rows (Q8_0, Q4_0, Q4_K,
// Q6_K) → f32 or f16 rows (padded to a stride), dequantized on the GPU at load.
import { GGML_BLOCK_FORMATS, type GgmlBlockFormat } from '../core/ggml-blocks.js';
import { convertOutputWords } from './convert_bf16.js';
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

export const DEQUANT_WG = 256;

export interface DequantGgmlShape {
  format: GgmlBlockFormat;
  rows: number;
  /** Values per row: a multiple of the format's block size. */
  cols: number;
  /** Output elements per row (≥ cols; the extra columns are zero). */
  dstStride: number;
  /** First output word of the chunk in the destination buffer (f16: 2 elements per word). */
  dstOffsetWords: number;
  to: 'f32' | 'f16';
}

/** dequant_ggml.wgsl's bindings by name. */
export type DequantGgmlBinding = 'params' | 'src' | 'dst';

export function planDequantGgml(s: DequantGgmlShape): KernelPlan<DequantGgmlBinding> {
  const f = GGML_BLOCK_FORMATS[s.format];
  if (!f) throw new RangeError(`dequant_ggml: unknown block format ${String(s.format)}`);
  if (s.cols % f.blockSize !== 0) throw new RangeError(`dequant_ggml: ${s.cols} columns are not whole ${s.format} blocks of ${f.blockSize}`);
  if (s.dstStride < s.cols) throw new RangeError(`dequant_ggml: dst stride ${s.dstStride} < cols ${s.cols}`);
  const rowBytes = (s.cols / f.blockSize) * f.typeSize;
  return {
    spec: { shader: 'dequant_ggml.wgsl', defines: { WG: DEQUANT_WG, OUT_F16: s.to === 'f16', [`FMT_${s.format}`]: true }, label: `dequant_${s.format.toLowerCase()}_${s.to}` },
    workgroups: grid1d(Math.ceil(convertOutputWords(s) / DEQUANT_WG)),
    uniforms: packUniforms([s.rows, s.cols, s.dstStride, s.dstOffsetWords, rowBytes], 'uuuuu'),
    bindings: ['params', 'src', 'dst'],
  };
}
