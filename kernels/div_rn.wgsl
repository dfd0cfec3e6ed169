// Correctly rounded f32 division for WGSL, whose `/` may be off by 2.5 ULP: shared by the kernels
// whose quantized values must match the CPU reference bit for bit (#include "div_rn.wgsl").
// a / b rounded to nearest even, for positive normal a, b with a normal quotient.
fn div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  var e = i32(ua >> 23u) - i32(ub >> 23u) + 127;
  var r = (ua & 0x7fffffu) | 0x800000u;
  let d = (ub & 0x7fffffu) | 0x800000u;
  if (r < d) { r = r << 1u; e = e - 1; }
  var q = 0u;  // 24 quotient bits and one rounding bit
  for (var i = 0u; i < 25u; i++) {
    q = q << 1u;
    if (r >= d) { r = r - d; q = q | 1u; }
    r = r << 1u;
  }
  let round_bit = q & 1u;
  q = q >> 1u;
  if (round_bit == 1u && (r != 0u || (q & 1u) == 1u)) {
    q = q + 1u;
    if (q == 0x1000000u) { q = 0x800000u; e = e + 1; }
  }
  return bitcast<f32>((u32(e) << 23u) | (q & 0x7fffffu));
}
