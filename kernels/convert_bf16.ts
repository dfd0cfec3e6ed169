// Plan for kernels/convert_bf16.wgsl: one chunk of bf16 weight rows → f32 or f16 rows (padded to a stride).
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

export const CONVERT_WG = 256;

export interface ConvertBf16Shape {
  rows: number;
  cols: number;
  /** Output elements per row (≥ cols; the extra columns are zero). */
  dstStride: number;
  /** First output word of the chunk in the destination buffer (f16: 2 elements per word). */
  dstOffsetWords: number;
  to: 'f32' | 'f16';
}

/** Output words a chunk writes: f32 one per element, f16 one per pair (an odd tail padded). */
export function convertOutputWords(s: Pick<ConvertBf16Shape, 'rows' | 'dstStride' | 'to'>): number {
  const n = s.rows * s.dstStride;
  return s.to === 'f16' ? Math.ceil(n / 2) : n;
}

/** convert_bf16.wgsl's bindings by name. */
export type ConvertBf16Binding = 'params' | 'src' | 'dst';

export function planConvertBf16(s: ConvertBf16Shape): KernelPlan<ConvertBf16Binding> {
  if (s.dstStride < s.cols) throw new RangeError(`convert_bf16: dst stride ${s.dstStride} < cols ${s.cols}`);
  return {
    spec: { shader: 'convert_bf16.wgsl', defines: { WG: CONVERT_WG, OUT_F16: s.to === 'f16' }, label: `convert_bf16_${s.to}` },
    workgroups: grid1d(Math.ceil(convertOutputWords(s) / CONVERT_WG)),
    uniforms: packUniforms([s.rows, s.cols, s.dstStride, s.dstOffsetWords], 'uuuu'),
    bindings: ['params', 'src', 'dst'],
  };
}
