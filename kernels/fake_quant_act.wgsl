// Activation fake quantization for the simulated quantized linear (runtime/simulated-linear.ts).
// Per token, with kernel A's quantizer (w4a8_act_quant.wgsl) bit for bit:
//   x̃ = x · inv_m (SMOOTH), s_x = RN(absmax / QMAX), q = clamp(round(x̃ · RN(QMAX / absmax)), ±QMAX)
// and then, in f32,
//   z[t] = [ s_x · q  (K values) | x̃ · L_A  (RANK values) ]
// so one dense f32 matmul with [Ŵ | L_Bᵀ] yields s_x·Σ_k q_k·Ŵ[o,k] + (x̃·L_A)·L_B.
//   x   f32 [tokens, K]       z   f32 [tokens, K + RANK] (bound for exactly `tokens` rows)
//   la  f32 [K, RANK] row-major, HAS_LR only
// Grid: (tokens over x [, y]); one workgroup per token.
struct Params {
  in_features: u32,   // K
  rank: u32,
  z_stride: u32,      // K + rank
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
#ifdef SMOOTH
@group(0) @binding(3) var<storage, read> inv_m: array<f32>;
#endif
#ifdef HAS_LR
@group(0) @binding(4) var<storage, read> la: array<f32>;
#endif

const WG_: u32 = WG;
const QMAX_F: f32 = f32(QMAX);
const TINY: f32 = 7.8886091e-31;  // 2^-100, as in kernel A: smaller row maxima count as zero rows

var<workgroup> row_max_bits: atomic<u32>;

#include "div_rn.wgsl"
#include "act_scales.wgsl"

#include "smoothed_input.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= arrayLength(&z) / p.z_stride) { return; }
  let K = p.in_features;
  let base = t * K;
  let zb = t * p.z_stride;

  var m = 0.0;
  for (var k = lid; k < K; k += WG_) { m = max(m, abs(xs(base, k))); }
  atomicMax(&row_max_bits, bitcast<u32>(m));  // non-negative floats order like their bits
  workgroupBarrier();
  let amax = bitcast<f32>(atomicLoad(&row_max_bits));
  let scales = act_scales(amax);
  let s = scales.x;
  let inv = scales.y;
  for (var k = lid; k < K; k += WG_) {
    z[zb + k] = s * clamp(round(xs(base, k) * inv), -QMAX_F, QMAX_F);
  }

#ifdef HAS_LR
  // One L_A column per thread, summed in k order (the side path stays unquantized, as in the kernels).
  for (var j = lid; j < p.rank; j += WG_) {
    var acc = 0.0;
    for (var k = 0u; k < K; k++) { acc += xs(base, k) * la[k * p.rank + j]; }
    z[zb + K + j] = acc;
  }
#endif
}
