// llama2.c `tokenizer.bin`: int32 max_token_length, then per token f32 score, int32 byte length, bytes.
// encode/decode follow llama2.c run.c exactly (not SentencePiece): a dummy-prefix " " token, one token
// per UTF-8 character (byte fallback to id 3 + byte), then greedy merges of the best-scoring adjacent pair.
// Portable: parses bytes (the file is read by loaders/llama2c-tokenizer.ts, or fetched by a page).
import type { TextTokenizer } from '../core/model.js';
import { FormatError } from './errors.js';

const BOS_ID = 1;
const EOS_ID = 2;
/** run.c maps byte b to token 3 + b (the `<0x00>`…`<0xFF>` pieces follow <unk>, <s>, </s>). */
const BYTE_TOKEN_OFFSET = 3;
const MAX_TOKENIZER_BYTES = 64 << 20;

export interface Llama2cVocab {
  /** Raw piece bytes per id (SentencePiece's ▁ already replaced by a space, as llama2.c exports them). */
  pieces: Uint8Array[];
  scores: Float32Array;
  maxTokenLength: number;
}

/** Parses tokenizer.bin bytes; `expectedVocabSize` (from the checkpoint) is checked when given. */
export function parseLlama2cTokenizer(file: string, bytes: Uint8Array, expectedVocabSize?: number): Llama2cVocab {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new FormatError(file, `file is ${bytes.byteLength} bytes, too short for a llama2.c tokenizer`);
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 4096) {
    throw new FormatError(file, `not a llama2.c tokenizer: max_token_length = ${maxTokenLength}`);
  }
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let at = 4;
  while (at < bytes.byteLength && (expectedVocabSize === undefined || pieces.length < expectedVocabSize)) {
    if (at + 8 > bytes.byteLength) throw new FormatError(file, `truncated at token ${pieces.length}: no room for its score and length`);
    const score = view.getFloat32(at, true);
    const len = view.getInt32(at + 4, true);
    if (len < 0 || len > maxTokenLength) {
      throw new FormatError(file, `token ${pieces.length} has byte length ${len}, outside 0..max_token_length ${maxTokenLength}`);
    }
    at += 8;
    if (at + len > bytes.byteLength) throw new FormatError(file, `truncated in token ${pieces.length}: ${len} bytes promised, ${bytes.byteLength - at} left`);
    pieces.push(bytes.slice(at, at + len));
    scores.push(score);
    at += len;
  }
  if (expectedVocabSize !== undefined && pieces.length !== expectedVocabSize) {
    throw new FormatError(file, `holds ${pieces.length} tokens, the model expects ${expectedVocabSize}`);
  }
  if (pieces.length < BYTE_TOKEN_OFFSET + 256) {
    throw new FormatError(file, `holds ${pieces.length} tokens; a llama2.c vocabulary needs at least ${BYTE_TOKEN_OFFSET + 256} (3 control + 256 byte pieces)`);
  }
  return { pieces, scores: Float32Array.from(scores), maxTokenLength };
}

