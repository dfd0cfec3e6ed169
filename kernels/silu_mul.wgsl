// SwiGLU's elementwise product silu(g) · u = g / (1 + exp(-g)) · u: one definition for the swiglu
// kernel and kernel A's SWIGLU input (down_proj quantizing act straight from gate|up), so both compute
// the same f32 values. exp overflow for very negative g gives g / inf = -0, the right limit.
fn silu_mul(g: f32, u: f32) -> f32 {
  return g / (1.0 + exp(-g)) * u;
}
