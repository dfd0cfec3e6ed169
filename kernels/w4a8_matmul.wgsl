// Kernel B of the quantized linear: int4 (or, with W8, int8) weights × int8-lane activations, int32
// accumulation, and the epilogue
//   y[t, o] = s_x[t] · s_w[o] · acc[t, o]  (+ Σ_j t[t, j] · L_B[j, o] with HAS_LR)  (+ bias[o])
//   xq     u32 [tokens, words_per_row]          from kernel A (4 int8 lanes per word, k order)
//   sx     f32 [tokens]                         bound for exactly `tokens` rows: tokens = arrayLength(&sx)
//   qw     vec4<u32> [in_blocks][slice_rows]    this slice's rows in the core/w4-layout.ts layout
//                                               (W8: [in_blocks][slice_rows][2], core/w8-layout.ts)
//   sw     f32 [out_total]; bias f32 [out_total]; y f32 [tokens, out_total]
//          (RESIDUAL: y += the result, the residual add of o_proj / down_proj into the stream x)
//   tpart  f32 [tokens][splits][rank_pad]       kernel A's partial t (summed here over splits)
//   lb     per side-path segment s, [rank_s][rows_s] at lb_off_s (f16 with LR_F16, int8 lanes 4 to a
//          u32 with LR_I8 (element e in byte e % 4 of word e / 4), else f32)
//   lb_scale f32 [rank], LR_I8 only: L_B's scale per rank row (t's column index)
// Side-path segments: a layer may stack the rows of several linears that share one input (q|k|v,
// gate|up: one kernel A, one kernel B), each keeping its own side path. Segment s covers output rows
// [row_start, row_end), uses t's columns [rank_off, rank_off + rank) and its own L_B of rank × rows
// (no block-diagonal zeros). A plain linear is one segment covering every row. Rows of a workgroup or
// tile may straddle segments: the epilogue loops over the segments that overlap it (a uniform loop)
// and each row takes the terms of its own segment only.
//   acc_dbg i32 [tokens, out_total]             DEBUG_ACC only: the exact integer accumulators
// Weight lanes: (w << 4) & 0xF0F0F0F0 and w & 0xF0F0F0F0 hold 16·q as int8, so the int32 sum is 16·acc
// and `>> 4` recovers acc exactly (no sign-extension work in the inner loop). W8 weight words are int8
// lanes in activation order already: word j of a block pairs with activation word j, acc as is.
// Entry points:
//   gemv  decode: a workgroup owns GEMV_ROWS·GEMV_RPT consecutive rows × GEMV_KSPLIT k-splits; thread
//         (ro, ks) owns rows ro + i·GEMV_ROWS (i < GEMV_RPT) and reads one 16-byte block per row and
//         step, neighbouring threads reading neighbouring 16-byte chunks (coalesced), each activation
//         load serving GEMV_RPT rows; k-splits are summed in workgroup memory (integers: exact).
//   gemm  prefill: TM tokens × TN rows per workgroup, k in steps of TKB blocks through workgroup
//         memory, RM×RN outputs per thread; the side path runs as a second small tiled product in
//         the epilogue, RC2 rank columns at a time.
#ifdef LR_F16
enable f16;
#endif

