// GGUF block formats: blocks written byte by byte from llama.cpp's documented layouts (ggml-common.h)
// with values worked out by hand, the CPU dequantizer (core/ggml-blocks.ts) against them, and the GPU
// kernel (dequant_ggml.wgsl) bit for bit against the CPU reference for every format, f32 and f16.
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { f16BitsToF32, f32ToF16Bits } from '../../core/dtype.js';
import { dequantizeGgmlBlocks, GGML_BLOCK_FORMATS, type GgmlBlockFormat } from '../../core/ggml-blocks.js';
import { planDequantGgml } from '../../kernels/dequant_ggml.js';
import { dequantGgmlRef } from '../../kernels/dequant_ggml.ref.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../../loaders/gguf-writer.js';
import { runPlan, seededValues } from './run-plan.js';

const f16 = (x: number) => f32ToF16Bits(x);
const le16 = (bits: number) => [bits & 0xff, bits >> 8];

/** One hand-made block of each format and the values it must decode to. */
function handBlocks(): Record<GgmlBlockFormat, { bytes: Uint8Array; values: number[] }> {
  // Q8_0: d = 0.5, q = 0, 1, -1, 2, -2, ... (q_i = (i odd ? 1 : -1) · ceil(i / 2)).
  const q8 = Array.from({ length: 32 }, (_, i) => (i % 2 ? 1 : -1) * Math.ceil(i / 2) + 0); // + 0: q_0 is +0, not -0
  const q8bytes = Uint8Array.from([...le16(f16(0.5)), ...q8.map((q) => q & 0xff)]);

  // Q4_0: d = 0.25; byte j holds value j (low nibble = j) and value j+16 (high nibble = 15 - j).
  const q4bytes = Uint8Array.from([...le16(f16(0.25)), ...Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4))]);
  const q4values = [...Array.from({ length: 16 }, (_, j) => 0.25 * (j - 8)), ...Array.from({ length: 16 }, (_, j) => 0.25 * (15 - j - 8))];

  // Q4_K: d = 2, dmin = 0.5; sub-block i has scale i + 1 and min i (sub-blocks 4..7 use the packed high
  // bits: scale 5..8 = 0b101..0b1000, min 4..7); quant byte l of chunk c = (l & 15) | ((15 - (l & 15)) << 4).
  const scales = new Uint8Array(12);
  const s = [1, 2, 3, 4, 5, 6, 7, 8], m = [0, 1, 2, 3, 4, 5, 6, 7];
  for (let i = 0; i < 4; i++) {
    scales[i] = (s[i]! & 63) | ((s[i + 4]! >> 4) << 6);
    scales[i + 4] = (m[i]! & 63) | ((m[i + 4]! >> 4) << 6);
    scales[i + 8] = (s[i + 4]! & 15) | ((m[i + 4]! & 15) << 4);
  }
  const qk = Array.from({ length: 128 }, (_, k) => (k & 15) | ((15 - (k & 15)) << 4));
  const q4kbytes = Uint8Array.from([...le16(f16(2)), ...le16(f16(0.5)), ...scales, ...qk]);
  const q4kvalues: number[] = [];
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) q4kvalues.push(2 * s[2 * c]! * (l & 15) - 0.5 * m[2 * c]!);
    for (let l = 0; l < 32; l++) q4kvalues.push(2 * s[2 * c + 1]! * (15 - (l & 15)) - 0.5 * m[2 * c + 1]!);
  }

  // Q6_K: d = 0.125; value v (0..255) has 6-bit quant (v · 7) & 63 and sub-block scale (v >> 4) - 8.
  const q6 = Array.from({ length: 256 }, (_, v) => (v * 7) & 63);
  const sc6 = Array.from({ length: 16 }, (_, i) => i - 8);
  const ql = new Uint8Array(128), qh = new Uint8Array(64);
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const [a, b, c2, d] = [0, 32, 64, 96].map((k) => q6[128 * h + l + k]!);
      ql[64 * h + l] = (a! & 15) | ((c2! & 15) << 4);
      ql[64 * h + l + 32] = (b! & 15) | ((d! & 15) << 4);
      qh[32 * h + l] = (a! >> 4) | ((b! >> 4) << 2) | ((c2! >> 4) << 4) | ((d! >> 4) << 6);
    }
  }
  const q6bytes = Uint8Array.from([...ql, ...qh, ...sc6.map((x) => x & 0xff), ...le16(f16(0.125))]);
  const q6values = q6.map((q, v) => 0.125 * sc6[v >> 4]! * (q - 32));

  return {
    Q8_0: { bytes: q8bytes, values: q8.map((q) => 0.5 * q) },
    Q4_0: { bytes: q4bytes, values: q4values },
    Q4_K: { bytes: q4kbytes, values: q4kvalues },
    Q6_K: { bytes: q6bytes, values: q6values },
  };
}

