// The SentencePiece vocabulary a GGUF embeds, and the built-in tokenizer over it. Portable (the GGUF
// export side, which reads tokenizer files, is loaders/gguf-tokenizer.ts).
import type { TextTokenizer } from '../core/model.js';
import { FormatError } from './errors.js';
import { GgufMetadata, type GgufFile } from './gguf-format.js';
import { Llama2cTokenizer, type Llama2cVocab } from './llama2c-vocab.js';

export const GGUF_TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** A SentencePiece-style vocabulary as llama.cpp's "llama" tokenizer model stores it. */
export interface GgufVocab {
  /** Pieces with SentencePiece's ▁ (U+2581) for spaces; byte pieces as `<0xXX>`. */
  tokens: string[];
  scores: Float32Array;
  /** GGUF_TOKEN_TYPE per token. */
  tokenTypes: Int32Array;
  bosId: number;
  eosId: number;
  unkId: number;
  addBos: boolean;
}

export const SPACE_MARK = '\u2581'; // SentencePiece's ▁
export const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;
/** llama2.c's layout, which its tokenizer assumes: <unk>, <s>, </s>, then <0x00>..<0xFF>. */
export const BOS_ID = 1;
export const EOS_ID = 2;
export const BYTE_TOKEN_OFFSET = 3;

export const bytePiece = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/** The embedded SentencePiece vocabulary of a GGUF ("llama" tokenizer model). */
export function ggufVocab(gguf: GgufFile): GgufVocab {
  const md = new GgufMetadata(gguf.file, gguf.metadata);
  const model = md.string('tokenizer.ggml.model', 'none');
  if (model !== 'llama') {
    const hint = model === 'gpt2'
      ? 'its vocabulary is byte-level BPE (tokenizer.ggml.model "gpt2"); pass the original model\'s tokenizer.json with --tokenizer'
      : `tokenizer.ggml.model is ${JSON.stringify(model)}; pass a tokenizer.json or llama2.c tokenizer.bin with --tokenizer`;
    throw new FormatError(gguf.file, `no SentencePiece vocabulary embedded: ${hint}`);
  }
  const tokens = md.stringArray('tokenizer.ggml.tokens');
  if (!tokens) throw new FormatError(gguf.file, 'missing metadata tokenizer.ggml.tokens (the embedded vocabulary)');
  const scores = md.numberArray('tokenizer.ggml.scores');
  if (!scores || scores.length !== tokens.length) {
    throw new FormatError(gguf.file, `tokenizer.ggml.scores has ${scores?.length ?? 0} entries for ${tokens.length} tokens`);
  }
  const types = md.numberArray('tokenizer.ggml.token_type');
  if (types && types.length !== tokens.length) throw new FormatError(gguf.file, `tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
  return {
    tokens,
    scores: Float32Array.from(scores),
    tokenTypes: types ? Int32Array.from(types) : Int32Array.from(tokens, (t) => (BYTE_PIECE.test(t) ? GGUF_TOKEN_TYPE.byte : GGUF_TOKEN_TYPE.normal)),
    bosId: md.uint('tokenizer.ggml.bos_token_id', BOS_ID),
    eosId: md.uint('tokenizer.ggml.eos_token_id', EOS_ID),
    unkId: md.uint('tokenizer.ggml.unknown_token_id', 0),
    addBos: md.bool('tokenizer.ggml.add_bos_token', true),
  };
}

/**
 * A TextTokenizer over a GGUF's embedded SentencePiece vocabulary. It needs llama2's layout (BOS 1,
 * EOS 2, byte pieces at 3..258) and a dummy-prefix space, as every llama/llama2 SentencePiece GGUF has.
 */
export function ggufTokenizer(gguf: GgufFile): TextTokenizer {
  const v = ggufVocab(gguf);
  const md = new GgufMetadata(gguf.file, gguf.metadata);
  const problems: string[] = [];
  if (v.bosId !== BOS_ID || v.eosId !== EOS_ID) problems.push(`BOS/EOS are ${v.bosId}/${v.eosId}, not 1/2`);
  for (let b = 0; b < 256 && problems.length === 0; b++) {
    if (v.tokens[BYTE_TOKEN_OFFSET + b] !== bytePiece(b)) problems.push(`token ${BYTE_TOKEN_OFFSET + b} is ${JSON.stringify(v.tokens[BYTE_TOKEN_OFFSET + b])}, not ${bytePiece(b)}`);
  }
  if (!md.bool('tokenizer.ggml.add_space_prefix', true)) problems.push('tokenizer.ggml.add_space_prefix is false');
  if (problems.length) {
    throw new FormatError(gguf.file, `the embedded vocabulary does not have the llama2 SentencePiece layout the built-in tokenizer handles (${problems.join('; ')}); pass --tokenizer with the model's tokenizer.json`);
  }
  const utf8 = new TextEncoder();
  const pieces = v.tokens.map((t, id) => {
    // Control pieces are never produced by merging; keep BOS/EOS as llama2.c writes them so they cannot match text.
    if (id === BOS_ID) return utf8.encode('\n<s>\n');
    if (id === EOS_ID) return utf8.encode('\n</s>\n');
    return utf8.encode(t.replaceAll(SPACE_MARK, ' '));
  });
  const vocab: Llama2cVocab = { pieces, scores: v.scores, maxTokenLength: pieces.reduce((m, p) => Math.max(m, p.length), 1) };
  return new Llama2cTokenizer(vocab);
}