/** One char per byte, so arbitrary (even non-UTF-8) piece bytes can key a Map and concatenate cheaply. */
function byteKey(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** `<0xXX>` -> XX, as run.c's sscanf("<0x%02hhX>") does for byte-fallback pieces. */
function bytePieceValue(piece: Uint8Array): number | undefined {
  if (piece.length !== 6 || piece[0] !== 0x3c || piece[1] !== 0x30 || piece[2] !== 0x78 || piece[5] !== 0x3e) return undefined;
  const hex = String.fromCharCode(piece[3]!, piece[4]!);
  return /^[0-9A-Fa-f]{2}$/.test(hex) ? parseInt(hex, 16) : undefined;
}

interface PairCandidate {
  score: number;
  left: number;
  right: number;
  leftVersion: number;
  rightVersion: number;
  merged: number;
}

/** Max-heap on score, then min on the left node's position (run.c's leftmost-wins tie rule). */
class PairHeap {
  private readonly items: PairCandidate[] = [];
  private static before(a: PairCandidate, b: PairCandidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(c: PairCandidate): void {
    const items = this.items;
    items.push(c);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!PairHeap.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): PairCandidate | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && PairHeap.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && PairHeap.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

export class Llama2cTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId = BOS_ID;
  readonly eosId = EOS_ID;
  private readonly keys: string[];
  private readonly idOf = new Map<string, number>();
  private readonly decoded: Uint8Array[];
  private readonly utf8 = new TextEncoder();

  constructor(private readonly vocab: Llama2cVocab) {
    this.vocabSize = vocab.pieces.length;
    this.keys = vocab.pieces.map(byteKey);
    // First id wins on duplicate pieces (run.c's bsearch over a sorted copy leaves that unspecified).
    this.keys.forEach((k, id) => {
      if (!this.idOf.has(k)) this.idOf.set(k, id);
    });
    this.decoded = vocab.pieces.map((p) => {
      const b = bytePieceValue(p);
      return b === undefined ? p : Uint8Array.of(b);
    });
  }

  /** run.c encode(text, bos, eos=0): `bos` defaults to false. */
  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const bytes = this.utf8.encode(text);
    // BOS goes in before merging, as in run.c (its piece "\n<s>\n" never merges in practice).
    const tokens: number[] = options.bos ? [BOS_ID] : [];
    if (bytes.length > 0) {
      const space = this.idOf.get(' ');
      if (space === undefined) throw new Error('llama2.c tokenizer has no " " piece for the dummy prefix');
      tokens.push(space);
    }
    // One token per UTF-8 character (at most 4 bytes, as run.c groups them), else its bytes.
    let i = 0;
    while (i < bytes.length) {
      let end = i + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - i < 4) end++;
      const id = this.idOf.get(byteKey(bytes.subarray(i, end)));
      if (id !== undefined) tokens.push(id);
      else for (let k = i; k < end; k++) tokens.push(bytes[k]! + BYTE_TOKEN_OFFSET);
      i = end;
    }
    return this.mergePairs(tokens);
  }

  /**
   * run.c's merge loop: repeatedly merge the adjacent pair whose concatenation is the best-scoring piece,
   * the leftmost on ties. run.c rescans the whole sequence per merge (quadratic); a heap over a linked
   * list gives the same merges in O(n log n): nodes keep their original order, so the leftmost pair is
   * the one whose left node has the smallest original index.
   */
  private mergePairs(initial: number[]): number[] {
    const n = initial.length;
    const id = Int32Array.from(initial);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const heap = new PairHeap();
    const consider = (left: number) => {
      if (left < 0 || next[left]! < 0) return;
      const right = next[left]!;
      const merged = this.idOf.get(this.keys[id[left]!]! + this.keys[id[right]!]!);
      const score = merged === undefined ? -Infinity : this.vocab.scores[merged]!;
      // run.c starts its best score at -1e10, so pairs scoring at or below it never merge.
      if (merged !== undefined && score > -1e10) {
        heap.push({ score, left, right, leftVersion: version[left]!, rightVersion: version[right]!, merged });
      }
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let p = heap.pop(); p; p = heap.pop()) {
      const { left, right } = p;
      if (next[left] !== right || version[left] !== p.leftVersion || version[right] !== p.rightVersion) continue; // stale
      id[left] = p.merged;
      version[left]!++;
      version[right]!++;
      const after = next[right]!;
      next[left] = after;
      if (after >= 0) prev[after] = left;
      next[right] = -2; // dead
      if (prev[left]! >= 0) consider(prev[left]!);
      consider(left);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) out.push(id[i]!);
    return out;
  }

  /**
   * run.c decode over a sequence: BOS/EOS print nothing, the piece right after BOS loses its leading
   * space, `<0xXX>` pieces are raw bytes, and the bytes of all pieces are decoded as UTF-8 together
   * (so a character split across pieces comes out whole).
   */
  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    let prev = -1;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      let piece = this.decoded[id]!;
      if (id !== BOS_ID && id !== EOS_ID) {
        if (prev === BOS_ID && piece[0] === 0x20) piece = piece.subarray(1);
        parts.push(piece);
        total += piece.length;
      }
      prev = id;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(all);
  }

  /** The bytes one id decodes to (`<0xXX>` pieces already turned into their byte), for debugging. */
  piece(id: number): Uint8Array {
    return this.decoded[id]!;
  }
}


/** `size` if a llama2.c tokenizer may be that large, else a FormatError. */
export function checkedTokenizerSize(file: string, size: number): number {
  if (size > MAX_TOKENIZER_BYTES) throw new FormatError(file, `${size} bytes is too large for a llama2.c tokenizer`);
  return size;
}

/** A llama2.c tokenizer from the bytes of its tokenizer.bin (`file` names it in errors). */
export function llama2cTokenizerFromBytes(file: string, bytes: Uint8Array, expectedVocabSize?: number): Llama2cTokenizer {
  return new Llama2cTokenizer(parseLlama2cTokenizer(file, bytes.subarray(0, checkedTokenizerSize(file, bytes.byteLength)), expectedVocabSize));
}
