import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { planConvertBf16 } from '../../kernels/convert_bf16.js';
import { convertBf16Ref } from '../../kernels/convert_bf16.ref.js';
import { f32ToBf16Bits, f16BitsToF32 } from '../../core/dtype.js';
import { runPlan, seededValues } from './run-plan.js';

const ALL_BF16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

async function convert(src: Uint16Array, rows: number, cols: number, dstStride: number, to: 'f32' | 'f16', dstOffsetWords = 0) {
  const gpu = await testGpu();
  const plan = planConvertBf16({ rows, cols, dstStride, dstOffsetWords, to });
  const words = dstOffsetWords + (to === 'f32' ? rows * dstStride : Math.ceil((rows * dstStride) / 2));
  const dst = new Uint32Array(words).fill(0xdeadbeef); // a sentinel: words before the offset must stay
  const res = await runPlan(gpu, plan, { src, dst }, ['dst']);
  return new Uint32Array(res.dst!);
}

describe('convert_bf16 (load-time bf16 → f32 / f16 on the GPU)', () => {
  it('bf16 → f32 is exact for all 65536 bit patterns', async () => {
    const out = await convert(ALL_BF16, 256, 256, 256, 'f32');
    const ref = convertBf16Ref(ALL_BF16, 256, 256, 256, 'f32') as Uint32Array;
    expect(Array.from(out)).toEqual(Array.from(ref));
  });

  it('bf16 → f16 rounds to nearest even, bit for bit with the CPU reference, for all 65536 patterns', async () => {
    const out = await convert(ALL_BF16, 256, 256, 256, 'f16');
    const got = new Uint16Array(out.buffer);
    const ref = convertBf16Ref(ALL_BF16, 256, 256, 256, 'f16') as Uint16Array;
    const bad: string[] = [];
    for (let i = 0; i < 65536 && bad.length < 5; i++) if (got[i] !== ref[i]) bad.push(`bf16 0x${i.toString(16)}: got 0x${got[i]!.toString(16)}, want 0x${ref[i]!.toString(16)}`);
    expect(bad).toEqual([]);
  });

  it('overflow, subnormal and tie cases give the IEEE round-to-nearest-even results', async () => {
    const cases: Array<[number, number]> = [
      [65280, 65280], // the largest bf16 below f16's max is exact
      [65536, Infinity], // beyond f16's range (≥ 65520 after rounding): +Inf
      [-1e30, -Infinity],
      [2 ** -14, 2 ** -14], // smallest normal f16
      [2 ** -20, 2 ** -20], // f16 subnormal, exact
      [3 * 2 ** -24, 3 * 2 ** -24],
      [2 ** -25, 0], // half the smallest subnormal: a tie, rounds to even 0
      [1.5 * 2 ** -25, 2 ** -24], // above the tie: rounds up to the smallest subnormal
      [2 ** -26, 0], // underflow
      [-(2 ** -30), -0],
      [1.5 * 2 ** -24, 2 * 2 ** -24], // tie between 1 and 2 subnormal units: to even 2
      [2.5 * 2 ** -24, 2 * 2 ** -24], // tie between 2 and 3: to even 2
      [1 + 2 ** -7, 1 + 2 ** -7], // normal range: exact (7 mantissa bits fit in 10)
    ];
    const src = Uint16Array.from(cases, ([x]) => f32ToBf16Bits(x));
    for (const [i, [x]] of cases.entries()) expect(f32ToBf16Bits(x), `input ${x} is a bf16 value`).toBe(src[i]);
    const out = await convert(src, 1, cases.length, cases.length + 1, 'f16');
    const got = Array.from(new Uint16Array(out.buffer).subarray(0, cases.length), f16BitsToF32);
    expect(got.map((v) => Object.is(v, -0) ? '-0' : v)).toEqual(cases.map(([, y]) => (Object.is(y, -0) ? '-0' : y)));
    const nan = await convert(Uint16Array.of(0x7fc0, 0xffc1), 1, 2, 2, 'f16');
    expect(Number.isNaN(f16BitsToF32(nan[0]! & 0xffff))).toBe(true);
    expect(Number.isNaN(f16BitsToF32(nan[0]! >>> 16))).toBe(true);
  });

  for (const to of ['f32', 'f16'] as const) {
    it(`pads rows to the stride with zeros and writes from the word offset (${to}, odd columns)`, async () => {
      const [rows, cols, stride, offset] = [6, 7, 8, 12];
      const src = Uint16Array.from(seededValues(rows * cols, 5, 3), f32ToBf16Bits);
      const out = await convert(src, rows, cols, stride, to, offset);
      expect(Array.from(out.subarray(0, offset))).toEqual(Array(offset).fill(0xdeadbeef));
      const ref = convertBf16Ref(src, rows, cols, stride, to);
      const got = to === 'f32' ? out.subarray(offset) : new Uint16Array(out.buffer, offset * 4, rows * stride);
      expect(Array.from(got)).toEqual(Array.from(ref));
    });
  }
});
