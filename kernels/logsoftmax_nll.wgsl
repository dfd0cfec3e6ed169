// Per-row negative log-likelihood of a target token under softmax(logits), without reading logits back:
//   out[2(first+r)]   = log Σ_v exp(x[r,v]) - x[r, targets[first+r]]   (0 when the target is ≥ vocab: unscored)
//   out[2(first+r)+1] = number of non-finite logits in row r (the host turns > 0 into an error)
// One workgroup per row: a max pass and a Σexp pass, tree reductions in workgroup memory.
// 2-D grid: row = wid.x + wid.y·nwg.x.

struct Params {
  rows: u32,  // logit rows in this dispatch
  vocab: u32, // logits per row
  first: u32, // index of row 0 in `targets` and `out` (in rows)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;     // [rows, vocab]
@group(0) @binding(2) var<storage, read> targets: array<u32>;    // [first + rows]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [first + rows, 2]

var<workgroup> red_s: array<f32, WG>;
var<workgroup> bad_s: array<u32, WG>;

fn is_finite(x: f32) -> bool {
  // Bit test, not x == x: compilers may fold NaN comparisons away.
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; } // uniform per workgroup
  let base = r * p.vocab;
  var mx = -3.0e38;
  var bad = 0u;
  for (var i = lid; i < p.vocab; i += WG) {
    let x = logits[base + i];
    if (is_finite(x)) { mx = max(mx, x); } else { bad += 1u; }
  }
  red_s[lid] = mx;
  bad_s[lid] = bad;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      red_s[lid] = max(red_s[lid], red_s[lid + w]);
      bad_s[lid] += bad_s[lid + w];
    }
    workgroupBarrier();
  }
  let row_max = red_s[0];
  let row_bad = bad_s[0];
  workgroupBarrier();
  var se = 0.0;
  for (var i = lid; i < p.vocab; i += WG) {
    let x = logits[base + i];
    if (is_finite(x)) { se += exp(x - row_max); }
  }
  red_s[lid] = se;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red_s[lid] += red_s[lid + w]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let target_id = targets[p.first + r];
    var nll = 0.0;
    if (target_id < p.vocab) { nll = row_max + log(red_s[0]) - logits[base + target_id]; }
    out[2u * (p.first + r)] = nll;
    out[2u * (p.first + r) + 1u] = f32(row_bad);
  }
}
