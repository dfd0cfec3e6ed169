// The store of the load-time converters (convert_bf16, dequant_ggml): one invocation per output word
// on a 2-D grid, index = (wid.x + wid.y·nwg.x)·WG + lid; OUT_F16 packs 2 f16 per word (rounded by
// f16_bits), else the f32 bits. Include after `p` (rows, dst_stride, dst_offset), `dst` and
// `fn value_bits(e: u32) -> u32` (f32 bits of output element e, +0 for row padding).
#include "f16_bits.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.x + wid.y * nwg.x) * WG + lid;
  let total = p.rows * p.dst_stride;
#ifdef OUT_F16
  if (2u * w >= total) { return; }
  let lo = f16_bits(value_bits(2u * w));
  let hi = select(0u, f16_bits(value_bits(2u * w + 1u)), 2u * w + 1u < total);
  dst[p.dst_offset + w] = lo | (hi << 16u);
#else
  if (w >= total) { return; }
  dst[p.dst_offset + w] = value_bits(w);
#endif
}
