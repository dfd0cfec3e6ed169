// The vocabulary a GGUF embeds and the tokenizer over it: SentencePiece (tokenizer.ggml.model "llama":
// pieces + scores) through the llama2.c greedy-merge tokenizer, which merges exactly as llama.cpp's SPM
// tokenizer does (best-scoring adjacent pair, leftmost on ties, byte fallback to <0xXX>); byte-level
// BPE ("gpt2": pieces, ranked merges, the pre-tokenizer named by tokenizer.ggml.pre) as the Hugging Face
// tokenizer.json it was converted from, run by @huggingface/tokenizers. Portable (the export side, which
// reads tokenizer files, is loaders/gguf-tokenizer.ts).
import type { TextTokenizer } from '../core/model.js';
import { FormatError } from './errors.js';
import { GgufMetadata, type GgufFile } from './gguf-format.js';
import { HfTokenizer } from './hf-tokenizer-json.js';
import { Llama2cTokenizer, type Llama2cVocab } from './llama2c-vocab.js';

/** llama.cpp token types (llama_token_type / gguf-py TokenType). */
export const GGUF_TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/**
 * A vocabulary as llama.cpp stores it: tokenizer model "llama" (SentencePiece: ▁-pieces scored, byte
 * pieces `<0xXX>`) or "gpt2" (byte-level BPE: pieces in GPT-2's byte-to-unicode alphabet, ranked merges
 * and a named pre-tokenizer).
 */
export interface GgufVocab {
  model: 'llama' | 'gpt2';
  /** Pieces, by id: ▁ (U+2581) for spaces in "llama" vocabularies, Ġ-style byte characters in "gpt2" ones. */
  tokens: string[];
  /** Per-token scores ("llama" only; llama.cpp's BPE ranks by merges instead). */
  scores?: Float32Array;
  /** GGUF_TOKEN_TYPE per token. */
  tokenTypes: Int32Array;
  /** "gpt2": merges by rank, each "left right". */
  merges?: string[];
  /** "gpt2": llama.cpp's pre-tokenizer name (tokenizer.ggml.pre): llama-bpe, qwen2, default. */
  pre?: string;
  bosId: number;
  eosId: number;
  /** "llama" only (byte-level BPE has no unknown token). */
  unkId?: number;
  addBos: boolean;
  /** The Jinja chat template (tokenizer.chat_template), when the model has one. */
  chatTemplate?: string;
}

export const SPACE_MARK = '\u2581'; // SentencePiece's ▁
export const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;
/** llama2.c's layout, which its tokenizer assumes: <unk>, <s>, </s>, then <0x00>..<0xFF>. */
export const BOS_ID = 1;
export const EOS_ID = 2;
export const BYTE_TOKEN_OFFSET = 3;

