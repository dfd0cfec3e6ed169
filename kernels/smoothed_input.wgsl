// Element k of token row `base` of the activation input, smoothed by Activation Smoothing's fl(1/m)
// when SMOOTH is defined: shared by the fused act-quant kernel and its f32 fake-quant twin so both
// quantize the same x̃ (#include "smoothed_input.wgsl" after the x / inv_m bindings).
fn xs(base: u32, k: u32) -> f32 {
#ifdef SMOOTH
  return x[base + k] * inv_m[k];
#else
  return x[base + k];
#endif
}
