// Kernel A of the quantized linear: per-token activation quantization and the start of the side path.
//   x      f32 [tokens, K]                     (bound for exactly `tokens` rows)
//   inv_m  f32 [K]  fl(1/m), SMOOTH only       x̃ = x · inv_m (a correctly rounded multiply, reproducible)
//   norm_w f32 [K], NORM only: the RMSNorm before this linear runs here. x is then the residual stream
//          and the linear's input is x · rstd · norm_w with rstd = inverseSqrt(mean(x²) + eps), the
//          same products in the same order as kernels/rmsnorm.wgsl (x̃ = that · inv_m with SMOOTH)
//   rstd   f32 [tokens], NORM only: each row's rstd as used (the CPU reference quantizes with it)
// SWIGLU: x is gate|up f32 [tokens, 2·K] (gate then up per row, the fused gate|up output) and the
//          linear's input is silu(gate) · up (silu_mul.wgsl, as the swiglu kernel computes it): down_proj
//          quantizes act without it being written.
//   xq     u32 [tokens, 8·ceil(K/32)]          int8 lanes, 4 per word in k order, zero past K (QMAX ≤ 127)
//   sx     f32 [tokens]                        s_x = RN(absmax / QMAX); 0 for an all-zero row
//   la     [chunks][K][RC] (f16 with LR_F16, int8 lanes 4 to a u32 with LR_I8, else f32), HAS_LR only:
//          L_A regrouped in RC-column chunks, zero-padded, so that one k reads RC contiguous values and
//          neighbouring k are neighbours
//   la_scale f32 [chunks·RC], LR_I8 only: L_A's scale per rank column (zero past the rank)
//   tpart  f32 [tokens][splits][chunks·RC], HAS_LR only: partial t = x̃·L_A over this split's k range
// Grid: (splits, tokens [, z]). Workgroup (s, t) computes the whole row's absmax (every split reads
// the row; it is small), then quantizes and multiplies by L_A only its own k range of
// ceil(blocks / splits) 32-wide blocks, so a single decode token still spreads over many workgroups.
// Quantization: q = clamp(round(x̃ · inv), -QMAX, QMAX), inv = RN(QMAX / absmax), round half to even.
// Both divisions are done by `div_rn` (integer long division, correctly rounded), because WGSL allows
// 2.5 ULP for `/`: this keeps s_x and q bit-identical on every adapter and to the CPU reference.
// Rows whose absmax is below 2^-100 (including all-zero rows) get s_x = 0 and q = 0.
#ifdef LR_F16
enable f16;
#endif
#ifdef SUBGROUPS
enable subgroups;
#endif

