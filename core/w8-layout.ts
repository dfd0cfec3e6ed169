// The GPU layout of 8-bit weights (the int8 classifier): core/w4-layout.ts's block-major order with
// one byte per value. Values: symmetric int8 in -127..127.
//   words[((c * out) + o) * 8 + j],  c = 32-wide k-block, o = output row, j = 0..7
//   byte i of word j = q[o, 32c + 4j + i]   (the activation words' own lane order: dot4I8Packed pairs
//   weight word j with activation word j directly)
// Padding past `in` is zero.
import { W4LayoutError } from './errors.js';
import { W4_BLOCK_K } from './w4-layout.js';

export const W8_WORDS_PER_BLOCK = 8;
export const W8_QMAX = 127;

export function w8WordCount(outFeatures: number, inFeatures: number): number {
  return Math.ceil(inFeatures / W4_BLOCK_K) * outFeatures * W8_WORDS_PER_BLOCK;
}

function checkShape(outFeatures: number, inFeatures: number, where: string): void {
  if (!Number.isInteger(outFeatures) || !Number.isInteger(inFeatures) || outFeatures < 1 || inFeatures < 1) {
    throw new W4LayoutError(`${where}: shape [${outFeatures}, ${inFeatures}] must be positive integers`);
  }
}

/** Packs q ([out, in] row-major, values -127..127) into the layout above. */
export function packW8(q: Int8Array, outFeatures: number, inFeatures: number): Uint32Array {
  checkShape(outFeatures, inFeatures, 'packW8');
  if (q.length !== outFeatures * inFeatures) throw new W4LayoutError(`packW8: got ${q.length} values for shape [${outFeatures}, ${inFeatures}]`);
  const words = new Uint32Array(w8WordCount(outFeatures, inFeatures));
  const bytes = new Uint8Array(words.buffer);
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < inFeatures; k++) {
      const v = q[o * inFeatures + k]!;
      if (v < -W8_QMAX) throw new W4LayoutError(`packW8: q[${o}, ${k}] = ${v} is outside -${W8_QMAX}..${W8_QMAX}`);
      bytes[((((k >> 5) * outFeatures + o) * W8_WORDS_PER_BLOCK) << 2) + (k & 31)] = v & 0xff;
    }
  }
  return words;
}

/** Inverse of packW8: [out, in] int8 values (padding dropped). */
export function unpackW8(words: Uint32Array, outFeatures: number, inFeatures: number): Int8Array {
  checkShape(outFeatures, inFeatures, 'unpackW8');
  if (words.length !== w8WordCount(outFeatures, inFeatures)) {
    throw new W4LayoutError(`unpackW8: got ${words.length} words for shape [${outFeatures}, ${inFeatures}], expected ${w8WordCount(outFeatures, inFeatures)}`);
  }
  const bytes = new Int8Array(words.buffer, words.byteOffset, words.byteLength);
  const q = new Int8Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < inFeatures; k++) q[o * inFeatures + k] = bytes[((((k >> 5) * outFeatures + o) * W8_WORDS_PER_BLOCK) << 2) + (k & 31)]!;
  }
  return q;
}
