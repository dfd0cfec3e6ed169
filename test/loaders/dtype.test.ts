import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32, bf16ToF32Array, bytesToF32, f16BitsToF32, f16ToF32Array, f32ToBf16Array, f32ToBf16Bits,
  f32ToF16Array, f32ToF16Bits,
} from '../../core/dtype.js';

/** Reference f32 -> f16 by search: the nearest f16 value, ties to the even bit pattern (plain and slow). */
function nearestF16(x: number, finite: Float64Array): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65520 is the midpoint between 65504 (max) and the next power: rounds to Inf
  let lo = 0, hi = 0x7bff;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (finite[mid]! <= a) lo = mid; else hi = mid - 1; }
  if (lo === 0x7bff || finite[lo] === a) return sign | lo;
  const dLo = a - finite[lo]!, dHi = finite[lo + 1]! - a;
  return sign | (dLo < dHi || (dLo === dHi && (lo & 1) === 0) ? lo : lo + 1);
}

describe('f16 / bf16 <-> f32', () => {
  it('decodes every f16 bit pattern exactly and encodes it back unchanged', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f32 = f16ToF32Array(all);
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    const back = f32ToF16Array(f32);
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const ok = isNaN16 ? Number.isNaN(f32[h]!) && (back[h]! & 0x7c00) === 0x7c00 && (back[h]! & 0x3ff) !== 0 : back[h] === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds f32 to the nearest f16, ties to even (seeded values, midpoints, subnormals, overflow)', () => {
    const finite = new Float64Array(0x7c00).map((_, i) => f16BitsToF32(i));
    const values: number[] = [65504, 65519.99, 65520, 1e9, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -24 * 1.5, 2 ** -24 * 2.5, 6.1e-5];
    // Exact midpoints between neighbours, both parities, normal and subnormal.
    for (const h of [0x0001, 0x0002, 0x03fe, 0x03ff, 0x3c00, 0x3c01, 0x5555, 0x7bfe]) values.push((finite[h]! + finite[h + 1]!) / 2);
    let seed = 12345; // xorshift, seed 12345
    const rand = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 2 ** 32; };
    for (let i = 0; i < 20000; i++) values.push((rand() - 0.5) * 2 ** (Math.floor(rand() * 40) - 26));
    const wrong: string[] = [];
    for (const v of values) {
      for (const x of [Math.fround(v), -Math.fround(v)]) {
        if (f32ToF16Bits(x) !== nearestF16(x, finite)) wrong.push(`${x}: ${f32ToF16Bits(x)} vs ${nearestF16(x, finite)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(f32ToF16Bits(NaN) & 0x7e00).toBe(0x7e00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
  });

  it('bf16: exact widening, round-to-nearest-even narrowing, NaN kept', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc049)).toBe(Math.fround(-3.140625));
    const f32 = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -0, 3.4e38, NaN]);
    // bf16 keeps 7 mantissa bits: 1+2^-8 is a tie -> even 0x3f80; 1+2^-7+2^-8 is a tie -> even 0x3f82;
    // just above a tie rounds up.
    expect([...f32ToBf16Array(f32)]).toEqual([0x3f80, 0x3f82, 0x3f81, 0x8000, 0x7f80, f32ToBf16Bits(NaN)]);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    expect(f32ToBf16Bits(Math.fround(3.4e38))).toBe(0x7f80); // rounds past the largest bf16 to Inf
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16Array(bf16ToF32Array(all));
    const wrong = [...all].filter((h) => !Number.isNaN(bf16BitsToF32(h)) && back[h] !== h);
    expect(wrong).toEqual([]);
  });

  it('bytesToF32 reads little-endian bytes of each dtype, aligned or not', () => {
    const bytes = new Uint8Array([0, 0x3c, 0, 0xc0, 0x80, 0x3f]);
    expect([...bytesToF32(bytes.subarray(0, 4), 'f16')]).toEqual([1, -2]);
    expect([...bytesToF32(bytes.subarray(1, 5), 'f16')]).toEqual([f16BitsToF32(0x003c), f16BitsToF32(0x80c0)]);
    expect([...bytesToF32(bytes.subarray(4, 6), 'bf16')]).toEqual([1]);
    expect([...bytesToF32(new Uint8Array(new Float32Array([1.5, -2]).buffer), 'f32')]).toEqual([1.5, -2]);
    expect(() => bytesToF32(bytes.subarray(0, 3), 'f16')).toThrow(/whole number/);
  });
});
