// RMSNorm over rows, optionally fused with the residual add that precedes every norm in a LLaMA block:
//   ADD_RESIDUAL:  x[r] += delta[r]            (written back: x is the residual stream)
//   out[r - row_start] = x[r] · inverseSqrt(mean(x[r]²) + eps) · weight,   r = row_start .. row_start+rows-1
// One workgroup per row; tree reduction in workgroup memory (no subgroup-size assumption).
// 2-D grid when rows exceed the per-dimension limit: row = wid.x + wid.y·nwg.x.

struct Params {
  rows: u32,      // rows to normalize
  dim: u32,       // elements per row
  row_start: u32, // first row of x (and delta) read, in rows
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;   // [row_start + rows, dim]
@group(0) @binding(2) var<storage, read> weight: array<f32>;    // [dim]
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [rows, dim]
#ifdef ADD_RESIDUAL
@group(0) @binding(4) var<storage, read> delta: array<f32>;     // [row_start + rows, dim]
#endif

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers below stay legal
  let base = (p.row_start + row) * p.dim;
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += WG) {
#ifdef ADD_RESIDUAL
    let v = x[base + i] + delta[base + i];
    x[base + i] = v;
#else
    let v = x[base + i];
#endif
    ss += v * v;
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let inv_rms = inverseSqrt(partial[0] / f32(p.dim) + p.eps);
  let ob = row * p.dim;
  for (var i = lid; i < p.dim; i += WG) {
    out[ob + i] = x[base + i] * inv_rms * weight[i];
  }
}
