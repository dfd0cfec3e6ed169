// y[i] += z[i] for every element of the bound range of y (the unfused quantized path's final add).
//   y, z  f32 [n], n = arrayLength(&y)
// Grid: ceil(n / WG) workgroups spread over x and z.

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> z: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.z * nwg.x * WG;
  if (i < arrayLength(&y)) { y[i] += z[i]; }
}
