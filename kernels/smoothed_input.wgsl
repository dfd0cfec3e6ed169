// Element k of token row `base` of the activation input, smoothed by Activation Smoothing's fl(1/m)
// when SMOOTH is defined: shared by the fused act-quant kernel and its f32 fake-quant twin so both
// quantize the same x̃ (#include "smoothed_input.wgsl" after the x / inv_m bindings).
// With NORM (kernel A only), x is the residual stream and the input is x · rstd · norm_w first; with
// SWIGLU (kernel A only), x is gate|up ([tokens, 2·K], `base` its row start) and the input silu(g)·u.
fn xs(base: u32, k: u32) -> f32 {
#ifdef NORM
  let xv = x[base + k] * row_rstd * norm_w[k];
#else
#ifdef SWIGLU
  let xv = silu_mul(x[base + k], x[base + p.in_features + k]);
#else
  let xv = x[base + k];
#endif
#endif
#ifdef SMOOTH
  return xv * inv_m[k];
#else
  return xv;
#endif
}
