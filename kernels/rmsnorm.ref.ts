// CPU reference for kernels/rmsnorm.wgsl (float64 sums).
//   x [rowStart+rows, dim] (updated in place when delta is given), weight [dim], returns out [rows, dim].
export function rmsnormRef(
  x: Float32Array, weight: Float32Array, dim: number, rows: number, eps: number, rowStart = 0, delta?: Float32Array,
): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const base = (rowStart + r) * dim;
    if (delta) for (let i = 0; i < dim; i++) x[base + i] = Math.fround(x[base + i]! + delta[base + i]!);
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[base + i]! * x[base + i]!;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[base + i]! * inv * weight[i]!;
  }
  return out;
}
