// Load-time weight conversion: bfloat16 rows → f32 or f16 rows on the GPU, so the host only ever holds
// the raw bf16 bytes of one chunk (runtime/weight-upload.ts). Row r, column c of the chunk:
//   src  u32 [ceil(rows·cols / 2)]: bf16 pairs, little-endian (element i = half i & 1 of word i >> 1)
//   dst  u32 words from word dst_offset: OUT_F16: 2 f16 per word [rows, dst_stride]; else f32 bits.
// Columns c ≥ cols (row padding up to dst_stride) are written as +0.
//   bf16 → f32 is exact (bf16 is the upper half of an f32).
//   bf16 → f16 rounds to nearest, ties to even (integer arithmetic, so every adapter gives the same
//   bits; WGSL's own f32→f16 conversion leaves the rounding direction to the implementation):
//   |x| ≥ 65520 → ±Inf, results below 2^-14 become f16 subnormals, below 2^-25 ±0, NaN stays a quiet NaN.
// One invocation per output word; 2-D grid: index = (wid.x + wid.y·nwg.x)·WG + lid.

struct Params {
  rows: u32,
  cols: u32,
  dst_stride: u32, // output elements per row (≥ cols)
  dst_offset: u32, // first output word
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

/** bf16 bits of output element e of the chunk (0 for row padding). */
fn bf16_at(e: u32) -> u32 {
  let r = e / p.dst_stride;
  let c = e - r * p.dst_stride;
  if (r >= p.rows || c >= p.cols) { return 0u; }
  let i = r * p.cols + c;
  let w = src[i >> 1u];
  return select(w & 0xffffu, w >> 16u, (i & 1u) == 1u);
}

/** f32 bits of output element e (bf16 is the upper half of an f32). */
fn value_bits(e: u32) -> u32 {
  return bf16_at(e) << 16u;
}

#include "widen_store.wgsl"
