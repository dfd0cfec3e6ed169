import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDetokenizer } from '../../loaders/detokenizer.js';
import { FormatError, NotFoundError } from '../../loaders/errors.js';
import { loadHfTokenizer } from '../../loaders/hf-tokenizer.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import type { TextTokenizer } from '../../core/model.js';

const TOKENIZERS = '../shared/tokenizers';

type Vector = { text: string; ids: number[] };
function jsonVectors(file: string): Vector[] {
  return JSON.parse(readFileSync(file, 'utf8')) as Vector[];
}
/** llama.cpp's vocab test files: inputs separated by a marker line, one line of ids per input. */
function ggmlVectors(stem: string): Vector[] {
  const texts = readFileSync(`${stem}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  texts.pop(); // the file ends with a marker
  const lines = readFileSync(`${stem}.out`, 'utf8').split('\n');
  lines.pop();
  expect(lines.length).toBe(texts.length);
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(' ').map(Number) }));
}
function mismatches(tok: TextTokenizer, vectors: Vector[], encode = (t: string) => tok.encode(t)) {
  return vectors.filter((v) => JSON.stringify(encode(v.text)) !== JSON.stringify(v.ids)).map((v) => ({ ...v, got: encode(v.text) }));
}
/** The strings that spell a special token: HF matches them as that token, SentencePiece encodes the text. */
const SPELLS_SPECIAL = /<s>|<\/s>|<unk>/;

// Loaded once: the LLaMA-3 tokenizer.json is 7 MB.
const llama3 = loadHfTokenizer(`${TOKENIZERS}/llama3/tokenizer.json`);

describe('Hugging Face tokenizer.json', () => {
  it('llama3: all llama.cpp and tiktoken reference vectors, and exact decode round trips', () => {
    const ggml = ggmlVectors(`${TOKENIZERS}/llama3/test-vectors/ggml-vocab-llama-bpe.gguf`);
    const tiktoken = jsonVectors(`${TOKENIZERS}/llama3/test-vectors/reference-encodings.tiktoken.json`);
    expect([ggml.length, tiktoken.length]).toEqual([46, 374]);
    expect(mismatches(llama3, ggml)).toEqual([]);
    expect(mismatches(llama3, tiktoken)).toEqual([]);
    for (const v of [...ggml, ...tiktoken]) expect(llama3.decode(v.ids)).toBe(v.text);
    expect({ vocab: llama3.vocabSize, bos: llama3.bosId, eos: llama3.eosId }).toEqual({ vocab: 128256, bos: 128000, eos: 128001 });
    expect(llama3.encode('Hello world', { bos: true })).toEqual([128000, 9906, 1917]);
    expect(llama3.decode([128000, 9906, 1917, 128001])).toBe('Hello world');
  });

  it('llama2: all llama.cpp and SentencePiece reference vectors', () => {
    const tok = loadHfTokenizer(`${TOKENIZERS}/llama2`);
    const ggml = ggmlVectors(`${TOKENIZERS}/llama2/test-vectors/ggml-vocab-llama-spm.gguf`);
    const spm = jsonVectors(`${TOKENIZERS}/llama2/test-vectors/reference-encodings.sentencepiece.json`);
    expect([ggml.length, spm.length]).toEqual([46, 374]);
    expect(mismatches(tok, ggml)).toEqual([]);
    expect(mismatches(tok, spm.filter((v) => !SPELLS_SPECIAL.test(v.text)))).toEqual([]);
    // SentencePiece reads "<s>" in text as text: so does parseSpecial false.
    const spelled = spm.filter((v) => SPELLS_SPECIAL.test(v.text));
    expect(spelled.length).toBe(3);
    expect(mismatches(tok, spelled, (t) => tok.encode(t, { parseSpecial: false }))).toEqual([]);
    expect(tok.encode('<s>')).toEqual([1]);
    expect({ vocab: tok.vocabSize, bos: tok.bosId, eos: tok.eosId }).toEqual({ vocab: 32000, bos: 1, eos: 2 });
    expect(tok.decode(tok.encode('Hello world, naïve café 😀', { bos: true }))).toBe('Hello world, naïve café 😀');
  });

  it('tok512: all SentencePiece reference vectors; the llama-style file matches run.c', () => {
    const tok = loadHfTokenizer(`${TOKENIZERS}/tok512/tokenizer.json`);
    const spm = jsonVectors(`${TOKENIZERS}/tok512/test-vectors/reference-encodings.sentencepiece.json`);
    expect(spm.length).toBe(374);
    expect(mismatches(tok, spm.filter((v) => !SPELLS_SPECIAL.test(v.text)))).toEqual([]);
    expect(mismatches(tok, spm.filter((v) => SPELLS_SPECIAL.test(v.text)), (t) => tok.encode(t, { parseSpecial: false }))).toEqual([]);
    expect({ vocab: tok.vocabSize, bos: tok.bosId, eos: tok.eosId }).toEqual({ vocab: 512, bos: 1, eos: 2 });

    // The llama-style file (no whitespace emulation) reproduces run.c, literal U+2581 aside (MANIFEST).
    const llamaStyleDir = mkdtempSync(join(tmpdir(), 'aser-tok512-'));
    writeFileSync(join(llamaStyleDir, 'tokenizer.json'), readFileSync(`${TOKENIZERS}/tok512/tokenizer.llama-style.json`));
    writeFileSync(join(llamaStyleDir, 'tokenizer_config.json'), readFileSync(`${TOKENIZERS}/tok512/tokenizer_config.json`));
    const llamaStyle = loadHfTokenizer(llamaStyleDir);
    const runc = jsonVectors(`${TOKENIZERS}/tok512/test-vectors/reference-encodings.llama2c-run-c.json`)
      .filter((v) => !v.text.includes('\u2581') && !SPELLS_SPECIAL.test(v.text));
    expect(runc.length).toBeGreaterThan(300);
    expect(mismatches(llamaStyle, runc)).toEqual([]);
  });

  it('streams text token by token with multi-byte characters whole (llama3)', () => {
    const text = 'Hi 👋🏽 家族 — 日本語のテキスト, café, 🇺🇸 and 👨‍👩‍👧 done. 鑫 𠀋';
    const ids = llama3.encode(text, { bos: true });
    const detok = createDetokenizer(llama3);
    const chunks = ids.map((id) => detok.push(id));
    chunks.push(detok.flush());
    expect(chunks.join('')).toBe(text);
    // No chunk carries a broken character, and some tokens had to be held back.
    for (const c of chunks) expect(c).not.toContain('\uFFFD');
    expect(chunks.filter((c) => c === '').length).toBeGreaterThan(1);
    // 👋 is split over two byte-level tokens and 𠀋 over three: each comes out whole, once.
    expect(chunks).toContain(' 👋');
    expect(chunks).toContain(' 𠀋');
    expect(chunks).toContain(' 家');
  });

  it('streams SentencePiece text with the prompt as context (tok512 HF and llama2.c)', () => {
    for (const tok of [loadHfTokenizer(`${TOKENIZERS}/tok512`), loadLlama2cTokenizer(`${TOKENIZERS}/tok512/tokenizer.bin`)]) {
      const prompt = tok.encode('Once upon a time', { bos: true });
      const more = tok.encode('Once upon a time, a girl saw 🦙 and 我.', { bos: true }).slice(prompt.length);
      const detok = createDetokenizer(tok, prompt);
      const streamed = more.map((id) => detok.push(id)).join('') + detok.flush();
      expect(streamed).toBe(', a girl saw 🦙 and 我.');
    }
  });

  it('names the file and reason for a missing, broken or incomplete tokenizer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-hftok-'));
    expect(() => loadHfTokenizer(dir)).toThrow(NotFoundError);
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": {"a": 0}');
    expect(() => loadHfTokenizer(dir)).toThrow(/tokenizer\.json: tokenizer\.json is not valid JSON/);
    writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0"}');
    expect(() => loadHfTokenizer(dir)).toThrow(/no "model" object/);
    // A tokenizer with no BOS anywhere (no config, no template) must say so rather than guess.
    const json = JSON.parse(readFileSync(`${TOKENIZERS}/tok512/tokenizer.json`, 'utf8'));
    json.post_processor = null;
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    expect(() => loadHfTokenizer(dir)).toThrow(FormatError);
    expect(() => loadHfTokenizer(dir)).toThrow(/no bos_token/);
    expect(loadHfTokenizer(dir, { bosId: 1, eosId: 2 }).encode('a', { bos: true })).toEqual([1, 261]);
    expect(() => llama3.decode([128256])).toThrow(RangeError);
  });
});
