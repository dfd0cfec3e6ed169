// Vocabularies in and out of GGUF. In: a GGUF's embedded SentencePiece vocabulary (tokenizer.ggml.model
// "llama": pieces + scores) becomes a TextTokenizer through the llama2.c greedy-merge tokenizer, which
// merges exactly as llama.cpp's SPM tokenizer does (best-scoring adjacent pair, leftmost on ties, byte
// fallback to <0xXX>). A byte-level BPE vocabulary ("gpt2": pieces, ranked merges, the pre-tokenizer
// named by tokenizer.ggml.pre) becomes the Hugging Face tokenizer.json it was converted from, run by
// @huggingface/tokenizers like any other. Out: a llama2.c tokenizer.bin, a SentencePiece-style or a
// byte-level BPE tokenizer.json (with tokenizer_config.json's chat_template) becomes the GgufVocab the
// writer embeds.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { TextTokenizer } from '../core/model.js';
import { FormatError, NotFoundError } from './errors.js';
import { GgufMetadata, type GgufFile } from './gguf-file.js';
import { GGUF_TOKEN_TYPE, type GgufVocab } from './gguf-writer.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { isRecord, readJsonFile } from './json-file.js';
import { Llama2cTokenizer, parseLlama2cTokenizer, type Llama2cVocab } from './llama2c-tokenizer.js';

const SPACE_MARK = '\u2581'; // SentencePiece's ▁
const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;
/** llama2.c's layout, which its tokenizer assumes: <unk>, <s>, </s>, then <0x00>..<0xFF>. */
const BOS_ID = 1;
const EOS_ID = 2;
const BYTE_TOKEN_OFFSET = 3;

const bytePiece = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

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
const PRE_TOKENIZER_REGEX: Record<string, string> = {
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
/** Pre-tokenizers whose BPE skips merging a word that is itself a token (HF ignore_merges, llama.cpp's ignore_merges). */
const IGNORE_MERGES_PRE = new Set(['llama-bpe']);

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

/** The tokenizer.ggml.pre name of a byte-level tokenizer.json's pre_tokenizer, or undefined when it is none we know. */
function ggufPreName(preTokenizer: unknown): string | undefined {
  if (!isRecord(preTokenizer)) return undefined;
  if (preTokenizer.type === 'ByteLevel') return preTokenizer.use_regex === false ? undefined : 'default';
  if (preTokenizer.type !== 'Sequence' || !Array.isArray(preTokenizer.pretokenizers)) return undefined;
  const [split, byteLevel, ...rest] = preTokenizer.pretokenizers as unknown[];
  if (rest.length || !isRecord(split) || split.type !== 'Split' || !isRecord(split.pattern) || !isRecord(byteLevel) || byteLevel.type !== 'ByteLevel') return undefined;
  const pattern = split.pattern.Regex;
  return Object.entries(PRE_TOKENIZER_REGEX).find(([, regex]) => regex === pattern)?.[0];
}

function hasByteLevelPreTokenizer(preTokenizer: unknown): boolean {
  if (!isRecord(preTokenizer)) return false;
  if (preTokenizer.type === 'ByteLevel') return true;
  return Array.isArray(preTokenizer.pretokenizers) && preTokenizer.pretokenizers.some(hasByteLevelPreTokenizer);
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
 * A byte-level BPE tokenizer.json (GPT-2 / Llama 3 / Qwen2 style) -> a "gpt2" GgufVocab: pieces by id,
 * merges as "left right", added tokens typed control (special) or user-defined, the pre-tokenizer by
 * llama.cpp's name, and tokenizer_config.json's chat_template when there is one beside it.
 */
function ggufVocabFromByteLevelBpe(file: string, json: Record<string, unknown>, model: Record<string, unknown>, ids: { bosId: number; eosId: number }): GgufVocab {
  const pre = ggufPreName(json.pre_tokenizer);
  if (!pre) {
    throw new FormatError(file, `the pre-tokenizer is none llama.cpp names (default, ${Object.keys(PRE_TOKENIZER_REGEX).join(', ')}): the GGUF's tokenizer.ggml.pre cannot be set`);
  }
  if ((model.ignore_merges === true) !== IGNORE_MERGES_PRE.has(pre)) {
    throw new FormatError(file, `ignore_merges ${String(model.ignore_merges === true)} does not match the ${pre} pre-tokenizer llama.cpp would run`);
  }
  const byId: string[] = [];
  for (const [piece, id] of Object.entries(model.vocab as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1 << 24) throw new FormatError(file, `vocab entry ${JSON.stringify(piece)} has id ${String(id)}`);
    byId[id] = piece;
  }
  const types = new Map<number, number>();
  for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    if (isRecord(t) && typeof t.id === 'number' && typeof t.content === 'string') {
      byId[t.id] = t.content;
      types.set(t.id, t.special === true ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.userDefined);
    }
  }
  for (let i = 0; i < byId.length; i++) if (byId[i] === undefined) throw new FormatError(file, `no token with id ${i}`);
  const merges = (model.merges as unknown[]).map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    throw new FormatError(file, `merges[${i}] is neither "left right" nor [left, right]`);
  });
  return {
    model: 'gpt2',
    tokens: byId,
    tokenTypes: Int32Array.from(byId, (_, id) => types.get(id) ?? GGUF_TOKEN_TYPE.normal),
    merges,
    pre,
    bosId: ids.bosId,
    eosId: ids.eosId,
    addBos: true,
    chatTemplate: chatTemplateBeside(file),
  };
}

