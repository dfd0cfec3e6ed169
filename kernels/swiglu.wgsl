// SwiGLU activation of the LLaMA MLP: out = silu(gate) · up, elementwise over [rows, hidden].
// silu(g) = g / (1 + exp(-g)) (silu_mul.wgsl, shared with kernel A's SWIGLU input).
// GATE_UP_FUSED: gate and up arrive as one [rows, 2·hidden] buffer (gate | up per row), the output of
// one fused projection. 2-D grid: index = (wid.x + wid.y·nwg.x)·WG + lid.

struct Params {
  count: u32,  // rows · hidden, in elements
  hidden: u32, // elements per row of out
}

@group(0) @binding(0) var<uniform> p: Params;
#ifdef GATE_UP_FUSED
@group(0) @binding(1) var<storage, read> gate_up: array<f32>; // [rows, 2·hidden]
#else
@group(0) @binding(1) var<storage, read> gate: array<f32>;    // [rows, hidden]
@group(0) @binding(2) var<storage, read> up: array<f32>;      // [rows, hidden]
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [rows, hidden]

#include "silu_mul.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.count) { return; }
#ifdef GATE_UP_FUSED
  let t = i / p.hidden;
  let gi = i + t * p.hidden; // row t of gate_up starts at 2·hidden·t
  let g = gate_up[gi];
  let u = gate_up[gi + p.hidden];
#else
  let g = gate[i];
  let u = up[i];
#endif
  out[i] = silu_mul(g, u);
}
