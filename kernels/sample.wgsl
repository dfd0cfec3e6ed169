// Next-token choice from one row of logits on the GPU, so a decode step reads back a token id instead
// of a row of logits. The semantics are runtime/sampler.ts `sampleFrom` (the reference the tests
// compare with), for the host's uniform draw u (passed as u·2^32, which is exact for core/rng.ts):
//   mode 0  greedy: argmax, the lowest id on ties
//   mode 1  inverse CDF over all tokens in id order: the first id whose cumulative mass > u·Σ
//   mode 2  truncated, in sorted order (logit descending, id ascending on equal logits): keep the first
//           top_k tokens; with the nucleus, keep the sorted prefix up to the first token whose cumulative
//           mass > top_p·(kept mass); then the first token whose cumulative mass > u·(that prefix's mass)
// No sort: a token's place in the sorted order is found by radix select over its order key (the
// logit's bits made monotone, 8 bits a round), counting tokens (top-k) or summing masses (top-p, the
// pick) per digit; equal keys are then walked in id order. Masses are exp((x - max)/T) in units of
// 2^-31 of the max token's, as u32, summed exactly as 64-bit integers (vec2u: lo, hi), so every
// comparison against a cutoff is exact; the host's f64 arithmetic only differs by the f32 exp and that
// rounding (see runtime/sampler.ts on ties).
// One workgroup per call. Scratch: masses [vocab], candidates [vocab]; out [2] = (id, non-finite count).

