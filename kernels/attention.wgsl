// Causal multi-head attention with grouped KV heads over the KV cache (prefill and decode alike):
//   for query row t (absolute position pos0 + t) and head h, kv head g = h / (n_heads / n_kv_heads):
//     out[t, h, :] = Σ_{j ≤ pos0+t} softmax_j(scale · q[t,h,:]·k_cache[j,g,:]) · v_cache[j,g,:]
// The softmax is computed online (running max, rescaled sums), so memory does not grow with the context.
// ROW_POSITIONS: row t carries its own (kv_base, pos) in row_pos (rows of several sequences in one
// chunk, continuous batching): it attends to cache rows kv_base .. kv_base + pos, its sequence's region.
// Two entry points over the same bindings:
//   main       one workgroup per (head, row); keys in tiles of WG, one key per invocation, workgroup
//              reductions; invocation lid accumulates output dims lid, lid+WG, … (ACC of them).
//              Many invocations per row: the decode shape (few rows, long contexts) on GPUs.
//   main_rows  one invocation per (row, head), keys walked serially, q and the output row in registers,
//              no workgroup memory and no barriers. Neighbouring invocations are neighbouring rows of one
//              head and read the same key rows (broadcast). The prefill shape, and every shape on CPU
//              adapters, where barriers dominate. 2-D grid: index = (wid.x + wid.y·nwg.x)·WG + lid.
#ifdef KV_F16
enable f16;
alias kv_t = f16;
#else
alias kv_t = f32;
#endif

struct Params {
  rows: u32,       // query rows in this chunk
  pos0: u32,       // absolute position of row 0
  n_heads: u32,
  n_kv_heads: u32,
  scale: f32,      // 1 / sqrt(head_dim)
  q_stride: u32,   // elements between query rows of q: n_heads·HEAD_DIM, or more when q sits in a fused q|k|v buffer
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;           // [rows, q_stride], head h at h·HEAD_DIM
@group(0) @binding(2) var<storage, read> k_cache: array<kv_t>;    // [max_seq, n_kv_heads, HEAD_DIM]
@group(0) @binding(3) var<storage, read> v_cache: array<kv_t>;    // [max_seq, n_kv_heads, HEAD_DIM]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;   // [rows, n_heads, HEAD_DIM]
#ifdef ROW_POSITIONS
@group(0) @binding(5) var<storage, read> row_pos: array<vec2u>;   // [rows] (kv_base, pos)
#endif

// Below every real score; a finite stand-in for -inf keeps exp() and max() free of inf arithmetic.
const NEG_BIG = -3.0e38;

var<workgroup> q_s: array<f32, HEAD_DIM>;
var<workgroup> prob_s: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  if (t >= p.rows || h >= p.n_heads) { return; } // uniform per workgroup
  let kvh = h / (p.n_heads / p.n_kv_heads);
  let q_base = t * p.q_stride + h * HEAD_DIM;
  let out_base = (t * p.n_heads + h) * HEAD_DIM;
  for (var d = lid; d < HEAD_DIM; d += WG) { q_s[d] = q[q_base + d] * p.scale; }
  workgroupBarrier();

#ifdef ROW_POSITIONS
  let n_keys = row_pos[t].y + 1u;
  let kv_stride = p.n_kv_heads * HEAD_DIM;
  let kv_off = row_pos[t].x * kv_stride + kvh * HEAD_DIM;
#else
  let n_keys = p.pos0 + t + 1u;
  let kv_stride = p.n_kv_heads * HEAD_DIM;
  let kv_off = kvh * HEAD_DIM;
#endif
  var m = NEG_BIG;      // running max over visited keys (same in every invocation)
  var l_part = 0.0;     // this invocation's share of Σ exp(s - m)
  var acc: array<f32, ACC>;

  for (var tile = 0u; tile < n_keys; tile += WG) {
    let j = tile + lid;
    var s = NEG_BIG;
    if (j < n_keys) {
      let kb = j * kv_stride + kv_off;
      var dot = 0.0;
      for (var d = 0u; d < HEAD_DIM; d++) { dot += q_s[d] * f32(k_cache[kb + d]); }
      s = dot;
    }
    red_s[lid] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
      if (lid < w) { red_s[lid] = max(red_s[lid], red_s[lid + w]); }
      workgroupBarrier();
    }
    let m_new = max(m, red_s[0]);
    let corr = exp(m - m_new);
    var pj = 0.0;
    if (j < n_keys) { pj = exp(s - m_new); }
    prob_s[lid] = pj;
    l_part = l_part * corr + pj;
    workgroupBarrier();

    let count = min(WG, n_keys - tile);
    for (var a = 0u; a < ACC; a++) {
      let d = lid + a * WG;
      if (d < HEAD_DIM) {
        var sum = acc[a] * corr;
        var vi = tile * kv_stride + kv_off + d;
        for (var jj = 0u; jj < count; jj++) {
          sum += prob_s[jj] * f32(v_cache[vi]);
          vi += kv_stride;
        }
        acc[a] = sum;
      }
    }
    m = m_new;
    workgroupBarrier(); // prob_s and red_s are rewritten by the next tile
  }

  red_s[lid] = l_part;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red_s[lid] += red_s[lid + w]; }
    workgroupBarrier();
  }
  let inv_l = 1.0 / red_s[0];
  for (var a = 0u; a < ACC; a++) {
    let d = lid + a * WG;
    if (d < HEAD_DIM) { out[out_base + d] = acc[a] * inv_l; }
  }
}

@compute @workgroup_size(WG)
fn main_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.rows * p.n_heads) { return; }
  let h = i / p.rows;
  let t = i - h * p.rows;
  let kvh = h / (p.n_heads / p.n_kv_heads);
  let q_base = t * p.q_stride + h * HEAD_DIM;
  var qv: array<f32, HEAD_DIM>;
  for (var d = 0u; d < HEAD_DIM; d++) { qv[d] = q[q_base + d] * p.scale; }
  var o: array<f32, HEAD_DIM>;
  let kv_stride = p.n_kv_heads * HEAD_DIM;
#ifdef ROW_POSITIONS
  let n_keys = row_pos[t].y + 1u;
  var kb = row_pos[t].x * kv_stride + kvh * HEAD_DIM;
#else
  let n_keys = p.pos0 + t + 1u;
  var kb = kvh * HEAD_DIM;
#endif
  var m = NEG_BIG;
  var l = 0.0;
  for (var j = 0u; j < n_keys; j++) {
    var s = 0.0;
    for (var d = 0u; d < HEAD_DIM; d++) { s += qv[d] * f32(k_cache[kb + d]); }
    let m_new = max(m, s);
    let corr = exp(m - m_new);
    let pj = exp(s - m_new);
    l = l * corr + pj;
    for (var d = 0u; d < HEAD_DIM; d++) { o[d] = o[d] * corr + pj * f32(v_cache[kb + d]); }
    m = m_new;
    kb += kv_stride;
  }
  let inv_l = 1.0 / l;
  let out_base = (t * p.n_heads + h) * HEAD_DIM;
  for (var d = 0u; d < HEAD_DIM; d++) { out[out_base + d] = o[d] * inv_l; }
}
