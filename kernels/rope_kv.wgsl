// RoPE on q (in place) and on k, fused with this chunk's KV-cache write:
//   token t at absolute position pos = pos0 + t, head h, pair j < half = head_dim / 2:
//     (a, b) = (2j, 2j+1) with ROPE_INTERLEAVED (llama2.c / Meta), else (j, j + half) (HF rotate-half)
//     (xa, xb) <- (xa·cos - xb·sin, xa·sin + xb·cos),  (cos, sin) = table[pos·half + j]
//   k_cache[pos, kvh, :] = rope(k[t, kvh, :]);  v_cache[pos, kvh, :] = v[t, kvh, :]
// The cos/sin table is built on the CPU in float64 (llama3 frequency scaling included), so angles of
// long positions keep full precision. One invocation per (token, q-or-kv head, pair); q heads first.
// QKV_FUSED: q, k and v arrive as one [rows, n_heads + 2·n_kv_heads, head_dim] buffer (the output of
// one fused q|k|v projection); q is rotated in place there (attention reads it with that row stride).
// ROW_POSITIONS: each row carries its own (kv_base, pos) in row_pos (continuous batching: rows of
// several sequences in one chunk); the angle uses pos and the cache row is kv_base + pos, so each
// sequence keeps its own region of the cache. pos0 is then unused.
#ifdef KV_F16
enable f16;
alias kv_t = f16;
#else
alias kv_t = f32;
#endif

struct Params {
  rows: u32,       // tokens in this chunk
  pos0: u32,       // absolute position of row 0
  n_heads: u32,
  n_kv_heads: u32,
  head_dim: u32,   // elements per head (even)
}

@group(0) @binding(0) var<uniform> p: Params;
#ifdef QKV_FUSED
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;    // [rows, n_heads + 2·n_kv_heads, head_dim]
#else
@group(0) @binding(1) var<storage, read_write> q: array<f32>;      // [rows, n_heads, head_dim]
@group(0) @binding(2) var<storage, read> k: array<f32>;            // [rows, n_kv_heads, head_dim]
@group(0) @binding(3) var<storage, read> v: array<f32>;            // [rows, n_kv_heads, head_dim]
#endif
@group(0) @binding(4) var<storage, read> table: array<vec2f>;      // [max_seq, half] (cos, sin)
@group(0) @binding(5) var<storage, read_write> k_cache: array<kv_t>; // [max_seq, n_kv_heads, head_dim]
@group(0) @binding(6) var<storage, read_write> v_cache: array<kv_t>; // [max_seq, n_kv_heads, head_dim]
#ifdef ROW_POSITIONS
@group(0) @binding(7) var<storage, read> row_pos: array<vec2u>;      // [rows] (kv_base, pos)
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let half = p.head_dim / 2u;
  let per_token = (p.n_heads + p.n_kv_heads) * half;
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.rows * per_token) { return; }
  let t = i / per_token;
  let u = i - t * per_token;
  let head = u / half;
  let j = u - head * half;
#ifdef ROPE_INTERLEAVED
  let a = 2u * j;
  let b = a + 1u;
#else
  let a = j;
  let b = j + half;
#endif
#ifdef ROW_POSITIONS
  let pos = row_pos[t].y;
  let cache_row = row_pos[t].x + pos;
#else
  let pos = p.pos0 + t;
  let cache_row = pos;
#endif
  let cs = table[pos * half + j];
#ifdef QKV_FUSED
  let row = t * (p.n_heads + 2u * p.n_kv_heads) * p.head_dim;
#endif
  if (head < p.n_heads) {
#ifdef QKV_FUSED
    let base = row + head * p.head_dim;
    let xa = qkv[base + a];
    let xb = qkv[base + b];
    qkv[base + a] = xa * cs.x - xb * cs.y;
    qkv[base + b] = xa * cs.y + xb * cs.x;
#else
    let base = (t * p.n_heads + head) * p.head_dim;
    let xa = q[base + a];
    let xb = q[base + b];
    q[base + a] = xa * cs.x - xb * cs.y;
    q[base + b] = xa * cs.y + xb * cs.x;
#endif
  } else {
    let kvh = head - p.n_heads;
    let dst = (cache_row * p.n_kv_heads + kvh) * p.head_dim;
#ifdef QKV_FUSED
    let k_src = row + head * p.head_dim;
    let v_src = k_src + p.n_kv_heads * p.head_dim;
    let xa = qkv[k_src + a];
    let xb = qkv[k_src + b];
    let va = qkv[v_src + a];
    let vb = qkv[v_src + b];
#else
    let src = (t * p.n_kv_heads + kvh) * p.head_dim;
    let xa = k[src + a];
    let xb = k[src + b];
    let va = v[src + a];
    let vb = v[src + b];
#endif
    k_cache[dst + a] = kv_t(xa * cs.x - xb * cs.y);
    k_cache[dst + b] = kv_t(xa * cs.y + xb * cs.x);
    v_cache[dst + a] = kv_t(va);
    v_cache[dst + b] = kv_t(vb);
  }
}
