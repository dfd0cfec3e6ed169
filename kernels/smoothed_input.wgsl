// Element k of token row `base` of the activation input, smoothed by Activation Smoothing's fl(1/m)
// when SMOOTH is defined: shared by the fused act-quant kernel and its f32 fake-quant twin so both
// quantize the same x̃ (#include "smoothed_input.wgsl" after the x / inv_m bindings).
// With NORM (kernel A only), x is the residual stream and the input is x · rstd · norm_w first.
fn xs(base: u32, k: u32) -> f32 {
#ifdef NORM
  let xv = x[base + k] * row_rstd * norm_w[k];
#else
  let xv = x[base + k];
#endif
#ifdef SMOOTH
  return xv * inv_m[k];
#else
  return xv;
#endif
}