/** tokenizer_config.json's chat_template beside a tokenizer.json (a string; HF's named list keeps "default"). */
function chatTemplateBeside(file: string): string | undefined {
  const configFile = join(dirname(file), 'tokenizer_config.json');
  if (!existsSync(configFile)) return undefined;
  const config = readJsonFile(configFile, 'tokenizer_config.json');
  if (!isRecord(config)) return undefined;
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => isRecord(x) && x.name === 'default');
    if (isRecord(named) && typeof named.template === 'string') return named.template;
  }
  return undefined;
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

/** A llama2.c tokenizer.bin -> GgufVocab (spaces back to ▁, control and byte pieces typed). */
export function ggufVocabFromLlama2c(file: string, expectedVocabSize?: number): GgufVocab {
  const v = parseLlama2cTokenizer(file, new Uint8Array(readFileSync(file)), expectedVocabSize);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const tokens: string[] = [];
  const types = new Int32Array(v.pieces.length);
  v.pieces.forEach((p, id) => {
    let text: string;
    try {
      text = utf8.decode(p);
    } catch {
      throw new FormatError(file, `token ${id} is not valid UTF-8, which a GGUF vocabulary requires`);
    }
    // llama2.c's export writes <s>/</s> wrapped in newlines; GGUF keeps SentencePiece's own pieces.
    if (id === 0) [text, types[id]] = ['<unk>', GGUF_TOKEN_TYPE.unknown];
    else if (id === BOS_ID) [text, types[id]] = ['<s>', GGUF_TOKEN_TYPE.control];
    else if (id === EOS_ID) [text, types[id]] = ['</s>', GGUF_TOKEN_TYPE.control];
    else if (BYTE_PIECE.test(text)) types[id] = GGUF_TOKEN_TYPE.byte;
    else [text, types[id]] = [text.replaceAll(' ', SPACE_MARK), GGUF_TOKEN_TYPE.normal];
    tokens.push(text);
  });
  return { model: 'llama', tokens, scores: v.scores, tokenTypes: types, bosId: BOS_ID, eosId: EOS_ID, unkId: 0, addBos: true };
}

/**
 * A Hugging Face tokenizer.json -> GgufVocab: byte-level BPE through ggufVocabFromByteLevelBpe, or
 * SentencePiece-style (BPE over ▁-pieces with byte_fallback, as converted from a SentencePiece .model). SentencePiece numbers its pieces in score order and a BPE
 * model scores the i-th normal piece −i, so the scores follow from the ids (the merges list cannot give
 * them: it also holds alternative splits of the same piece).
 */
