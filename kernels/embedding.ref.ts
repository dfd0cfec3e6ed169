// CPU reference for kernels/embedding.wgsl.
//   table [rowCount, dim] holds vocabulary rows rowStart..; out [rows, dim] keeps its old value for ids outside.
export function embeddingRef(ids: Uint32Array, table: Float32Array, dim: number, rowStart: number, rowCount: number, out: Float32Array): Float32Array {
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id < rowStart || id >= rowStart + rowCount) continue;
    for (let d = 0; d < dim; d++) out[t * dim + d] = table[(id - rowStart) * dim + d]!;
  }
  return out;
}
