// The GPU layout of 8-bit weights (per-output-channel int8, e.g. a quantized classifier), read by the
// W8 variant of kernel B (kernels/w4a8_matmul.wgsl with W8). Mirrors core/w4-layout.ts. Portable.
//
// Values: symmetric int8 in -127..127 (-128 is never produced, so the range is symmetric).
//
// Blocks: `in` is padded with zero weights to a multiple of 32 (W8_BLOCK_K): one block = 32 input
// channels of one output row = 8 u32 words = 32 bytes (two vec4<u32> loads).
//
// Word order, block-major then row, as for int4:
//   words[((c * out) + o) * 8 + j],  c = k-block (0..ceil(in/32)-1), o = output row, j = 0..7
// so one k-block of consecutive rows is contiguous (GEMV threads owning neighbouring rows read
// neighbouring 32-byte chunks; a GEMM tile of TN rows × 32 k is one run of TN·32 bytes).
//
// Bytes inside word j of block c of row o, for i = 0..3: byte i = q[o, 32c + 4j + i] (two's
// complement), the same order as the activation words kernel A writes, so word j of a weight block
// pairs with activation word j of the block in dot4I8Packed. Overflow bound:
// |Σ| ≤ in · 127 · 127 < 2^31 for in ≤ 133,000.
import { W8LayoutError } from './errors.js';
import { sliceBlockRows, W4_WORDS_PER_BLOCK } from './w4-layout.js';

export const W8_BLOCK_K = 32;
export const W8_WORDS_PER_BLOCK = 8;
export const W8_QMAX = 127;
/** Bytes of one packed block (two vec4<u32> loads): 32 int8 values. */
export const W8_BLOCK_BYTES = W8_WORDS_PER_BLOCK * 4;
/** Largest `in` whose int32 accumulator cannot overflow (in · 127 · 127 < 2^31). */
export const W8_MAX_IN = 133_000;

/** Number of 32-channel k-blocks per row. */
export function w8Blocks(inFeatures: number): number {
  return Math.ceil(inFeatures / W8_BLOCK_K);
}

/** Total u32 words of a packed [out, in] weight. */
export function w8WordCount(outFeatures: number, inFeatures: number): number {
  return w8Blocks(inFeatures) * outFeatures * W8_WORDS_PER_BLOCK;
}

function checkShape(outFeatures: number, inFeatures: number, where: string): void {
  if (!Number.isInteger(outFeatures) || !Number.isInteger(inFeatures) || outFeatures < 1 || inFeatures < 1) {
    throw new W8LayoutError(`${where}: shape [${outFeatures}, ${inFeatures}] must be positive integers`);
  }
}

/** Packs q ([out, in] row-major, values -127..127) into the layout above. */
export function packW8(q: Int8Array, outFeatures: number, inFeatures: number): Uint32Array {
  checkShape(outFeatures, inFeatures, 'packW8');
  if (q.length !== outFeatures * inFeatures) {
    throw new W8LayoutError(`packW8: got ${q.length} values for shape [${outFeatures}, ${inFeatures}]`);
  }
  const words = new Uint32Array(w8WordCount(outFeatures, inFeatures));
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < inFeatures; k++) {
      const v = q[o * inFeatures + k]!;
      if (v < -W8_QMAX) throw new W8LayoutError(`packW8: q[${o}, ${k}] = ${v} is outside -${W8_QMAX}..${W8_QMAX}`);
      const w = w8WordIndex(outFeatures, o, k);
      words[w] = (words[w]! | ((v & 0xff) << (8 * (k & 3)))) >>> 0;
    }
  }
  return words;
}

/** Index of the word holding q[o, k]: block k >> 5, word (k >> 2) & 7 of row o's block. */
function w8WordIndex(outFeatures: number, o: number, k: number): number {
  return ((k >> 5) * outFeatures + o) * W8_WORDS_PER_BLOCK + ((k >> 2) & 7);
}

/** Inverse of packW8: [out, in] int8 values (padding dropped). */
export function unpackW8(words: Uint32Array, outFeatures: number, inFeatures: number): Int8Array {
  checkShape(outFeatures, inFeatures, 'unpackW8');
  const expected = w8WordCount(outFeatures, inFeatures);
  if (words.length !== expected) {
    throw new W8LayoutError(`unpackW8: got ${words.length} words for shape [${outFeatures}, ${inFeatures}], expected ${expected}`);
  }
  const q = new Int8Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < inFeatures; k++) q[o * inFeatures + k] = (words[w8WordIndex(outFeatures, o, k)]! << (24 - 8 * (k & 3))) >> 24;
  }
  return q;
}

/** Rows [o0, o1) of a packed weight, packed again on their own (used to split huge weights). */
export function sliceW8Rows(words: Uint32Array, outFeatures: number, inFeatures: number, o0: number, o1: number): Uint32Array {
  checkShape(outFeatures, inFeatures, 'sliceW8Rows');
  if (!(0 <= o0 && o0 < o1 && o1 <= outFeatures)) throw new W8LayoutError(`sliceW8Rows: rows [${o0}, ${o1}) outside [0, ${outFeatures})`);
  return sliceBlockRows(words, outFeatures, inFeatures, o0, o1, W8_WORDS_PER_BLOCK);
}

/** u32 words of one 32-wide row-block of packed weights: 4 for int4 (core/w4-layout.ts), 8 for int8. */
export function weightWordsPerBlock(wBits: number): number {
  return wBits === 8 ? W8_WORDS_PER_BLOCK : W4_WORDS_PER_BLOCK;
}
