// The GPU layout of 4-bit weights, shared by the quantizer (which packs), the artifact files (which
// store the packed words verbatim) and the W4 kernels (which read them). Pure functions, portable.
//
// Values: symmetric int4 in -7..7 (qmax_w = 7; -8 is never produced, so the range is symmetric).
//
// Blocks: `in` is padded with zero weights to a multiple of 32 (W4_BLOCK_K): one block = 32 input
// channels of one output row = 4 u32 words = 16 bytes (one vec4<u32> load).
//
// Word order, block-major then row ("k-block interleaved"):
//   words[((c * out) + o) * 4 + j],  c = k-block (0..ceil(in/32)-1), o = output row, j = 0..3
// so one k-block of consecutive rows is contiguous. A GEMV thread owning row o reads one vec4<u32>
// per block and neighbouring threads read neighbouring 16-byte chunks (coalesced); a GEMM tile of
// TN rows × 32 k is one contiguous run of TN·16 bytes.
//
// Nibbles inside word j of block c of row o (two's complement, 4 bits each), for i = 0..3:
//   bits [8i   .. 8i+3] = q[o, 32c + 8j + i]
//   bits [8i+4 .. 8i+7] = q[o, 32c + 8j + 4 + i]
// so that, with activations packed 4 int8 lanes per u32 in natural order (x[k..k+3] in bytes 0..3):
//   (w << 4) & 0xF0F0F0F0  = int8 lanes 16·q[8j+0..3]   → dot4I8Packed with x word 2j
//   w        & 0xF0F0F0F0  = int8 lanes 16·q[8j+4..7]   → dot4I8Packed with x word 2j+1
// Each lane holds 16·q exactly as a signed byte (no sign-extension work); the kernel shifts the int32
// sum right by 4 at the end. Overflow bound: |Σ| ≤ in · 127 · 112 < 2^31 for in ≤ 150,000.
import { W4LayoutError } from './errors.js';

export const W4_BLOCK_K = 32;
export const W4_WORDS_PER_BLOCK = 4;
export const W4_QMAX = 7;
/** Bytes of one packed block (one vec4<u32> load): 32 int4 values. */
export const W4_BLOCK_BYTES = W4_WORDS_PER_BLOCK * 4;

/** Number of 32-channel k-blocks per row. */
export function w4Blocks(inFeatures: number): number {
  return Math.ceil(inFeatures / W4_BLOCK_K);
}

/** Total u32 words of a packed [out, in] weight. */
export function w4WordCount(outFeatures: number, inFeatures: number): number {
  return w4Blocks(inFeatures) * outFeatures * W4_WORDS_PER_BLOCK;
}

/** `in` padded to whole k-blocks (the zero-weight padding the packed layout stores). */
export function w4PaddedIn(inFeatures: number): number {
  return w4Blocks(inFeatures) * W4_BLOCK_K;
}

function checkShape(outFeatures: number, inFeatures: number, where: string): void {
  if (!Number.isInteger(outFeatures) || !Number.isInteger(inFeatures) || outFeatures < 1 || inFeatures < 1) {
    throw new W4LayoutError(`${where}: shape [${outFeatures}, ${inFeatures}] must be positive integers`);
  }
}

/** Packs q ([out, in] row-major, values -7..7) into the layout above. */
export function packW4(q: Int8Array, outFeatures: number, inFeatures: number): Uint32Array {
  checkShape(outFeatures, inFeatures, 'packW4');
  if (q.length !== outFeatures * inFeatures) {
    throw new W4LayoutError(`packW4: got ${q.length} values for shape [${outFeatures}, ${inFeatures}]`);
  }
  const blocks = w4Blocks(inFeatures);
  const words = new Uint32Array(blocks * outFeatures * W4_WORDS_PER_BLOCK);
  for (let o = 0; o < outFeatures; o++) {
    const row = o * inFeatures;
    for (let k = 0; k < inFeatures; k++) {
      const v = q[row + k]!;
      if (v < -W4_QMAX || v > W4_QMAX) {
        throw new W4LayoutError(`packW4: q[${o}, ${k}] = ${v} is outside -${W4_QMAX}..${W4_QMAX}`);
      }
      const c = k >> 5;
      const j = (k >> 3) & 3;
      const inner = k & 7; // 0..3 → low nibble of byte inner, 4..7 → high nibble of byte inner-4
      const shift = inner < 4 ? 8 * inner : 8 * (inner - 4) + 4;
      const w = ((c * outFeatures + o) << 2) + j;
      words[w] = (words[w]! | ((v & 0xf) << shift)) >>> 0;
    }
  }
  return words;
}

