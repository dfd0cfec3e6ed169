// Vocabularies in and out of GGUF. In: a GGUF's embedded SentencePiece vocabulary (tokenizer.ggml.model
// "llama": pieces + scores) becomes a TextTokenizer through the llama2.c greedy-merge tokenizer, which
// merges exactly as llama.cpp's SPM tokenizer does (best-scoring adjacent pair, leftmost on ties, byte
// fallback to <0xXX>). BPE vocabularies ("gpt2") need their tokenizer.json. Out: a llama2.c
// tokenizer.bin or a SentencePiece-style Hugging Face tokenizer.json becomes the GgufVocab the writer embeds.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FormatError, NotFoundError } from './errors.js';
import type { GgufFile } from './gguf-format.js';
import { BOS_ID, BYTE_PIECE, EOS_ID, GGUF_TOKEN_TYPE, SPACE_MARK, ggufVocab, type GgufVocab } from './gguf-vocab.js';
import { isRecord, readJsonFile } from './json-file.js';
import { parseLlama2cTokenizer } from './llama2c-tokenizer.js';

export { ggufTokenizer, ggufVocab } from './gguf-vocab.js';

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
  return { tokens, scores: v.scores, tokenTypes: types, bosId: BOS_ID, eosId: EOS_ID, unkId: 0, addBos: true };
}

/**
 * A SentencePiece-style Hugging Face tokenizer.json (BPE over ▁-pieces with byte_fallback, as converted
 * from a SentencePiece .model) -> GgufVocab. SentencePiece numbers its pieces in score order and a BPE
 * model scores the i-th normal piece −i, so the scores follow from the ids (the merges list cannot give
 * them: it also holds alternative splits of the same piece).
 */
export function ggufVocabFromHfTokenizer(file: string, ids: { bosId: number; eosId: number }): GgufVocab {
  const json = readJsonFile(file, 'tokenizer.json');
  if (!isRecord(json) || !isRecord(json.model)) throw new FormatError(file, 'not a Hugging Face tokenizer.json (no "model" object)');
  const model = json.model;
  if (model.type !== 'BPE' || model.byte_fallback !== true || !isRecord(model.vocab) || !Array.isArray(model.merges)) {
    throw new FormatError(file, 'GGUF export embeds SentencePiece-style vocabularies only (BPE with byte_fallback over ▁ pieces); byte-level BPE (GPT-2/Llama 3 style) is not supported');
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
  return { tokens: byId, scores, tokenTypes: types, bosId: ids.bosId, eosId: ids.eosId, unkId: Math.max(0, unkId), addBos: true };
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
  throw new NotFoundError(dir, 'no vocabulary to embed: put a llama2.c tokenizer.bin or a SentencePiece-style tokenizer.json next to the model, or pass --tokenizer');
}
