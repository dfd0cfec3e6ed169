// Portable conversions between f32 and the 16-bit float formats weights arrive in (IEEE f16, bfloat16).
// Bit-level, no Float16Array (Node 20 lacks it); f32 -> 16-bit rounds to nearest, ties to even, as
// PyTorch and the GPU do, so a converted checkpoint matches one written by torch bit for bit.
import type { TensorDType, TensorRef } from './model.js';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f16 bits -> f32, exact for every input (subnormals, infinities and NaN payloads included). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f32 bit pattern -> f16 bits, round to nearest even; overflow gives ±Inf, NaN stays a (quiet) NaN. */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the mantissa with its implicit bit into place, then round.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && (out & 1))) out += 1;
    return sign | out; // a carry into bit 10 correctly yields the smallest normal
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out += 1; // a carry may round up to Inf, as it should
  return sign | out;
}

/** f32 -> f16 bits, round to nearest even. */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToF16Bits(u32Scratch[0]!);
}

/** bf16 bits -> f32 (exact: bf16 is the top half of an f32). */
export function bf16BitsToF32(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0]!;
}

function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return ((x >>> 16) | 0x40) & 0xffff; // keep NaN a NaN
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** f32 -> bf16 bits, round to nearest even. */
export function f32ToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToBf16Bits(u32Scratch[0]!);
}

let f16Table: Float32Array | undefined;
/** All 65536 f16 values as f32 (256 KiB), built on first use: a table lookup beats bit fiddling per element. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

export function f16ToF32Array(src: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

export function f32ToF16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

export function bf16ToF32Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

export function f32ToBf16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

export const DTYPE_BYTES: Record<TensorDType, number> = { f32: 4, f16: 2, bf16: 2 };

/** Little-endian tensor bytes of any weight dtype -> f32 values (copies when the bytes are unaligned). */
export function bytesToF32(bytes: Uint8Array, dtype: TensorDType): Float32Array {
  const width = DTYPE_BYTES[dtype];
  if (bytes.byteLength % width !== 0) throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} values`);
  const aligned = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  if (dtype === 'f32') return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  return dtype === 'f16' ? f16ToF32Array(halves) : bf16ToF32Array(halves);
}

/** Reads a tensor and widens it to f32, whatever its stored dtype. */
export function readTensorF32(t: TensorRef): Float32Array {
  return bytesToF32(t.read(), t.dtype);
}
