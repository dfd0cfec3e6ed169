// CPU reference for kernels/vec_add: y[i] += z[i] (f32 rounding, as the GPU).
export function vecAddRef(y: Float32Array, z: Float32Array): Float32Array {
  const out = new Float32Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = y[i]! + z[i]!;
  return out;
}
