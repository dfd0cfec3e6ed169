// Roofline probes for bench/kernels.ts (the copy probe also for eval/copy-peak.ts, which `aser profile` runs; not used by the runtime):
//   copy   dst[i] = src[i] over vec4<u32>: achievable memory bandwidth (bytes read + written)
//   dot4   DOT_CHAINS independent dependent chains of dot4I8Packed per thread: integer dot throughput
//   fma    DOT_CHAINS independent chains of f32 fma per thread: float throughput
// Chains feed each result back into the next operand so nothing can be hoisted out of the loop.

struct Params {
  iters: u32,  // loop trips per thread (dot4/fma)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}

@compute @workgroup_size(WG)
fn dot4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = gid.x + gid.y * nwg.x * WG;
  var a: array<u32, DOT_CHAINS>;
  for (var c = 0u; c < DOT_CHAINS; c++) { a[c] = id * 2654435761u + c * 0x01030507u; }
  let b = 0x7f01ff03u ^ id;
  for (var i = 0u; i < p.iters; i++) {
    for (var c = 0u; c < DOT_CHAINS; c++) { a[c] = u32(dot4I8Packed(a[c], b)) ^ a[c]; }
  }
  var s = 0u;
  for (var c = 0u; c < DOT_CHAINS; c++) { s ^= a[c]; }
  if (s == 0x12345678u) { sink[0] = s; }
}

@compute @workgroup_size(WG)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = gid.x + gid.y * nwg.x * WG;
  var a: array<f32, DOT_CHAINS>;
  for (var c = 0u; c < DOT_CHAINS; c++) { a[c] = f32(id + c) * 1e-6; }
  let m = 0.999999;
  let k = 1e-7;
  for (var i = 0u; i < p.iters; i++) {
    for (var c = 0u; c < DOT_CHAINS; c++) { a[c] = fma(a[c], m, k); }
  }
  var s = 0.0;
  for (var c = 0u; c < DOT_CHAINS; c++) { s += a[c]; }
  if (s == 1234.5) { sink[0] = 1u; }
}