/** `rows` rows of seeded random blocks (random bytes, finite f16 scales). */
function randomBlocks(format: GgmlBlockFormat, rows: number, cols: number, seed: number): Uint8Array {
  const { blockSize, typeSize } = GGML_BLOCK_FORMATS[format];
  const n = (rows * cols) / blockSize;
  const bytes = Uint8Array.from(seededValues(n * typeSize, seed, 1), (x) => Math.floor((x + 1) * 128) & 0xff);
  const view = new DataView(bytes.buffer);
  const scales = seededValues(2 * n, seed + 1, 1);
  for (let b = 0; b < n; b++) {
    const at = b * typeSize;
    // Scales across magnitudes, f16 subnormals included, so the exact f16 → f32 path is exercised.
    const scale = (i: number) => f16(scales[2 * b + i]! * 2 ** ((b % 30) - 20));
    if (format === 'Q6_K') view.setUint16(at + 208, scale(0), true);
    else view.setUint16(at, scale(0), true);
    if (format === 'Q4_K') view.setUint16(at + 2, scale(1), true);
  }
  return bytes;
}

describe('GGUF block formats (Q8_0, Q4_0, Q4_K, Q6_K)', () => {
  const hand = handBlocks();
  for (const format of Object.keys(hand) as GgmlBlockFormat[]) {
    it(`${format}: a block built by hand from ggml's layout decodes to the values worked out by hand`, () => {
      const { bytes, values } = hand[format];
      expect(bytes.byteLength).toBe(GGML_BLOCK_FORMATS[format].typeSize);
      expect(Array.from(dequantizeGgmlBlocks(format, bytes, values.length))).toEqual(values);
    });
  }

  it('quantizeQ8_0 / quantizeQ4_0 write the blocks ggml reference quantizers write', () => {
    // Q4_0: max-magnitude value -4 → d = 0.5, q = trunc(x / 0.5 + 8.5) clamped to 15.
    const x = Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? -4 : (i % 9) * 0.4 - 1.6));
    const q4 = quantizeQ4_0(x);
    expect(f16BitsToF32(q4[0]! | (q4[1]! << 8))).toBe(0.5);
    const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * Math.fround(1 / 0.5)) + 8.5)));
    for (let j = 0; j < 16; j++) expect(q4[2 + j], `byte ${j}`).toBe(q(x[j]!) | (q(x[j + 16]!) << 4));
    expect(q4[2 + 5]! & 15).toBe(0); // the extreme value maps to q = 0, i.e. -8·d
    const back = dequantizeGgmlBlocks('Q4_0', q4, 32);
    for (let i = 0; i < 32; i++) expect(Math.abs(back[i]! - x[i]!)).toBeLessThanOrEqual(0.25 + 1e-6);
    // Q8_0: d = amax / 127.
    const q8 = quantizeQ8_0(x);
    expect(f16BitsToF32(q8[0]! | (q8[1]! << 8))).toBe(f16BitsToF32(f16(4 / 127)));
    expect(new Int8Array(q8.buffer, 2, 32)[5]).toBe(-127);
  });

  for (const format of Object.keys(GGML_BLOCK_FORMATS) as GgmlBlockFormat[]) {
    for (const to of ['f32', 'f16'] as const) {
      it(`GPU ${format} → ${to} equals the CPU reference bit for bit (padded rows, word offset)`, async () => {
        const gpu = await testGpu();
        const { blockSize } = GGML_BLOCK_FORMATS[format];
        const [rows, cols, stride, offset] = [5, 2 * blockSize, 2 * blockSize + 3, 6];
        const src = randomBlocks(format, rows, cols, 11);
        const plan = planDequantGgml({ format, rows, cols, dstStride: stride, dstOffsetWords: offset, to });
        const words = offset + (to === 'f32' ? rows * stride : Math.ceil((rows * stride) / 2));
        const padded = new Uint8Array(Math.ceil(src.byteLength / 4) * 4);
        padded.set(src);
        const res = await runPlan(gpu, plan, { src: new Uint32Array(padded.buffer), dst: new Uint32Array(words).fill(0xdeadbeef) }, ['dst']);
        const out = new Uint32Array(res.dst!);
        expect(Array.from(out.subarray(0, offset))).toEqual(Array(offset).fill(0xdeadbeef));
        const ref = dequantGgmlRef(format, src, rows, cols, stride, to);
        const got = to === 'f32' ? out.subarray(offset) : new Uint16Array(out.buffer, offset * 4, rows * stride);
        const bad: string[] = [];
        for (let i = 0; i < ref.length && bad.length < 5; i++) if (got[i] !== ref[i]) bad.push(`element ${i}: got 0x${got[i]!.toString(16)}, want 0x${ref[i]!.toString(16)}`);
        expect(bad).toEqual([]);
        // The hand-made block through the GPU as well.
        const h = hand[format];
        const one = new Uint8Array(Math.ceil(h.bytes.byteLength / 4) * 4);
        one.set(h.bytes);
        const r1 = await runPlan(gpu, planDequantGgml({ format, rows: 1, cols: blockSize, dstStride: blockSize, dstOffsetWords: 0, to: 'f32' }), { src: new Uint32Array(one.buffer), dst: new Uint32Array(blockSize) }, ['dst']);
        expect(Array.from(new Float32Array(r1.dst!))).toEqual(h.values);
      });
    }
  }
});
