// Hugging Face tokenizer.json through @huggingface/tokenizers, wrapped as a TextTokenizer.
// BOS is prepended by us (never by the library's post-processor), so `bos` means the same for every
// tokenizer; decode drops special tokens and never applies clean_up_tokenization_spaces (which would
// turn " 's" into "'s"), so decode(encode(x)) gives x back for byte-level vocabularies.
// Portable: built from parsed JSON (the files are read by loaders/hf-tokenizer.ts, or fetched by a page).
import { Tokenizer } from '@huggingface/tokenizers';
import type { TextTokenizer } from '../core/model.js';
import { FormatError } from './errors.js';
import { isRecord } from './json-record.js';

export interface HfEncodeOptions {
  /** Prepend the BOS id (default false). */
  bos?: boolean;
  /**
   * Match special tokens written in the text (`<s>`, `<|eot_id|>`) as those tokens (default true, as
   * HF does). False encodes them as plain text, as SentencePiece does: use it for untrusted input.
   */
  parseSpecial?: boolean;
}

export interface HfTokenizerOptions {
  /** Names the source in errors. */
  file?: string;
  /** Override the BOS/EOS ids (the model's config.json wins over tokenizer_config.json). */
  bosId?: number;
  eosId?: number;
}

/** tokenizer_config.json names special tokens as a string or as an AddedToken object ({content}). */
function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isRecord(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

/** The first special token of a TemplateProcessing "single" template (where Llama puts BOS). */
function templateBosToken(json: Record<string, unknown>): string | undefined {
  const procs: unknown[] = [];
  const pp = json.post_processor;
  if (isRecord(pp)) {
    if (pp.type === 'Sequence' && Array.isArray(pp.processors)) procs.push(...pp.processors);
    else procs.push(pp);
  }
  for (const p of procs) {
    if (isRecord(p) && p.type === 'TemplateProcessing' && Array.isArray(p.single)) {
      const first = p.single[0];
      if (isRecord(first) && isRecord(first.SpecialToken) && typeof first.SpecialToken.id === 'string') return first.SpecialToken.id;
    }
  }
  return undefined;
}

export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly file: string;
  private readonly tok: Tokenizer;
  private plainTextTok?: Tokenizer;

  constructor(
    private readonly json: Record<string, unknown>,
    private readonly config: Record<string, unknown> = {},
    options: HfTokenizerOptions = {},
  ) {
    this.file = options.file ?? 'tokenizer.json';
    this.tok = HfTokenizer.build(this.file, json, config);
    // The library checks little when it builds; a probe surfaces a broken pipeline at load, not mid-request.
    this.guard('encode a probe text', () => this.tok.decode(this.tok.encode('Hello world 1', { add_special_tokens: true }).ids, {}));
    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.bosId = options.bosId ?? this.idOfSpecial('bos_token', specialTokenContent(config.bos_token) ?? templateBosToken(json));
    this.eosId = options.eosId ?? this.idOfSpecial('eos_token', specialTokenContent(config.eos_token));
  }

  private static build(file: string, json: Record<string, unknown>, config: Record<string, unknown>): Tokenizer {
    try {
      return new Tokenizer(json, config);
    } catch (err) {
      throw new FormatError(file, `@huggingface/tokenizers cannot build this tokenizer (${(err as Error).message})`);
    }
  }

  private idOfSpecial(field: string, content: string | undefined): number {
    if (content === undefined) {
      throw new FormatError(this.file, `no ${field} in tokenizer_config.json and none given by the model config`);
    }
    const id = this.tok.token_to_id(content);
    if (id === undefined) throw new FormatError(this.file, `${field} "${content}" is not in the vocabulary`);
    return id;
  }

  encode(text: string, options: HfEncodeOptions = {}): number[] {
    const tok = options.parseSpecial === false ? this.plainTextTokenizer() : this.tok;
    const ids = text.length === 0 ? [] : this.guard('encode', () => tok.encode(text, { add_special_tokens: false }).ids);
    return options.bos ? [this.bosId, ...ids] : ids;
  }

  /** Text of `ids` with special tokens (BOS, EOS, <|eot_id|>, …) left out. */
  decode(ids: number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    if (ids.length === 0) return '';
    return this.guard('decode', () => this.tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
  }

  /** Library failures (a tokenizer.json the library accepted but cannot run) as a FormatError naming the file. */
  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new FormatError(this.file, `tokenizer.json cannot ${what} (${(err as Error)?.message ?? String(err)}): broken or unsupported tokenizer`);
    }
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** A second tokenizer without the special added tokens, so their text goes through the model like any other. */
  private plainTextTokenizer(): Tokenizer {
    if (!this.plainTextTok) {
      const added = Array.isArray(this.json.added_tokens) ? this.json.added_tokens : [];
      const json = { ...this.json, added_tokens: added.filter((t) => isRecord(t) && t.special !== true) };
      this.plainTextTok = HfTokenizer.build(this.file, json, this.config);
    }
    return this.plainTextTok;
  }
}

/**
 * Token ids must fit the vocabulary the file itself defines (model vocabulary plus added tokens): the
 * library sizes its id tables by the largest id, so one id of 2^30 would cost seconds and gigabytes.
 */
function checkTokenIds(file: string, json: Record<string, unknown>): void {
  const model = json.model as Record<string, unknown>;
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  const vocab = model.vocab;
  const modelCount = Array.isArray(vocab) ? vocab.length : isRecord(vocab) ? Object.keys(vocab).length : 0;
  const limit = modelCount + added.length;
  const check = (where: string, id: unknown) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= limit) {
      throw new FormatError(file, `${where} has id ${JSON.stringify(id)}, outside 0..${limit - 1} (${modelCount} vocabulary entries + ${added.length} added tokens)`);
    }
  };
  if (isRecord(vocab)) for (const [token, id] of Object.entries(vocab)) check(`model.vocab[${JSON.stringify(token).slice(0, 40)}]`, id);
  added.forEach((t, i) => check(`added_tokens[${i}]`, isRecord(t) ? t.id : undefined));
}

/**
 * The tokenizer of a parsed `tokenizer.json` (`json`) and `tokenizer_config.json` (`config`, {} when
 * there is none); `file` names the source in errors.
 */
export function hfTokenizerFromJson(file: string, json: unknown, config: unknown = {}, options: HfTokenizerOptions = {}): HfTokenizer {
  if (!isRecord(json) || !isRecord(json.model)) throw new FormatError(file, 'not a Hugging Face tokenizer.json (no "model" object)');
  checkTokenIds(file, json);
  if (!isRecord(config)) throw new FormatError(file, 'tokenizer_config.json is not a JSON object');
  return new HfTokenizer(json, config, { ...options, file });
}