struct Params {
  in_blocks: u32,      // ceil(K / 32)
  words_per_row: u32,  // xq row stride, in u32 words (8 · in_blocks)
  out_total: u32,      // y, s_w, bias, L_B row stride, in elements
  out_offset: u32,     // first output row of this slice
  slice_rows: u32,     // rows in this slice's qw
  rank: u32,           // r, summed over segments; 0 without side path
  rank_pad: u32,       // tpart stride per split, in elements
  n_segs: u32,         // side-path segments in use (≤ MAX_SEGS)
  // segs[2s]   = (row_start, row_end, rank_off, rank) of segment s: output rows (out_total space), t columns
  // segs[2s+1] = (lb_off, 0, 0, 0): where its L_B [rank][row_end - row_start] starts in lb, in elements
  segs: array<vec4<u32>, 2 * MAX_SEGS>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> sx: array<f32>;
@group(0) @binding(3) var<storage, read> qw: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> sw: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#ifdef HAS_BIAS
@group(0) @binding(6) var<storage, read> bias: array<f32>;
#endif
#ifdef HAS_LR
@group(0) @binding(7) var<storage, read> tpart: array<f32>;
#ifdef LR_F16
@group(0) @binding(8) var<storage, read> lb: array<f16>;
#else
#ifdef LR_I8
@group(0) @binding(8) var<storage, read> lb: array<u32>;
@group(0) @binding(10) var<storage, read> lb_scale: array<f32>;
#else
@group(0) @binding(8) var<storage, read> lb: array<f32>;
#endif
#endif
#endif
#ifdef DEBUG_ACC
@group(0) @binding(9) var<storage, read_write> acc_dbg: array<i32>;
#endif

const LO_MASK: u32 = 0xF0F0F0F0u;
const W_VECS: u32 = W_WORDS_PER_BLOCK / 4;  // vec4<u32> per row-block: 1 (int4) or 2 (W8)
#ifdef W8
const ACC_SHIFT: u32 = 0u;  // the accumulators hold acc itself
#else
const ACC_SHIFT: u32 = 4u;  // the accumulators hold 16·acc (int4 lanes scaled into int8)
#endif

// 16 · Σ over one 32-wide block: weight block w (4 words) against activation words a (k 0..15), b (k 16..31).
fn block_dot16(w: vec4<u32>, a: vec4<u32>, b: vec4<u32>) -> i32 {
  return dot4I8Packed(a.x, (w.x << 4u) & LO_MASK) + dot4I8Packed(a.y, w.x & LO_MASK)
       + dot4I8Packed(a.z, (w.y << 4u) & LO_MASK) + dot4I8Packed(a.w, w.y & LO_MASK)
       + dot4I8Packed(b.x, (w.z << 4u) & LO_MASK) + dot4I8Packed(b.y, w.z & LO_MASK)
       + dot4I8Packed(b.z, (w.w << 4u) & LO_MASK) + dot4I8Packed(b.w, w.w & LO_MASK);
}

#ifdef GEMV_SWAR
// SWAR GEMV inner product (CPU adapters, where dot4I8Packed is emulated lane by lane): one i32
// multiply-add does two int8×int4 products. A pair value holds two activations as x_a + x_b·2^16;
// a weight word XOR 0x88888888 holds offset nibbles u = q + 8 (0..15), and masking it with 0x000F000F
// leaves u_b + u_a·2^16 (the matching two k). Their product is x_a·u_a + x_b·u_b in bits 16..31
// plus x_a·u_b in the low field (and a term above bit 31 that wraps away). Over a half block (16 k:
// 8 multiplies) the high field stays within ±16·127·15 = ±30480 and the low one within ±8·127·15 =
// ±15240, so (sum + 2^15) >> 16 is exactly Σ x·u; Σ x·q = Σ x·u − 8·Σ x, with Σ x taken once per thread.
const PAIR_MASK: u32 = 0x000F000Fu;
const U_OFFSET: u32 = 0x88888888u;

// One block's activations as pair values, lane j of each vector serving weight word j:
// even = (x[8j+2] + x[8j]·2^16, …) against u & mask; odd = (x[8j+3] + x[8j+1]·2^16) against
// (u >> 8) & mask; *_hi the same for x[8j+4..7] against (u >> 4) and (u >> 12).
struct XPairs {
  even_lo: vec4<i32>,
  odd_lo: vec4<i32>,
  even_hi: vec4<i32>,
  odd_hi: vec4<i32>,
}

fn pairs_even(a: vec4<u32>) -> vec4<i32> {
  return (bitcast<vec4<i32>>(a << vec4<u32>(8u)) >> vec4<u32>(24u)) + (bitcast<vec4<i32>>(a << vec4<u32>(24u)) >> vec4<u32>(8u));
}
fn pairs_odd(a: vec4<u32>) -> vec4<i32> {
  return (bitcast<vec4<i32>>(a) >> vec4<u32>(24u)) + (bitcast<vec4<i32>>((a << vec4<u32>(16u)) & vec4<u32>(0xFF000000u)) >> vec4<u32>(8u));
}

// a = activation words 0..3 (k 0..15), b = words 4..7: word 2j pairs with the low nibbles of weight
// word j, word 2j+1 with its high nibbles.
fn x_pairs(a: vec4<u32>, b: vec4<u32>) -> XPairs {
  let lo = vec4<u32>(a.x, a.z, b.x, b.z);
  let hi = vec4<u32>(a.y, a.w, b.y, b.w);
  return XPairs(pairs_even(lo), pairs_odd(lo), pairs_even(hi), pairs_odd(hi));
}

// Σ of the block's 32 activations: the pair values' two fields summed apart (each within ±16·127).
fn x_pairs_sum(x: XPairs) -> i32 {
  let v = x.even_lo + x.odd_lo + x.even_hi + x.odd_hi;
  let t = v.x + v.y + v.z + v.w;  // fields within ±16·127
  let hi = (t + 0x8000) >> 16u;
  return hi + (t - (hi << 16u));
}

// Σ x·u over one 32-wide block of weight words w.
fn block_dot_u(w: vec4<u32>, x: XPairs) -> i32 {
  let u = w ^ vec4<u32>(U_OFFSET);
  let m = vec4<u32>(PAIR_MASK);
  let t = bitcast<vec4<i32>>(u & m) * x.even_lo + bitcast<vec4<i32>>((u >> vec4<u32>(8u)) & m) * x.odd_lo
        + bitcast<vec4<i32>>((u >> vec4<u32>(4u)) & m) * x.even_hi + bitcast<vec4<i32>>((u >> vec4<u32>(12u)) & m) * x.odd_hi;
  let half = vec2<i32>(t.x + t.y, t.z + t.w) + vec2<i32>(0x8000);
  let h = half >> vec2<u32>(16u);
  return h.x + h.y;
}
#endif

// The 4 int8 lanes of a word, sign-extended (k order: lane 0 is the low byte).
fn lanes(a: u32) -> vec4<i32> {
  return bitcast<vec4<i32>>(vec4<u32>(a) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

#ifdef GEMV_F32
// Exact f32 GEMV inner product (CPU adapters, where 32-bit integer multiplies are slow and float FMAs
// are not): int8 lanes converted to f32 (the activation lanes once per block, shared by the thread's
// rows) and multiplied with fma. Every product and partial sum is an integer: a product is within
// 127·128 = 16256 (W8: 127²) and a 32-wide block's sum within 32·16256 = 520192 < 2^24, so each is
// exact in f32 in any order, and the block sum converts to i32 exactly before the integer accumulator.
fn flanes(a: u32) -> vec4<f32> {
  return vec4<f32>(lanes(a));
}

#ifdef W8
// Σ over one 32-wide block of int8 weights (w0: k 0..15, w1: k 16..31), activations as f32 lanes.
fn block_dot8_f32(w0: vec4<u32>, w1: vec4<u32>, x: array<vec4<f32>, 8>) -> i32 {
  var s = x[0] * flanes(w0.x);
  s = fma(x[1], flanes(w0.y), s);
  s = fma(x[2], flanes(w0.z), s);
  s = fma(x[3], flanes(w0.w), s);
  s = fma(x[4], flanes(w1.x), s);
  s = fma(x[5], flanes(w1.y), s);
  s = fma(x[6], flanes(w1.z), s);
  s = fma(x[7], flanes(w1.w), s);
  return i32((s.x + s.y) + (s.z + s.w));
}
#endif

// 16 · Σ over one 32-wide block of int4 weights (16·q lanes as in block_dot16), activations as f32 lanes.
fn block_dot16_f32(w: vec4<u32>, x: array<vec4<f32>, 8>) -> i32 {
  var s = x[0] * flanes((w.x << 4u) & LO_MASK);
  s = fma(x[1], flanes(w.x & LO_MASK), s);
  s = fma(x[2], flanes((w.y << 4u) & LO_MASK), s);
  s = fma(x[3], flanes(w.y & LO_MASK), s);
  s = fma(x[4], flanes((w.z << 4u) & LO_MASK), s);
  s = fma(x[5], flanes(w.z & LO_MASK), s);
  s = fma(x[6], flanes((w.w << 4u) & LO_MASK), s);
  s = fma(x[7], flanes(w.w & LO_MASK), s);
  return i32((s.x + s.y) + (s.z + s.w));
}
#endif

#ifdef GEMV_IMAD
// Plain integer GEMV inner product: int8 lanes sign-extended to i32 and multiplied (the activation
// lanes once per block, shared by the thread's rows); weights as 16·q lanes as in block_dot16.

#ifdef W8
// Σ over one 32-wide block of int8 weights (w0: k 0..15, w1: k 16..31), activations as i32 lanes.
fn block_dot8_imad(w0: vec4<u32>, w1: vec4<u32>, x: array<vec4<i32>, 8>) -> i32 {
  return dot(x[0], lanes(w0.x)) + dot(x[1], lanes(w0.y)) + dot(x[2], lanes(w0.z)) + dot(x[3], lanes(w0.w))
       + dot(x[4], lanes(w1.x)) + dot(x[5], lanes(w1.y)) + dot(x[6], lanes(w1.z)) + dot(x[7], lanes(w1.w));
}
#endif

fn block_dot16_imad(w: vec4<u32>, x: array<vec4<i32>, 8>) -> i32 {
  return dot(x[0], lanes((w.x << 4u) & LO_MASK)) + dot(x[1], lanes(w.x & LO_MASK))
       + dot(x[2], lanes((w.y << 4u) & LO_MASK)) + dot(x[3], lanes(w.y & LO_MASK))
       + dot(x[4], lanes((w.z << 4u) & LO_MASK)) + dot(x[5], lanes(w.z & LO_MASK))
       + dot(x[6], lanes((w.w << 4u) & LO_MASK)) + dot(x[7], lanes(w.w & LO_MASK));
}
#endif

#ifdef W8
// Σ over one 32-wide block of int8 weights (w0: k 0..15, w1: k 16..31) against activation words a, b.
fn block_dot8(w0: vec4<u32>, w1: vec4<u32>, a: vec4<u32>, b: vec4<u32>) -> i32 {
  return dot4I8Packed(a.x, w0.x) + dot4I8Packed(a.y, w0.y) + dot4I8Packed(a.z, w0.z) + dot4I8Packed(a.w, w0.w)
       + dot4I8Packed(b.x, w1.x) + dot4I8Packed(b.y, w1.y) + dot4I8Packed(b.z, w1.z) + dot4I8Packed(b.w, w1.w);
}
#endif

const MAX_SEGS_: u32 = MAX_SEGS;

#ifdef HAS_LR
// L_B's element e as f32 (LR_I8: the int8 value alone; its row scale is applied to t instead, see t_scaled).
fn lb_value(e: u32) -> f32 {
#ifdef LR_I8
  return f32(bitcast<i32>(lb[e >> 2u] << (24u - 8u * (e & 3u))) >> 24u);
#else
  return f32(lb[e]);
#endif
}
#endif

// L_B of segment `sg` (segs[2s]) at rank column j for output row `col`, 0 for rows outside the
// segment (branch-free: the index is clamped into the segment, the value selected away).
fn lb_seg(sg: vec4<u32>, lb_off: u32, j: u32, col: u32) -> f32 {
#ifdef HAS_LR
  let inside = col >= sg.x && col < sg.y;
  let lc = min(max(col, sg.x), sg.y - 1u) - sg.x;
  return select(0.0, lb_value(lb_off + j * (sg.y - sg.x) + lc), inside);
#else
  return 0.0;
#endif
}

// Does segment `sg` share a row with output rows [c0, c1)?
fn seg_overlaps(sg: vec4<u32>, c0: u32, c1: u32) -> bool {
  return sg.x < c1 && sg.y > c0;
}

// Sum of kernel A's split partials: t[t, j].
fn t_at(tok: u32, j: u32, splits: u32) -> f32 {
#ifdef HAS_LR
  var v = 0.0;
  for (var s = 0u; s < splits; s++) { v += tpart[(tok * splits + s) * p.rank_pad + j]; }
  return v;
#else
  return 0.0;
#endif
}

// t[t, j] as the epilogue multiplies it into L_B: with int8 L_B, times L_B's scale for rank row j
// (r products per token instead of one per factor element).
fn t_scaled(tok: u32, j: u32, splits: u32) -> f32 {
#ifdef LR_I8
  return t_at(tok, j, splits) * lb_scale[j];
#else
  return t_at(tok, j, splits);
#endif
}

fn lr_splits(tokens: u32) -> u32 {
#ifdef HAS_LR
  return arrayLength(&tpart) / (tokens * p.rank_pad);
#else
  return 0u;
#endif
}

fn store(tok: u32, o: u32, acc16: i32, side: f32) {
  let col = p.out_offset + o;
  let acc = acc16 >> ACC_SHIFT;
  var v = sx[tok] * sw[col] * f32(acc) + side;
#ifdef HAS_BIAS
  v += bias[col];
#endif
#ifdef RESIDUAL
  y[tok * p.out_total + col] += v;
#else
  y[tok * p.out_total + col] = v;
#endif
#ifdef DEBUG_ACC
  acc_dbg[tok * p.out_total + col] = acc;
#endif
}

// ---------------------------------------------------------------- GEMV (decode)
const GR: u32 = GEMV_ROWS;     // threads along rows
const GK: u32 = GEMV_KSPLIT;   // threads along k
const RPT: u32 = GEMV_RPT;     // rows per thread, strided by GR (reuses each activation load RPT times)
var<workgroup> ired: array<i32, GEMV_ROWS * GEMV_RPT * GEMV_KSPLIT>;
#ifdef HAS_LR
var<workgroup> fred: array<f32, GEMV_ROWS * GEMV_RPT * GEMV_KSPLIT>;
var<workgroup> t_sh: array<f32, T_MAX>;
#endif

@compute @workgroup_size(GEMV_ROWS * GEMV_KSPLIT)
fn gemv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row0 = (wid.x + wid.z * nwg.x) * GR * RPT;
  if (row0 >= p.slice_rows) { return; }
  let tok = wid.y;
  let tokens = arrayLength(&sx);
  let ro = lid % GR;
  // `% GK` is a no-op (lid < GR·GK) that lets the compiler fold ks to 0 without k-splits: the k loop
  // and its activation loads are then uniform across the workgroup (CPU adapters run it as one SIMD loop).
  let ks = (lid / GR) % GK;
  let xbase = tok * (p.words_per_row / 4u);

  var acc: array<i32, GEMV_RPT>;
  var rows: array<u32, GEMV_RPT>;
  for (var i = 0u; i < RPT; i++) {
    acc[i] = 0;
    rows[i] = min(row0 + ro + i * GR, p.slice_rows - 1u);
  }
#ifdef GEMV_SWAR
  var xsum = 0;
#endif
  for (var c = ks; c < p.in_blocks; c += GK) {
    let a = xq[xbase + 2u * c];
    let b = xq[xbase + 2u * c + 1u];
    let wrow = c * p.slice_rows;
#ifdef W8
#ifdef GEMV_F32
    let x = array<vec4<f32>, 8>(flanes(a.x), flanes(a.y), flanes(a.z), flanes(a.w), flanes(b.x), flanes(b.y), flanes(b.z), flanes(b.w));
    for (var i = 0u; i < RPT; i++) { let r = 2u * (wrow + rows[i]); acc[i] += block_dot8_f32(qw[r], qw[r + 1u], x); }
#else
#ifdef GEMV_IMAD
    let x = array<vec4<i32>, 8>(lanes(a.x), lanes(a.y), lanes(a.z), lanes(a.w), lanes(b.x), lanes(b.y), lanes(b.z), lanes(b.w));
    for (var i = 0u; i < RPT; i++) { let r = 2u * (wrow + rows[i]); acc[i] += block_dot8_imad(qw[r], qw[r + 1u], x); }
#else
    for (var i = 0u; i < RPT; i++) { let r = 2u * (wrow + rows[i]); acc[i] += block_dot8(qw[r], qw[r + 1u], a, b); }
#endif
#endif
#else
#ifdef GEMV_SWAR
    let x = x_pairs(a, b);
    xsum += x_pairs_sum(x);
    for (var i = 0u; i < RPT; i++) { acc[i] += block_dot_u(qw[wrow + rows[i]], x); }
#else
#ifdef GEMV_F32
    let x = array<vec4<f32>, 8>(flanes(a.x), flanes(a.y), flanes(a.z), flanes(a.w), flanes(b.x), flanes(b.y), flanes(b.z), flanes(b.w));
    for (var i = 0u; i < RPT; i++) { acc[i] += block_dot16_f32(qw[wrow + rows[i]], x); }
#else
#ifdef GEMV_IMAD
    let x = array<vec4<i32>, 8>(lanes(a.x), lanes(a.y), lanes(a.z), lanes(a.w), lanes(b.x), lanes(b.y), lanes(b.z), lanes(b.w));
    for (var i = 0u; i < RPT; i++) { acc[i] += block_dot16_imad(qw[wrow + rows[i]], x); }
#else
    for (var i = 0u; i < RPT; i++) { acc[i] += block_dot16(qw[wrow + rows[i]], a, b); }
#endif
#endif
#endif
#endif
  }
#ifdef GEMV_SWAR
  // Back to the 16·acc the reduction and store() take (Σ x·q = Σ x·u − 8·Σ x).
  for (var i = 0u; i < RPT; i++) { acc[i] = (acc[i] - 8 * xsum) << 4u; }
#endif
#ifdef HAS_LR
  let splits = lr_splits(tokens);
  for (var j = lid; j < p.rank; j += GR * GK) { t_sh[j] = t_scaled(tok, j, splits); }
  workgroupBarrier();
  // Side path: k-split ks takes rank columns ks, ks + GK, … of each segment overlapping this
  // workgroup's rows; the partial sums ride the same tree as the integer accumulators. Straight-line
  // and unmasked (rows are clamped, other segments' rows select 0), which CPU adapters need.
  var side: array<f32, GEMV_RPT>;
  for (var i = 0u; i < RPT; i++) { side[i] = 0.0; }
  let c0 = p.out_offset + row0;
  for (var s = 0u; s < min(p.n_segs, MAX_SEGS_); s++) {
    let sg = p.segs[2u * s];
    if (!seg_overlaps(sg, c0, c0 + GR * RPT)) { continue; }
    let lb_off = p.segs[2u * s + 1u].x;
    for (var j = ks; j < sg.w; j += GK) {
      let tj = t_sh[sg.z + j];
      for (var i = 0u; i < RPT; i++) { side[i] += tj * lb_seg(sg, lb_off, j, p.out_offset + rows[i]); }
    }
  }
  for (var i = 0u; i < RPT; i++) { fred[(ks * RPT + i) * GR + ro] = side[i]; }
#endif
  for (var i = 0u; i < RPT; i++) { ired[(ks * RPT + i) * GR + ro] = acc[i]; }
  workgroupBarrier();
  for (var h = GK / 2u; h > 0u; h >>= 1u) {
    if (ks < h) {
      for (var i = 0u; i < RPT; i++) {
        ired[(ks * RPT + i) * GR + ro] += ired[((ks + h) * RPT + i) * GR + ro];
#ifdef HAS_LR
        fred[(ks * RPT + i) * GR + ro] += fred[((ks + h) * RPT + i) * GR + ro];
#endif
      }
    }
    workgroupBarrier();
  }
  if (ks == 0u) {
    for (var i = 0u; i < RPT; i++) {
      let r = ro + i * GR;
      if (row0 + r < p.slice_rows) {
#ifdef HAS_LR
        store(tok, row0 + r, ired[i * GR + ro], fred[i * GR + ro]);
#else
        store(tok, row0 + r, ired[i * GR + ro], 0.0);
#endif
      }
    }
  }
}

// ---------------------------------------------------------------- GEMM (prefill)
const TM_: u32 = TM;
const TN_: u32 = TN;
const TKB_: u32 = TKB;
const RC2_: u32 = RC2;
const WGX: u32 = TN / RN;  // threads along out
const WGY: u32 = TM / RM;  // threads along tokens
var<workgroup> xs: array<u32, TKB * 8 * TM>;   // [word][token]
var<workgroup> ws: array<u32, TKB * W_WORDS_PER_BLOCK * TN>;   // [word][row]
#ifdef HAS_LR
var<workgroup> ts: array<f32, RC2 * TM>;       // [rank col][token]
var<workgroup> lbs: array<f32, RC2 * TN>;      // [rank col][row]
#endif

@compute @workgroup_size(TN / RN, TM / RM)
fn gemm(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tokens = arrayLength(&sx);
  let tx = lid3.x;
  let ty = lid3.y;
  let lid = ty * WGX + tx;
  let o0 = wid.x * TN_;
  let t0 = wid.y * TM_;
  let xstride = p.words_per_row;  // in u32 words

  var acc: array<array<i32, RN>, RM>;
  for (var i = 0u; i < RM; i++) { for (var j = 0u; j < RN; j++) { acc[i][j] = 0; } }

  for (var cb = 0u; cb < p.in_blocks; cb += TKB_) {
    // activation tile: TM tokens × TKB·8 words (a token's words are contiguous).
    for (var e = lid; e < TM_ * TKB_ * 2u; e += WGX * WGY) {
      let tt = e / (TKB_ * 2u);
      let q4 = e % (TKB_ * 2u);  // vec4 index within the token's k step
      let tok = t0 + tt;
      var v = vec4<u32>(0u);
      if (tok < tokens && cb * 2u + q4 < p.in_blocks * 2u) { v = xq[tok * (xstride / 4u) + cb * 2u + q4]; }
      let wd = q4 * 4u;
      xs[(wd + 0u) * TM_ + tt] = v.x;
      xs[(wd + 1u) * TM_ + tt] = v.y;
      xs[(wd + 2u) * TM_ + tt] = v.z;
      xs[(wd + 3u) * TM_ + tt] = v.w;
    }
    // weight tile: TKB blocks × TN rows, each block of TN rows contiguous in memory; bv counts the
    // tile's vec4s along k (W_VECS per block).
    for (var e = lid; e < TN_ * TKB_ * W_VECS; e += WGX * WGY) {
      let oo = e % TN_;
      let bv = e / TN_;
      let bb = bv / W_VECS;
      var v = vec4<u32>(0u);
      if (cb + bb < p.in_blocks) { v = qw[((cb + bb) * p.slice_rows + min(o0 + oo, p.slice_rows - 1u)) * W_VECS + bv % W_VECS]; }
      ws[(bv * 4u + 0u) * TN_ + oo] = v.x;
      ws[(bv * 4u + 1u) * TN_ + oo] = v.y;
      ws[(bv * 4u + 2u) * TN_ + oo] = v.z;
      ws[(bv * 4u + 3u) * TN_ + oo] = v.w;
    }
    workgroupBarrier();
#ifdef W8
    for (var wj = 0u; wj < TKB_ * 8u; wj++) {  // weight word wj pairs with activation word wj
      var wv: array<u32, RN>;
      for (var j = 0u; j < RN; j++) { wv[j] = ws[wj * TN_ + tx + j * WGX]; }
      for (var i = 0u; i < RM; i++) {
        let a = xs[wj * TM_ + ty + i * WGY];
        for (var j = 0u; j < RN; j++) { acc[i][j] += dot4I8Packed(a, wv[j]); }
      }
    }
#else
    for (var wj = 0u; wj < TKB_ * 4u; wj++) {  // weight word wj pairs with activation words 2wj, 2wj+1
      var lo: array<u32, RN>;
      var hi: array<u32, RN>;
      for (var j = 0u; j < RN; j++) {
        let wv = ws[wj * TN_ + tx + j * WGX];
        lo[j] = (wv << 4u) & LO_MASK;
        hi[j] = wv & LO_MASK;
      }
      for (var i = 0u; i < RM; i++) {
        let a = xs[(2u * wj) * TM_ + ty + i * WGY];
        let b = xs[(2u * wj + 1u) * TM_ + ty + i * WGY];
        for (var j = 0u; j < RN; j++) { acc[i][j] += dot4I8Packed(a, lo[j]) + dot4I8Packed(b, hi[j]); }
      }
    }
#endif
    workgroupBarrier();
  }

  var side: array<array<f32, RN>, RM>;
  for (var i = 0u; i < RM; i++) { for (var j = 0u; j < RN; j++) { side[i][j] = 0.0; } }
#ifdef HAS_LR
  let splits = lr_splits(tokens);
  let c0 = p.out_offset + o0;
  for (var s = 0u; s < min(p.n_segs, MAX_SEGS_); s++) {
    let sg = p.segs[2u * s];
    if (!seg_overlaps(sg, c0, c0 + TN_)) { continue; }
    let lb_off = p.segs[2u * s + 1u].x;
    for (var r0 = 0u; r0 < sg.w; r0 += RC2_) {
      for (var e = lid; e < RC2_ * TM_; e += WGX * WGY) {
        let jj = e / TM_;
        let tt = e % TM_;
        var v = 0.0;
        if (r0 + jj < sg.w && t0 + tt < tokens) { v = t_scaled(t0 + tt, sg.z + r0 + jj, splits); }
        ts[e] = v;
      }
      for (var e = lid; e < RC2_ * TN_; e += WGX * WGY) {
        let jj = e / TN_;
        let oo = e % TN_;
        var v = 0.0;
        if (r0 + jj < sg.w && o0 + oo < p.slice_rows) { v = lb_seg(sg, lb_off, r0 + jj, c0 + oo); }
        lbs[e] = v;
      }
      workgroupBarrier();
      for (var jj = 0u; jj < RC2_; jj++) {
        for (var i = 0u; i < RM; i++) {
          let tv = ts[jj * TM_ + ty + i * WGY];
          for (var j = 0u; j < RN; j++) { side[i][j] = fma(tv, lbs[jj * TN_ + tx + j * WGX], side[i][j]); }
        }
      }
      workgroupBarrier();
    }
  }
#endif
  for (var i = 0u; i < RM; i++) {
    let tok = t0 + ty + i * WGY;
    if (tok >= tokens) { continue; }
    for (var j = 0u; j < RN; j++) {
      let o = o0 + tx + j * WGX;
      if (o < p.slice_rows) { store(tok, o, acc[i][j], side[i][j]); }
    }
  }
}