struct Params {
  vocab: u32,        // logits per row
  row: u32,          // row of `logits` to sample (in rows)
  mode: u32,         // 0 greedy, 1 all tokens in id order, 2 truncated (see above)
  top_k: u32,        // mode 2: sorted tokens kept (vocab when top-k is off)
  nucleus: u32,      // mode 2: 1 when top-p applies
  top_p: u32,        // mode 2: the nucleus mass as a fraction of 2^32
  random: u32,       // modes 1, 2: floor(u·2^32)
  temperature: f32,  // modes 1, 2: > 0
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;            // [rows, vocab]
@group(0) @binding(2) var<storage, read_write> masses: array<u32>;      // [vocab] token masses (2^-31 units)
@group(0) @binding(3) var<storage, read_write> candidates: array<u32>;  // [vocab] mode 2's kept ids, in id order
@group(0) @binding(4) var<storage, read_write> out: array<u32>;         // [2] chosen id, non-finite logits

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_w: array<vec2u, WG>;
var<workgroup> part_a: array<u32, WG>;
var<workgroup> part_b: array<u32, WG>;
var<workgroup> uni_u: u32;
var<workgroup> uni_w: vec2u;
var<workgroup> uni_f: f32;
var<workgroup> hist_lo: array<atomic<u32>, 256>;
var<workgroup> hist_hi: array<atomic<u32>, 256>;

fn is_finite(x: f32) -> bool {
  // Bit test, not x == x: compilers may fold NaN comparisons away.
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Order key: larger logit, larger key; -0 and +0 equal (as the host's probabilities are).
fn order_key(x: f32) -> u32 {
  let b = select(bitcast<u32>(x), 0u, x == 0.0);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn key_at(i: u32) -> u32 {
  return order_key(logits[p.row * p.vocab + i]);
}

fn add64(a: vec2u, b: vec2u) -> vec2u {
  let lo = a.x + b.x;
  return vec2u(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn gt64(a: vec2u, b: vec2u) -> bool {
  return a.y > b.y || (a.y == b.y && a.x > b.x);
}

// a·b as 64 bits, from 16-bit halves.
fn mul32(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2u((p00 & 0xffffu) | (mid << 16u), a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}

// floor(f·m / 2^32): a fraction f/2^32 of the mass m, rounded down (below m, so it fits 64 bits).
fn scale64(f: u32, m: vec2u) -> vec2u {
  return add64(mul32(f, m.y), vec2u(mul32(f, m.x).y, 0u));
}

// Token mass exp((x - max)/T)·2^31, rounded; the max token's is exactly 2^31.
fn mass_of(x: f32, mx: f32) -> u32 {
  return u32(exp((x - mx) / p.temperature) * 2147483648.0 + 0.5);
}

// Workgroup sums, returned as uniform values (branches on them may hold barriers).
fn sum_u32(x: u32, lid: u32) -> u32 {
  red_u[lid] = x;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red_u[lid] += red_u[lid + w]; }
    workgroupBarrier();
  }
  if (lid == 0u) { uni_u = red_u[0]; }
  return workgroupUniformLoad(&uni_u);
}

fn sum_u64(x: vec2u, lid: u32) -> vec2u {
  red_w[lid] = x;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) { red_w[lid] = add64(red_w[lid], red_w[lid + w]); }
    workgroupBarrier();
  }
  if (lid == 0u) { uni_w = red_w[0]; }
  return workgroupUniformLoad(&uni_w);
}

// Tokens (all, or mode 2's candidates) in id order, a contiguous chunk per invocation.
fn chunk_len(count: u32) -> u32 {
  return (count + WG - 1u) / WG;
}

fn token_at(j: u32, from_candidates: bool) -> u32 {
  return select(j, candidates[j], from_candidates);
}

// The first token in id order, among the first `count` tokens (or candidates) whose key is `key` (any
// key with `all`), at which base + (their cumulative mass) exceeds `x`; its id goes to uni_u and that
// cumulative mass to uni_w. Walked by invocation 0: the chunk sums find the chunk, then its tokens.
fn first_crossing_in_id_order(count: u32, from_candidates: bool, all: bool, key: u32, base: vec2u, x: vec2u, lid: u32) {
  let len = chunk_len(count);
  let lo = min(lid * len, count);
  let hi = min(lo + len, count);
  var s = vec2u(0u);
  for (var j = lo; j < hi; j++) {
    let t = token_at(j, from_candidates);
    if (all || key_at(t) == key) { s = add64(s, vec2u(masses[t], 0u)); }
  }
  red_w[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var cum = base;
    var chunk = 0u;
    for (; chunk < WG; chunk++) {
      let next = add64(cum, red_w[chunk]);
      if (gt64(next, x)) { break; }
      cum = next;
    }
    // Exact integer masses: x < the total always, so some chunk crosses; the last token otherwise.
    var id = token_at(count - 1u, from_candidates);
    if (chunk < WG) {
      let end = min(chunk * len + len, count);
      for (var j = chunk * len; j < end; j++) {
        let t = token_at(j, from_candidates);
        if (all || key_at(t) == key) {
          cum = add64(cum, vec2u(masses[t], 0u));
          if (gt64(cum, x)) {
            id = t;
            break;
          }
        }
      }
    }
    uni_u = id;
    uni_w = cum;
  }
  workgroupBarrier();
}

// The largest key K whose tokens with key ≥ K weigh more than x (1 each, or their masses with
// `by_mass`), among the first `count` tokens (or candidates): radix select, 8 bits a round, from a
// histogram by the next digit of the tokens whose higher digits are K's so far. K goes to uni_u, the
// weight of the tokens with key > K to uni_w.
fn radix_select(count: u32, from_candidates: bool, by_mass: bool, x: vec2u, lid: u32) {
  var prefix = 0u;
  var above = vec2u(0u);
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    for (var d = lid; d < 256u; d += WG) {
      atomicStore(&hist_lo[d], 0u);
      atomicStore(&hist_hi[d], 0u);
    }
    workgroupBarrier();
    for (var j = lid; j < count; j += WG) {
      let t = token_at(j, from_candidates);
      let key = key_at(t);
      // (a shift by 32 would be a shift by 0 in WGSL: round 0 matches everything)
      if (round == 0u || (key >> (shift + 8u)) == prefix) {
        let w = select(1u, masses[t], by_mass);
        let d = (key >> shift) & 0xffu;
        let old = atomicAdd(&hist_lo[d], w);
        if (old + w < old) { atomicAdd(&hist_hi[d], 1u); }
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var acc = above;
      var digit = 0u;
      for (var i = 0u; i < 256u; i++) {
        let next = add64(acc, vec2u(atomicLoad(&hist_lo[255u - i]), atomicLoad(&hist_hi[255u - i])));
        if (gt64(next, x)) {
          digit = 255u - i;
          break;
        }
        acc = next;
      }
      uni_u = (prefix << 8u) | digit;
      uni_w = acc;
    }
    prefix = workgroupUniformLoad(&uni_u);
    above = workgroupUniformLoad(&uni_w);
  }
}

// The candidate (of the first `count`) at which the cumulative mass in sorted order first exceeds x:
// its key is radix_select's, and among equal keys the walk goes in id order.
fn sorted_crossing(count: u32, x: vec2u, lid: u32) {
  radix_select(count, true, true, x, lid);
  let key = workgroupUniformLoad(&uni_u);
  let above = workgroupUniformLoad(&uni_w);
  first_crossing_in_id_order(count, true, false, key, above, x, lid);
}

// Mass of the first `count` candidates.
fn candidate_mass(count: u32, lid: u32) -> vec2u {
  var s = vec2u(0u);
  for (var j = lid; j < count; j += WG) { s = add64(s, vec2u(masses[candidates[j]], 0u)); }
  return sum_u64(s, lid);
}

// Writes the ids of the tokens to keep into `candidates`, in id order, and returns how many. With
// `by_key`: keys > key, plus the first `ties` tokens whose key equals it; else masses ≥ cut.
fn compact(by_key: bool, key: u32, ties: u32, cut: u32, lid: u32) -> u32 {
  let n = p.vocab;
  let len = chunk_len(n);
  let lo = min(lid * len, n);
  let hi = min(lo + len, n);
  var kept = 0u;
  var tied = 0u;
  for (var i = lo; i < hi; i++) {
    if (by_key) {
      let k = key_at(i);
      if (k > key) { kept++; } else if (k == key) { tied++; }
    } else if (masses[i] >= cut) {
      kept++;
    }
  }
  part_a[lid] = kept;
  part_b[lid] = tied;
  workgroupBarrier();
  if (lid == 0u) {
    // Exclusive prefixes: part_a = where a chunk writes, part_b = ties in earlier chunks.
    var at = 0u;
    var ties_before = 0u;
    for (var c = 0u; c < WG; c++) {
      let k = part_a[c];
      let t = part_b[c];
      part_a[c] = at;
      part_b[c] = ties_before;
      at += k + min(t, ties - min(ties, ties_before));
      ties_before += t;
    }
    uni_u = at;
  }
  let total = workgroupUniformLoad(&uni_u);
  var at = part_a[lid];
  var tie_rank = part_b[lid];
  for (var i = lo; i < hi; i++) {
    var keep = false;
    if (by_key) {
      let k = key_at(i);
      if (k > key) {
        keep = true;
      } else if (k == key) {
        keep = tie_rank < ties;
        tie_rank++;
      }
    } else {
      keep = masses[i] >= cut;
    }
    if (keep) {
      candidates[at] = i;
      at++;
    }
  }
  storageBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = p.vocab;
  // Max and argmax (lowest id on ties; strided, so each invocation meets its ids in order) and the
  // non-finite count (the host turns > 0 into an error).
  var best = 0.0; // meaningful once best_id < n
  var best_id = n;
  var bad = 0u;
  for (var i = lid; i < n; i += WG) {
    let x = logits[p.row * n + i];
    if (!is_finite(x)) {
      bad++;
    } else if (best_id == n || x > best) {
      best = x;
      best_id = i;
    }
  }
  red_f[lid] = best;
  red_u[lid] = best_id;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (lid < w) {
      let v = red_f[lid + w];
      let id = red_u[lid + w];
      if (id < n && (red_u[lid] == n || v > red_f[lid] || (v == red_f[lid] && id < red_u[lid]))) {
        red_f[lid] = v;
        red_u[lid] = id;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    uni_f = red_f[0];
    out[0] = red_u[0];
  }
  let mx = workgroupUniformLoad(&uni_f);
  let bad_total = sum_u32(bad, lid);
  if (lid == 0u) { out[1] = bad_total; }
  if (p.mode == 0u || bad_total > 0u) { return; }

  var total = vec2u(0u);
  for (var i = lid; i < n; i += WG) {
    let q = mass_of(logits[p.row * n + i], mx);
    masses[i] = q;
    total = add64(total, vec2u(q, 0u));
  }
  storageBarrier();
  total = sum_u64(total, lid);

  if (p.mode == 1u) {
    first_crossing_in_id_order(n, false, true, 0u, vec2u(0u), scale64(p.random, total), lid);
    if (lid == 0u) { out[0] = uni_u; }
    return;
  }

  // Mode 2. The kept tokens: the top_k largest keys (the k-th key by radix select on counts, ties at it
  // in id order), or with top-p alone a superset of any nucleus: tokens below (1 - top_p)/(n - 1) of
  // the total mass sit after a prefix already heavier than top_p of it (llama2.c's cut; halved here,
  // so f32 rounding of the cut cannot drop a nucleus token). The max token is always kept.
  var count: u32;
  var kept_mass: vec2u;
  if (p.top_k < n) {
    // The k-th key: more than k - 1 tokens have a key ≥ it.
    radix_select(n, false, false, vec2u(p.top_k - 1u, 0u), lid);
    let kth = workgroupUniformLoad(&uni_u);
    let above = workgroupUniformLoad(&uni_w);
    count = compact(true, kth, p.top_k - above.x, 0u, lid);
    kept_mass = candidate_mass(count, lid);
  } else {
    let fraction = f32(~p.top_p) / 4294967296.0 / f32(max(n - 1u, 1u));
    let cut = u32(min((f32(total.y) * 4294967296.0 + f32(total.x)) * fraction * 0.5, 2147483648.0));
    count = compact(false, 0u, 0u, cut, lid);
    kept_mass = total;
  }

  var prefix_mass = kept_mass;
  if (p.nucleus == 1u) {
    sorted_crossing(count, scale64(p.top_p, kept_mass), lid);
    prefix_mass = workgroupUniformLoad(&uni_w);
  }
  sorted_crossing(count, scale64(p.random, prefix_mass), lid);
  if (lid == 0u) { out[0] = uni_u; }
}