struct Params {
  in_features: u32,       // K, in elements
  words_per_row: u32,     // xq row stride, in u32 words (8 per 32-block)
  rank_chunks: u32,       // ceil(rank / RC)
  eps: f32,               // RMSNorm epsilon (NORM only)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<storage, read_write> sx: array<f32>;
#ifdef SMOOTH
@group(0) @binding(4) var<storage, read> inv_m: array<f32>;
#endif
#ifdef HAS_LR
#ifdef LR_F16
@group(0) @binding(5) var<storage, read> la: array<vec4<f16>>;
#else
#ifdef LR_I8
@group(0) @binding(5) var<storage, read> la: array<u32>;
@group(0) @binding(9) var<storage, read> la_scale: array<f32>;
#else
@group(0) @binding(5) var<storage, read> la: array<vec4<f32>>;
#endif
#endif
@group(0) @binding(6) var<storage, read_write> tpart: array<f32>;
#endif
#ifdef NORM
@group(0) @binding(7) var<storage, read> norm_w: array<f32>;
@group(0) @binding(8) var<storage, read_write> rstd: array<f32>;
var<private> row_rstd: f32;
var<workgroup> ss_red: array<f32, WG>;
#endif

const WG_: u32 = WG;
const QMAX_F: f32 = f32(QMAX);
const TINY: f32 = 7.8886091e-31;  // 2^-100: smaller row maxima count as zero rows (keeps div_rn in normal range)

var<workgroup> row_max_bits: atomic<u32>;
#ifdef HAS_LR
var<workgroup> red: array<vec4<f32>, WG * (RC / 4)>;
#endif

#ifdef HAS_LR
// RC/4-th part of L_A's row k in chunk c: 4 neighbouring rank columns, widened to f32 (LR_I8: one
// word of 4 int8 lanes, the column scales applied to the reduced sum instead).
fn la_vec(i: u32) -> vec4<f32> {
#ifdef LR_I8
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(la[i]) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
#else
  return vec4<f32>(la[i]);
#endif
}
#endif

#include "silu_mul.wgsl"
#include "smoothed_input.wgsl"

#include "div_rn.wgsl"
#include "act_scales.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>
#ifdef SUBGROUPS
        , @builtin(subgroup_invocation_id) sg_lane: u32
#endif
        ) {
  let split = wid.x;
  let t = wid.y + wid.z * nwg.y;
  if (t >= arrayLength(&sx)) { return; }
  let K = p.in_features;
#ifdef SWIGLU
  let base = t * 2u * K;
#else
  let base = t * K;
#endif

#ifdef NORM
  // 0. RMSNorm: mean of x² over the whole row (every split reads it), fixed-order tree reduction.
  var ss = 0.0;
  for (var k = lid; k < K; k += WG_) { let v = x[base + k]; ss += v * v; }
  ss_red[lid] = ss;
  workgroupBarrier();
  for (var h = WG_ / 2u; h > 0u; h >>= 1u) {
    if (lid < h) { ss_red[lid] += ss_red[lid + h]; }
    workgroupBarrier();
  }
  row_rstd = inverseSqrt(ss_red[0] / f32(K) + p.eps);
  if (split == 0u && lid == 0u) { rstd[t] = row_rstd; }
#endif

  // 1. absmax of the whole row. Non-negative floats order like their bit patterns, so an integer
  //    atomicMax is an exact, order-independent (deterministic) float max.
  var m = 0.0;
  for (var k = lid; k < K; k += WG_) { m = max(m, abs(xs(base, k))); }
#ifdef SUBGROUPS
  m = subgroupMax(m);
  if (sg_lane == 0u) { atomicMax(&row_max_bits, bitcast<u32>(m)); }
#else
  atomicMax(&row_max_bits, bitcast<u32>(m));
#endif
  workgroupBarrier();
  let amax = bitcast<f32>(atomicLoad(&row_max_bits));
  let scales = act_scales(amax);
  let s = scales.x;
  let inv = scales.y;
  if (split == 0u && lid == 0u) { sx[t] = s; }

  // 2. quantize this split's blocks, 4 lanes per word.
  let nblocks = p.words_per_row / 8u;
  let per_split = (nblocks + nwg.x - 1u) / nwg.x;
  let b0 = split * per_split;
  let b1 = min(b0 + per_split, nblocks);
  for (var w = b0 * 8u + lid; w < b1 * 8u; w += WG_) {
    var q = vec4<i32>(0);
    for (var i = 0u; i < 4u; i++) {
      let k = w * 4u + i;
      if (k < K) { q[i] = i32(clamp(round(xs(base, k) * inv), -QMAX_F, QMAX_F)); }
    }
    xq[t * p.words_per_row + w] = pack4xI8(q);
  }

#ifdef HAS_LR
  // 3. partial t = x̃[k0:k1] · L_A[k0:k1, :], RC columns at a time, fixed-order tree reduction.
  let k0 = b0 * 32u;
  let k1 = min(b1 * 32u, K);
  let rpad = p.rank_chunks * RC;
  let out_base = (t * nwg.x + split) * rpad;
  for (var c = 0u; c < p.rank_chunks; c++) {
    var acc: array<vec4<f32>, RC / 4>;
    for (var i = 0u; i < RC / 4u; i++) { acc[i] = vec4<f32>(0.0); }
    for (var k = k0 + lid; k < k1; k += WG_) {
      let xv = xs(base, k);
      let row = (c * K + k) * (RC / 4u);
      for (var i = 0u; i < RC / 4u; i++) { acc[i] += xv * la_vec(row + i); }
    }
    for (var i = 0u; i < RC / 4u; i++) { red[i * WG_ + lid] = acc[i]; }
    workgroupBarrier();
    for (var h = WG_ / 2u; h > 0u; h >>= 1u) {
      if (lid < h) {
        for (var i = 0u; i < RC / 4u; i++) { red[i * WG_ + lid] += red[i * WG_ + lid + h]; }
      }
      workgroupBarrier();
    }
    if (lid < RC / 4u) {
#ifdef LR_I8
      // The sum is over int8 values: column j's scale once here, not per element.
      let v = red[lid * WG_] * vec4<f32>(la_scale[c * RC + lid * 4u], la_scale[c * RC + lid * 4u + 1u], la_scale[c * RC + lid * 4u + 2u], la_scale[c * RC + lid * 4u + 3u]);
#else
      let v = red[lid * WG_];
#endif
      let j = out_base + c * RC + lid * 4u;
      tpart[j] = v.x;
      tpart[j + 1u] = v.y;
      tpart[j + 2u] = v.z;
      tpart[j + 3u] = v.w;
    }
    workgroupBarrier();
  }
#endif
}
