// ggml's block-quantized weight formats (the storage of most GGUF files on disk), as laid out in
// llama.cpp's ggml-common.h, and their dequantization. A row of `cols` values is cols / blockSize
// blocks stored back to back; every value below is a little-endian byte offset inside one block.
//
//   Q8_0  (32 values, 34 bytes):  f16 d @0 | i8 q[32] @2                         x = d·q
//   Q4_0  (32 values, 18 bytes):  f16 d @0 | u8 qs[16] @2                        x_j = d·((qs[j] & 15) − 8),
//                                                                               x_{j+16} = d·((qs[j] >> 4) − 8)
//   Q4_K (256 values, 144 bytes): f16 d @0 | f16 dmin @2 | u8 scales[12] @4 | u8 qs[128] @16
//         8 sub-blocks of 32 with 6-bit scale s_i and min m_i packed in `scales` (i < 4: s = sc[i] & 63,
//         m = sc[i+4] & 63; i ≥ 4: s = (sc[i+4] & 15) | (sc[i−4] >> 6) << 4, m = (sc[i+4] >> 4) | (sc[i] >> 6) << 4).
//         Chunk c (0..3) of 64 values reads qs[32c .. 32c+32): its first 32 values are the low nibbles
//         with sub-block 2c, the next 32 the high nibbles with sub-block 2c+1; x = (d·s)·q − dmin·m.
//   Q6_K (256 values, 210 bytes): u8 ql[128] @0 | u8 qh[64] @128 | i8 scales[16] @192 | f16 d @208
//         Two halves h of 128 values (ql += 64h, qh += 32h, scales += 8h); for l in 0..31:
//         q(l)    = (ql[l] & 15)    | ((qh[l] >> 0) & 3) << 4,    scale index l/16
//         q(l+32) = (ql[l+32] & 15) | ((qh[l] >> 2) & 3) << 4,    scale index l/16 + 2
//         q(l+64) = (ql[l] >> 4)    | ((qh[l] >> 4) & 3) << 4,    scale index l/16 + 4
//         q(l+96) = (ql[l+32] >> 4) | ((qh[l] >> 6) & 3) << 4,    scale index l/16 + 6
//         x = (d·scale)·(q − 32).
// Every product above is exact in f32 (at most 24 significant bits), and Q4_K's one subtraction is a
// single rounding, so the f32 values are the same on every adapter and in llama.cpp's own dequantizer.
import { f16BitsToF32 } from './dtype.js';

export const GGML_BLOCK_FORMATS = {
  Q8_0: { blockSize: 32, typeSize: 34 },
  Q4_0: { blockSize: 32, typeSize: 18 },
  Q4_K: { blockSize: 256, typeSize: 144 },
  Q6_K: { blockSize: 256, typeSize: 210 },
} as const;
export type GgmlBlockFormat = keyof typeof GGML_BLOCK_FORMATS;

export function isGgmlBlockFormat(name: string): name is GgmlBlockFormat {
  return Object.hasOwn(GGML_BLOCK_FORMATS, name);
}

/** Bytes of `values` values (a multiple of the block size) in `format`. */
export function ggmlBlockBytes(format: GgmlBlockFormat, values: number): number {
  const f = GGML_BLOCK_FORMATS[format];
  if (values % f.blockSize !== 0) throw new RangeError(`${format}: ${values} values are not whole blocks of ${f.blockSize}`);
  return (values / f.blockSize) * f.typeSize;
}

/** Dequantizes whole blocks of `format` into f32 values (`bytes` must hold exactly `elements` values). */
export function dequantizeGgmlBlocks(format: GgmlBlockFormat, bytes: Uint8Array, elements: number): Float32Array {
  if (bytes.byteLength !== ggmlBlockBytes(format, elements)) {
    throw new RangeError(`${format}: ${bytes.byteLength} bytes do not hold ${elements} values`);
  }
  const out = new Float32Array(elements);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { blockSize, typeSize } = GGML_BLOCK_FORMATS[format];
  const f32 = Math.fround;
  for (let b = 0; b < elements / blockSize; b++) {
    const at = b * typeSize;
    const y = b * blockSize;
    switch (format) {
      case 'Q8_0': {
        const d = f16BitsToF32(v.getUint16(at, true));
        for (let i = 0; i < 32; i++) out[y + i] = d * v.getInt8(at + 2 + i);
        break;
      }
      case 'Q4_0': {
        const d = f16BitsToF32(v.getUint16(at, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[at + 2 + j]!;
          out[y + j] = d * ((q & 15) - 8);
          out[y + j + 16] = d * ((q >> 4) - 8);
        }
        break;
      }
      case 'Q4_K': {
        const d = f16BitsToF32(v.getUint16(at, true));
        const dmin = f16BitsToF32(v.getUint16(at + 2, true));
        const sc = (i: number) => bytes[at + 4 + i]!;
        const scaleMin = (i: number): [number, number] => i < 4
          ? [sc(i) & 63, sc(i + 4) & 63]
          : [(sc(i + 4) & 15) | ((sc(i - 4) >> 6) << 4), (sc(i + 4) >> 4) | ((sc(i) >> 6) << 4)];
        for (let c = 0; c < 4; c++) {
          const [s1, m1] = scaleMin(2 * c);
          const [s2, m2] = scaleMin(2 * c + 1);
          const d1 = f32(d * s1), dm1 = f32(dmin * m1), d2 = f32(d * s2), dm2 = f32(dmin * m2);
          for (let l = 0; l < 32; l++) {
            const q = bytes[at + 16 + 32 * c + l]!;
            out[y + 64 * c + l] = f32(d1 * (q & 15)) - dm1;
            out[y + 64 * c + 32 + l] = f32(d2 * (q >> 4)) - dm2;
          }
        }
        break;
      }
      case 'Q6_K': {
        const d = f16BitsToF32(v.getUint16(at + 208, true));
        for (let h = 0; h < 2; h++) {
          const ql = at + 64 * h, qh = at + 128 + 32 * h, sc = at + 192 + 8 * h, o = y + 128 * h;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const hi = bytes[qh + l]!;
            const a = bytes[ql + l]!, b2 = bytes[ql + l + 32]!;
            const s = (k: number) => f32(d * v.getInt8(sc + is + k));
            out[o + l] = s(0) * (((a & 15) | ((hi & 3) << 4)) - 32);
            out[o + l + 32] = s(2) * (((b2 & 15) | (((hi >> 2) & 3) << 4)) - 32);
            out[o + l + 64] = s(4) * (((a >> 4) | (((hi >> 4) & 3) << 4)) - 32);
            out[o + l + 96] = s(6) * (((b2 >> 4) | (((hi >> 6) & 3) << 4)) - 32);
          }
        }
        break;
      }
    }
  }
  return out;
}