/** Inverse of packW4: [out, in] int8 values (padding dropped). */
export function unpackW4(words: Uint32Array, outFeatures: number, inFeatures: number): Int8Array {
  checkShape(outFeatures, inFeatures, 'unpackW4');
  const expected = w4WordCount(outFeatures, inFeatures);
  if (words.length !== expected) {
    throw new W4LayoutError(`unpackW4: got ${words.length} words for shape [${outFeatures}, ${inFeatures}], expected ${expected}`);
  }
  const q = new Int8Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < inFeatures; k++) {
      const inner = k & 7;
      const shift = inner < 4 ? 8 * inner : 8 * (inner - 4) + 4;
      const w = words[(((k >> 5) * outFeatures + o) << 2) + ((k >> 3) & 3)]!;
      const nib = (w >>> shift) & 0xf;
      q[o * inFeatures + k] = nib >= 8 ? nib - 16 : nib;
    }
  }
  return q;
}

/** Rows [o0, o1) of a packed weight, packed again on their own (used to split huge weights). */
export function sliceW4Rows(words: Uint32Array, outFeatures: number, inFeatures: number, o0: number, o1: number): Uint32Array {
  checkShape(outFeatures, inFeatures, 'sliceW4Rows');
  if (!(0 <= o0 && o0 < o1 && o1 <= outFeatures)) throw new W4LayoutError(`sliceW4Rows: rows [${o0}, ${o1}) outside [0, ${outFeatures})`);
  return sliceBlockRows(words, outFeatures, inFeatures, o0, o1, W4_WORDS_PER_BLOCK);
}

/**
 * Rows [o0, o1) of any block-major packed weight (this layout, or core/w8-layout.ts's with its 8 words
 * per row-block): each k-block's run of those rows, copied block after block. Callers check the range.
 */
export function sliceBlockRows(words: Uint32Array, outFeatures: number, inFeatures: number, o0: number, o1: number, wordsPerBlock: number): Uint32Array {
  const blocks = w4Blocks(inFeatures);
  const rows = o1 - o0;
  const out = new Uint32Array(blocks * rows * wordsPerBlock);
  for (let c = 0; c < blocks; c++) {
    out.set(words.subarray((c * outFeatures + o0) * wordsPerBlock, (c * outFeatures + o1) * wordsPerBlock), c * rows * wordsPerBlock);
  }
  return out;
}

/** Packed weights of several linears of one input, stacked row-wise ([Σ out, in]) in the layout above. */
export function stackW4Rows(parts: ReadonlyArray<{ words: Uint32Array; outFeatures: number }>, inFeatures: number): Uint32Array {
  const total = parts.reduce((n, p) => n + p.outFeatures, 0);
  for (const p of parts) {
    checkShape(p.outFeatures, inFeatures, 'stackW4Rows');
    if (p.words.length !== w4WordCount(p.outFeatures, inFeatures)) throw new W4LayoutError(`stackW4Rows: a part has ${p.words.length} words, expected ${w4WordCount(p.outFeatures, inFeatures)}`);
  }
  const blocks = w4Blocks(inFeatures);
  const out = new Uint32Array(blocks * total * W4_WORDS_PER_BLOCK);
  for (let c = 0; c < blocks; c++) {
    let row = 0;
    for (const p of parts) {
      out.set(p.words.subarray(c * p.outFeatures * W4_WORDS_PER_BLOCK, (c + 1) * p.outFeatures * W4_WORDS_PER_BLOCK), (c * total + row) * W4_WORDS_PER_BLOCK);
      row += p.outFeatures;
    }
  }
  return out;
}