export function ggufVocabFromHfTokenizer(file: string, ids: { bosId: number; eosId: number }): GgufVocab {
  const json = readJsonFile(file, 'tokenizer.json');
  if (!isRecord(json) || !isRecord(json.model)) throw new FormatError(file, 'not a Hugging Face tokenizer.json (no "model" object)');
  const model = json.model;
  if (model.type === 'BPE' && model.byte_fallback !== true && isRecord(model.vocab) && Array.isArray(model.merges) && hasByteLevelPreTokenizer(json.pre_tokenizer)) {
    return ggufVocabFromByteLevelBpe(file, json, model, ids);
  }
  if (model.type !== 'BPE' || model.byte_fallback !== true || !isRecord(model.vocab) || !Array.isArray(model.merges)) {
    throw new FormatError(file, 'GGUF export embeds SentencePiece-style BPE (byte_fallback over ▁ pieces) or byte-level BPE (GPT-2/Llama 3/Qwen2 style) vocabularies; this tokenizer.json is neither');
  }
  const byId: string[] = [];
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1 << 24) throw new FormatError(file, `vocab entry ${JSON.stringify(piece)} has id ${String(id)}`);
    byId[id] = piece;
  }
  const special = new Set<number>();
  for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    if (isRecord(t) && typeof t.id === 'number' && typeof t.content === 'string') {
      byId[t.id] = t.content;
      if (t.special === true) special.add(t.id);
    }
  }
  for (let i = 0; i < byId.length; i++) if (byId[i] === undefined) throw new FormatError(file, `no token with id ${i}`);
  const unkId = typeof model.unk_token === 'string' ? byId.indexOf(model.unk_token) : -1;
  const n = byId.length;
  const scores = new Float32Array(n);
  const types = new Int32Array(n);
  let normal = 0;
  for (let id = 0; id < n; id++) {
    const t = byId[id]!;
    if (id === unkId) types[id] = GGUF_TOKEN_TYPE.unknown;
    else if (special.has(id)) types[id] = GGUF_TOKEN_TYPE.control;
    else if (BYTE_PIECE.test(t)) types[id] = GGUF_TOKEN_TYPE.byte;
    else {
      types[id] = GGUF_TOKEN_TYPE.normal;
      scores[id] = -normal++;
    }
  }
  return { model: 'llama', tokens: byId, scores, tokenTypes: types, bosId: ids.bosId, eosId: ids.eosId, unkId: Math.max(0, unkId), addBos: true, chatTemplate: chatTemplateBeside(file) };
}

/**
 * The vocabulary to embed when exporting a model: `tokenizer` (a tokenizer.bin or tokenizer.json) when
 * given, else a tokenizer.bin next to the model file, else its tokenizer.json (next to the file, or in
 * the model directory), else a GGUF source's own vocabulary.
 */
export function ggufVocabForExport(
  modelPath: string,
  ids: { bosId: number; eosId: number; vocabSize: number },
  options: { tokenizer?: string; gguf?: GgufFile } = {},
): { vocab: GgufVocab; from: string } {
  const dir = existsSync(join(modelPath, 'config.json')) ? modelPath : dirname(modelPath);
  const fromFile = (file: string) => ({
    vocab: basename(file).endsWith('.json') ? ggufVocabFromHfTokenizer(file, ids) : ggufVocabFromLlama2c(file, ids.vocabSize),
    from: file,
  });
  if (options.tokenizer) {
    const file = existsSync(join(options.tokenizer, 'tokenizer.bin')) ? join(options.tokenizer, 'tokenizer.bin')
      : existsSync(join(options.tokenizer, 'tokenizer.json')) ? join(options.tokenizer, 'tokenizer.json') : options.tokenizer;
    if (!existsSync(file)) throw new NotFoundError(file, 'tokenizer not found');
    return fromFile(file);
  }
  if (options.gguf) return { vocab: ggufVocab(options.gguf), from: options.gguf.file };
  for (const name of ['tokenizer.bin', 'tokenizer.json']) {
    const file = join(dir, name);
    if (existsSync(file)) return fromFile(file);
  }
  throw new NotFoundError(dir, 'no vocabulary to embed: put a llama2.c tokenizer.bin or a tokenizer.json (SentencePiece-style or byte-level BPE) next to the model, or pass --tokenizer');
}
