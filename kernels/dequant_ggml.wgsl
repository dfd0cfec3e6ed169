// Load-time dequantization of GGUF block-quantized weight rows (Q8_0, Q4_0, Q4_K, Q6_K; one format per
// pipeline, chosen by define) → f32 or f16 rows on the GPU, so the host only holds the raw blocks of one
// chunk (runtime/weight-upload.ts). The block layouts and formulas are in core/ggml-blocks.ts.
//   src  u32 words of the chunk's raw bytes: row r starts at byte r·row_bytes, blocks back to back
//        (blocks are 18/34/144/210 bytes, so values are fetched byte by byte from the words).
//   dst  u32 words from word dst_offset: OUT_F16: 2 f16 per word [rows, dst_stride]; else f32 bits.
// Columns c ≥ cols (row padding up to dst_stride) are written as +0. Every product is exact in f32 and
// Q4_K's subtraction rounds once, so the f32 values equal the CPU reference bit for bit; f16 output
// rounds them to nearest even in integer arithmetic (f16_bits.wgsl).
// One invocation per output word; 2-D grid: index = (wid.x + wid.y·nwg.x)·WG + lid.

struct Params {
  rows: u32,
  cols: u32,
  dst_stride: u32, // output elements per row (≥ cols)
  dst_offset: u32, // first output word
  row_bytes: u32,  // source bytes per row
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn byte_at(o: u32) -> u32 {
  return (src[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
}

fn i8_at(o: u32) -> i32 {
  return (i32(byte_at(o)) << 24u) >> 24u;
}

/** f16 bits → f32, exactly (subnormals included), without relying on unpack2x16float's denormal handling. */
fn f16_at(o: u32) -> f32 {
  let h = byte_at(o) | (byte_at(o + 1u) << 8u);
  let sign = select(1.0, -1.0, (h & 0x8000u) != 0u);
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) { return sign * f32(m) * 5.9604644775390625e-8; } // m · 2^-24
  if (e == 31u) { return bitcast<f32>(((h & 0x8000u) << 16u) | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(((h & 0x8000u) << 16u) | ((e + 112u) << 23u) | (m << 13u));
}

#ifdef FMT_Q8_0
const BLOCK = 32u;
const TYPE_SIZE = 34u;
fn block_value(b: u32, i: u32) -> f32 {
  return f16_at(b) * f32(i8_at(b + 2u + i));
}
#endif

#ifdef FMT_Q4_0
const BLOCK = 32u;
const TYPE_SIZE = 18u;
fn block_value(b: u32, i: u32) -> f32 {
  let q = byte_at(b + 2u + (i & 15u));
  let nib = select(q & 15u, q >> 4u, i >= 16u);
  return f16_at(b) * f32(i32(nib) - 8);
}
#endif

#ifdef FMT_Q4_K
const BLOCK = 256u;
const TYPE_SIZE = 144u;
/** 6-bit scale (x) and min (y) of sub-block j (0..7). */
fn scale_min(b: u32, j: u32) -> vec2u {
  let s = b + 4u;
  if (j < 4u) { return vec2u(byte_at(s + j) & 63u, byte_at(s + j + 4u) & 63u); }
  let hi = byte_at(s + j + 4u);
  return vec2u((hi & 15u) | ((byte_at(s + j - 4u) >> 6u) << 4u), (hi >> 4u) | ((byte_at(s + j) >> 6u) << 4u));
}
fn block_value(b: u32, i: u32) -> f32 {
  let chunk = i / 64u;
  let within = i - chunk * 64u;
  let high = within >= 32u;
  let l = within & 31u;
  let sm = scale_min(b, 2u * chunk + select(0u, 1u, high));
  let q = byte_at(b + 16u + 32u * chunk + l);
  let nib = select(q & 15u, q >> 4u, high);
  let d1 = f16_at(b) * f32(sm.x);
  let m1 = f16_at(b + 2u) * f32(sm.y);
  return d1 * f32(nib) - m1;
}
#endif

#ifdef FMT_Q6_K
const BLOCK = 256u;
const TYPE_SIZE = 210u;
fn block_value(b: u32, i: u32) -> f32 {
  let h = i / 128u;
  let within = i - h * 128u;
  let quarter = within / 32u; // 0..3: which of the four values q(l), q(l+32), q(l+64), q(l+96)
  let l = within & 31u;
  let ql = byte_at(b + 64u * h + l + select(0u, 32u, (quarter & 1u) == 1u));
  let low = select(ql & 15u, ql >> 4u, quarter >= 2u);
  let high = (byte_at(b + 128u + 32u * h + l) >> (2u * quarter)) & 3u;
  let q = i32(low | (high << 4u)) - 32;
  let scale = f16_at(b + 208u) * f32(i8_at(b + 192u + 8u * h + l / 16u + 2u * quarter));
  return scale * f32(q);
}
#endif

/** f32 bits of output element e of the chunk (+0 for row padding). */
fn value_bits(e: u32) -> u32 {
  let r = e / p.dst_stride;
  let c = e - r * p.dst_stride;
  if (r >= p.rows || c >= p.cols) { return 0u; }
  let blk = c / BLOCK;
  return bitcast<u32>(block_value(r * p.row_bytes + blk * TYPE_SIZE, c - blk * BLOCK));
}

#include "widen_store.wgsl"
