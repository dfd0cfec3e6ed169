// f32 bit pattern → f16 bits, rounded to nearest even in integer arithmetic, so every adapter gives the
// same bits (WGSL's own f32→f16 conversion leaves the rounding direction to the implementation):
// |x| ≥ 65520 → ±Inf, results below 2^-14 become f16 subnormals, below 2^-25 ±0, NaN stays a quiet NaN.
// Shared by the load-time converters (convert_bf16, dequant_ggml) through widen_store.wgsl.

/** The same steps as core/dtype.ts f32ToF16Bits. */
fn f16_bits(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let exp = i32((x >> 23u) & 0xffu);
  var mant = x & 0x7fffffu;
  if (exp == 255) { return sign | 0x7c00u | select(0u, 0x200u | (mant >> 13u), mant != 0u); }
  let e = exp - 112; // rebias 127 → 15
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rest = mant & ((1u << shift) - 1u);
    var out = mant >> shift;
    if (rest > half || (rest == half && (out & 1u) == 1u)) { out = out + 1u; }
    return sign | out; // a carry into bit 10 is the smallest normal, as it should be
  }
  var out = (u32(e) << 10u) | (mant >> 13u);
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (out & 1u) == 1u)) { out = out + 1u; } // may carry into Inf
  return sign | out;
}
