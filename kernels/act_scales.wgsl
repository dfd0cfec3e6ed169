// Per-token activation scales from a row's absmax: s = RN(absmax / QMAX) (the dequantization scale)
// and inv = RN(QMAX / absmax) (what x̃ is multiplied by before rounding); both 0 for rows whose absmax
// is below TINY (2^-100, zero rows; keeps div_rn in its normal range). One definition for the fused
// act-quant kernel and its fake-quant twin, so both pick the same integers. Needs QMAX_F, TINY and
// div_rn.wgsl before it.
fn act_scales(amax: f32) -> vec2<f32> {
  if (amax < TINY) { return vec2<f32>(0.0, 0.0); }
  return vec2<f32>(div_rn(amax, QMAX_F), div_rn(QMAX_F, amax));
}
