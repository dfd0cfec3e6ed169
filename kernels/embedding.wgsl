// Token embedding gather: out[t, :] = table[ids[t] - row_start, :] for every token whose id lies in the
// rows this table buffer holds, [row_start, row_start + row_count). Tables larger than one storage
// binding are split by rows across buffers; the executor dispatches once per part.
// One invocation per output element; 2-D grid: index = (wid.x + wid.y·nwg.x)·WG + lid.
#ifdef TABLE_F16
enable f16;
#endif

struct Params {
  rows: u32,      // tokens
  dim: u32,       // elements per embedding row
  row_start: u32, // first vocabulary row held by `table`
  row_count: u32, // vocabulary rows held by `table`
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;        // [rows]
#ifdef TABLE_F16
@group(0) @binding(2) var<storage, read> table: array<f16>;      // [row_count, dim]
#else
@group(0) @binding(2) var<storage, read> table: array<f32>;      // [row_count, dim]
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [rows, dim]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.rows * p.dim) { return; }
  let t = i / p.dim;
  let id = ids[t];
  if (id < p.row_start || id - p.row_start >= p.row_count) { return; }
  out[i] = f32(table[(id - p.row_start) * p.dim + (i - t * p.dim)]);
}
