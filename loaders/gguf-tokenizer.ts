// Vocabularies into GGUF: a llama2.c tokenizer.bin, a SentencePiece-style or a byte-level BPE
// tokenizer.json (with tokenizer_config.json's chat_template) becomes the GgufVocab the writer embeds.
// Reading a GGUF's embedded vocabulary is loaders/gguf-vocab.ts (portable).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FormatError, NotFoundError } from './errors.js';
import type { GgufFile } from './gguf-format.js';
import {
  BOS_ID, BYTE_PIECE, EOS_ID, GGUF_TOKEN_TYPE, IGNORE_MERGES_PRE, PRE_TOKENIZER_REGEX, SPACE_MARK, ggufVocab, type GgufVocab,
} from './gguf-vocab.js';
import { isRecord, readJsonFile } from './json-file.js';
import { parseLlama2cTokenizer } from './llama2c-tokenizer.js';

export { ggufBpeTokenizer, ggufChatTemplateConfig, ggufTokenizer, ggufVocab } from './gguf-vocab.js';

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