export const bytePiece = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/** The embedded vocabulary of a GGUF: SentencePiece ("llama") or byte-level BPE ("gpt2"). */
export function ggufVocab(gguf: GgufFile): GgufVocab {
  const md = new GgufMetadata(gguf.file, gguf.metadata);
  const model = md.string('tokenizer.ggml.model', 'none');
  if (model !== 'llama' && model !== 'gpt2') {
    throw new FormatError(gguf.file, `no vocabulary aser can run embedded: tokenizer.ggml.model is ${JSON.stringify(model)} (aser runs "llama" and "gpt2"); pass a tokenizer.json or llama2.c tokenizer.bin with --tokenizer`);
  }
  const tokens = md.stringArray('tokenizer.ggml.tokens');
  if (!tokens) throw new FormatError(gguf.file, 'missing metadata tokenizer.ggml.tokens (the embedded vocabulary)');
  const scores = md.numberArray('tokenizer.ggml.scores');
  if (model === 'llama' && (!scores || scores.length !== tokens.length)) {
    throw new FormatError(gguf.file, `tokenizer.ggml.scores has ${scores?.length ?? 0} entries for ${tokens.length} tokens`);
  }
  const types = md.numberArray('tokenizer.ggml.token_type');
  if (types && types.length !== tokens.length) throw new FormatError(gguf.file, `tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
  const chatTemplate = md.has('tokenizer.chat_template') ? md.string('tokenizer.chat_template') : undefined;
  if (model === 'gpt2') {
    const merges = md.stringArray('tokenizer.ggml.merges');
    if (!merges) throw new FormatError(gguf.file, 'missing metadata tokenizer.ggml.merges (a byte-level BPE vocabulary needs its merges)');
    return {
      model,
      tokens,
      tokenTypes: types ? Int32Array.from(types) : new Int32Array(tokens.length).fill(GGUF_TOKEN_TYPE.normal),
      merges,
      pre: md.string('tokenizer.ggml.pre', 'default'),
      bosId: md.uint('tokenizer.ggml.bos_token_id'),
      eosId: md.uint('tokenizer.ggml.eos_token_id'),
      addBos: md.bool('tokenizer.ggml.add_bos_token', true),
      chatTemplate,
    };
  }
  return {
    model,
    tokens,
    scores: Float32Array.from(scores!),
    tokenTypes: types ? Int32Array.from(types) : Int32Array.from(tokens, (t) => (BYTE_PIECE.test(t) ? GGUF_TOKEN_TYPE.byte : GGUF_TOKEN_TYPE.normal)),
    bosId: md.uint('tokenizer.ggml.bos_token_id', BOS_ID),
    eosId: md.uint('tokenizer.ggml.eos_token_id', EOS_ID),
    unkId: md.uint('tokenizer.ggml.unknown_token_id', 0),
    addBos: md.bool('tokenizer.ggml.add_bos_token', true),
    chatTemplate,
  };
}

/** The chat template a GGUF carries (tokenizer.chat_template), with its BOS/EOS token texts. */
export function ggufChatTemplateConfig(gguf: GgufFile): { chat_template?: string; bos_token?: string; eos_token?: string } | undefined {
  const md = new GgufMetadata(gguf.file, gguf.metadata);
  if (!md.has('tokenizer.chat_template')) return undefined;
  const tokens = md.stringArray('tokenizer.ggml.tokens') ?? [];
  const text = (key: string) => (md.has(key) ? tokens[md.uint(key)] : undefined);
  return { chat_template: md.string('tokenizer.chat_template'), bos_token: text('tokenizer.ggml.bos_token_id'), eos_token: text('tokenizer.ggml.eos_token_id') };
}

// ------------------------------------------------------------------ byte-level BPE

/**
 * The split regexes of the pre-tokenizers llama.cpp names in tokenizer.ggml.pre (the models' own
 * tokenizer.json patterns): Llama 3 groups digits by up to three, Qwen2 splits every digit.
 */
export const PRE_TOKENIZER_REGEX: Record<string, string> = {
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
/** Pre-tokenizers whose BPE skips merging a word that is itself a token (HF ignore_merges, llama.cpp's ignore_merges). */
export const IGNORE_MERGES_PRE = new Set(['llama-bpe']);

/** The HF pre_tokenizer of a tokenizer.ggml.pre name; "default"/"gpt2" is GPT-2's own ByteLevel split. */
function hfPreTokenizer(pre: string): Record<string, unknown> | undefined {
  if (pre === 'default' || pre === 'gpt2') return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const regex = PRE_TOKENIZER_REGEX[pre];
  if (!regex) return undefined;
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

/**
 * A TextTokenizer over a GGUF's embedded byte-level BPE vocabulary: the tokenizer.json it came from
 * (vocabulary, ranked merges, the pre-tokenizer named by tokenizer.ggml.pre, control and user-defined
 * tokens as added tokens) run by @huggingface/tokenizers.
 */
export function ggufBpeTokenizer(gguf: GgufFile, v: GgufVocab = ggufVocab(gguf)): HfTokenizer {
  const pre = v.pre ?? 'default';
  const preTokenizer = hfPreTokenizer(pre);
  if (!preTokenizer) {
    throw new FormatError(gguf.file, `tokenizer.ggml.pre ${JSON.stringify(pre)} is not a pre-tokenizer aser knows (${['default', ...Object.keys(PRE_TOKENIZER_REGEX)].join(', ')}); pass the model's tokenizer.json with --tokenizer`);
  }
  const vocab: Record<string, number> = {};
  const added: Array<Record<string, unknown>> = [];
  v.tokens.forEach((t, id) => {
    const type = v.tokenTypes[id];
    if (type === GGUF_TOKEN_TYPE.control || type === GGUF_TOKEN_TYPE.userDefined) {
      added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === GGUF_TOKEN_TYPE.control });
    } else if (!Object.hasOwn(vocab, t)) {
      vocab[t] = id;
    }
  });
  const merges = v.merges!.map((m, i) => {
    const at = m.indexOf(' ', 1);
    if (at < 0) throw new FormatError(gguf.file, `tokenizer.ggml.merges[${i}] ${JSON.stringify(m.slice(0, 40))} is not "left right"`);
    return [m.slice(0, at), m.slice(at + 1)];
  });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: IGNORE_MERGES_PRE.has(pre), vocab, merges,
    },
  };
  const config = { clean_up_tokenization_spaces: false };
  return new HfTokenizer(json, config, { file: gguf.file, bosId: v.bosId, eosId: v.eosId });
}

/**
 * A TextTokenizer over a GGUF's embedded vocabulary. Byte-level BPE goes through ggufBpeTokenizer;
 * SentencePiece needs llama2's layout (BOS 1,
 * EOS 2, byte pieces at 3..258) and a dummy-prefix space, as every llama/llama2 SentencePiece GGUF has.
 */
export function ggufTokenizer(gguf: GgufFile): TextTokenizer {
  const v = ggufVocab(gguf);
  if (v.model === 'gpt2') return ggufBpeTokenizer(gguf, v);
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
  const vocab: Llama2cVocab = { pieces, scores: v.scores!, maxTokenLength: pieces.reduce((m, p) => Math.max(m, p.length), 1) };
  return new Llama2cTokenizer(vocab);
}
