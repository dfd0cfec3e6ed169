// Byte-level BPE (GPT-2 / Llama 3 / Qwen2) vocabularies through GGUF: tokenizer.json -> GgufVocab ->
// a GGUF file -> the embedded vocabulary run as a tokenizer, checked against llama.cpp's and tiktoken's
// LLaMA-3 reference encodings, and the chat template carried along.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FormatError } from '../../loaders/errors.js';
import { loadGguf } from '../../loaders/gguf.js';
import { readGguf } from '../../loaders/gguf-file.js';
import { exportGguf, GGUF_TOKEN_TYPE, writeGguf } from '../../loaders/gguf-writer.js';
import { ggufChatTemplateConfig, ggufTokenizer, ggufVocab, ggufVocabFromHfTokenizer } from '../../loaders/gguf-tokenizer.js';
import { resolveModel } from '../../loaders/registry.js';
import { chatTemplateFromConfig } from '../../serve/chat-template.js';
import type { ModelConfig, TextTokenizer } from '../../core/model.js';
import { SYNTHETIC_CONFIG, syntheticModel } from '../reference/synthetic-model.js';

const LLAMA3 = resolve('../shared/tokenizers/llama3');
const tmp = () => mkdtempSync(join(tmpdir(), 'aser-gguf-bpe-'));

type Vector = { text: string; ids: number[] };
/** llama.cpp's vocab test files: inputs separated by a marker line, one line of ids per input. */
function ggmlVectors(stem: string): Vector[] {
  const texts = readFileSync(`${stem}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  texts.pop();
  const lines = readFileSync(`${stem}.out`, 'utf8').split('\n');
  lines.pop();
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(' ').map(Number) }));
}
const LLAMA3_VECTORS: Vector[] = [
  ...ggmlVectors(`${LLAMA3}/test-vectors/ggml-vocab-llama-bpe.gguf`),
  ...(JSON.parse(readFileSync(`${LLAMA3}/test-vectors/reference-encodings.tiktoken.json`, 'utf8')) as Vector[]),
];
const mismatches = (tok: TextTokenizer, vectors: Vector[]) =>
  vectors.filter((v) => JSON.stringify(tok.encode(v.text)) !== JSON.stringify(v.ids)).map((v) => ({ ...v, got: tok.encode(v.text) }));

const CHAT_TEMPLATE = "{% for m in messages %}{{ '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + m.content + '<|eot_id|>' }}{% endfor %}"
  + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** A directory with the LLaMA-3 tokenizer.json and a tokenizer_config.json that has a chat template. */
function llama3WithChatTemplate(): string {
  const dir = tmp();
  symlinkSync(join(LLAMA3, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const config = JSON.parse(readFileSync(join(LLAMA3, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: CHAT_TEMPLATE }));
  return dir;
}

/** A one-layer llama with the LLaMA-3 vocabulary and a tiny width (16 MB of embedding). */
const TINY_LLAMA3: ModelConfig = {
  ...SYNTHETIC_CONFIG, dim: 32, nHeads: 4, nKvHeads: 2, headDim: 8, hiddenDim: 64, nLayers: 1, vocabSize: 128256,
  tiedEmbeddings: true, attentionBias: false, ropeScaling: undefined, bosId: 128000, eosId: 128001,
};

describe('byte-level BPE vocabularies in GGUF', () => {
  const dir = llama3WithChatTemplate();
  const vocab = ggufVocabFromHfTokenizer(join(dir, 'tokenizer.json'), { bosId: 128000, eosId: 128001 });
  const file = join(tmp(), 'tiny-llama3.gguf');
  const src = syntheticModel(TINY_LLAMA3, 3);
  exportGguf(src, vocab, file, { dtype: 'f16' });

  it('reads the LLaMA-3 tokenizer.json as a gpt2 vocabulary: pieces, merges, typed specials, llama-bpe, chat template', () => {
    expect(vocab.model).toBe('gpt2');
    expect(vocab.pre).toBe('llama-bpe');
    expect(vocab.tokens.length).toBe(128256);
    expect(vocab.merges!.length).toBe(280147);
    expect(vocab.merges![0]).toBe('Ġ Ġ');
    expect(vocab.tokens[9906]).toBe('Hello');
    expect(vocab.tokens[1917]).toBe('Ġworld');
    expect(vocab.tokens[128009]).toBe('<|eot_id|>');
    expect(vocab.tokenTypes[128009]).toBe(GGUF_TOKEN_TYPE.control);
    expect(vocab.tokenTypes[1917]).toBe(GGUF_TOKEN_TYPE.normal);
    expect(vocab.scores).toBeUndefined();
    expect(vocab.chatTemplate).toBe(CHAT_TEMPLATE);
  });

  it('writes the tokenizer.ggml.* keys llama.cpp reads for a gpt2 vocabulary', () => {
    const md = readGguf(file).metadata;
    expect(md.get('tokenizer.ggml.model')).toEqual({ type: 'string', value: 'gpt2' });
    expect(md.get('tokenizer.ggml.pre')).toEqual({ type: 'string', value: 'llama-bpe' });
    expect(md.get('tokenizer.ggml.bos_token_id')).toEqual({ type: 'u32', value: 128000 });
    expect(md.get('tokenizer.ggml.eos_token_id')).toEqual({ type: 'u32', value: 128001 });
    expect(md.get('tokenizer.chat_template')).toEqual({ type: 'string', value: CHAT_TEMPLATE });
    expect(md.has('tokenizer.ggml.scores')).toBe(false);
    expect(md.has('tokenizer.ggml.unknown_token_id')).toBe(false);
    const back = ggufVocab(readGguf(file));
    expect(back.merges).toEqual(vocab.merges);
    expect(back.tokens).toEqual(vocab.tokens);
    expect([...back.tokenTypes]).toEqual([...vocab.tokenTypes]);
  });

  it('the GGUF-embedded vocabulary reproduces every LLaMA-3 reference encoding (llama.cpp and tiktoken) and decodes them back', () => {
    const m = resolveModel(file);
    try {
      expect(m.format).toBe('gguf');
      const tok = m.tokenizer;
      expect({ vocab: tok.vocabSize, bos: tok.bosId, eos: tok.eosId }).toEqual({ vocab: 128256, bos: 128000, eos: 128001 });
      expect(LLAMA3_VECTORS.length).toBeGreaterThan(100);
      expect(mismatches(tok, LLAMA3_VECTORS)).toEqual([]);
      for (const v of LLAMA3_VECTORS) expect(tok.decode(v.ids)).toBe(v.text);
      expect(tok.encode('Hello world', { bos: true })).toEqual([128000, 9906, 1917]);
      expect(tok.encode('<|eot_id|>')).toEqual([128009]);
    } finally {
      m.source.close();
    }
  });

  it('carries the chat template: rendered from the GGUF as from tokenizer_config.json', () => {
    const g = loadGguf(file);
    try {
      const config = ggufChatTemplateConfig(g.gguf);
      expect(config).toEqual({ chat_template: CHAT_TEMPLATE, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });
      const template = chatTemplateFromConfig(config);
      expect(template.render([{ role: 'user', content: 'Hi' }], true)).toBe(
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
      );
      expect(template.stopTokens(ggufTokenizer(g.gguf))).toContain(128009);
    } finally {
      g.close();
    }
  });

  it('qwen2 and GPT-2 pre-tokenizers: named on export, rebuilt on read (Qwen2 splits every digit, Llama 3 groups three)', () => {
    // A tiny byte-level vocabulary: the 256 byte characters plus merges that build "12" and "123".
    const json = JSON.parse(readFileSync(join(LLAMA3, 'tokenizer.json'), 'utf8')) as Record<string, any>;
    const byteChars = Object.entries(json.model.vocab as Record<string, number>).filter(([, id]) => id < 256).sort((a, b) => a[1] - b[1]).map(([t]) => t);
    const tokens = [...byteChars, '12', '123'];
    const small = (pre: string) => {
      const f = join(tmp(), `${pre}.gguf`);
      writeGguf(f, [
        ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
        ['tokenizer.ggml.pre', { type: 'string', value: pre }],
        ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
        ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: new Int32Array(tokens.length).fill(1) }],
        ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: ['1 2', '12 3'] }],
        ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 0 }],
        ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 0 }],
      ], []);
      return ggufTokenizer(readGguf(f));
    };
    const id = (t: string) => tokens.indexOf(t);
    expect(small('llama-bpe').encode('1234')).toEqual([id('123'), id('4')]);
    expect(small('qwen2').encode('1234')).toEqual([id('1'), id('2'), id('3'), id('4')]);
    expect(small('default').encode('1234')).toEqual([id('123'), id('4')]);
    expect(() => small('deepseek-coder')).toThrow(FormatError);
    expect(() => small('deepseek-coder')).toThrow(/tokenizer\.ggml\.pre "deepseek-coder".*--tokenizer/);

    // Export side: the Qwen2 regex is named qwen2; an unknown regex is refused with the reason.
    const qwenRegex = json.pre_tokenizer.pretokenizers[0].pattern.Regex.replace('\\p{N}{1,3}', '\\p{N}');
    const write = (regex: string, ignoreMerges: boolean) => {
      const d = tmp();
      const j = { ...json, model: { ...json.model, ignore_merges: ignoreMerges }, pre_tokenizer: { ...json.pre_tokenizer, pretokenizers: [{ ...json.pre_tokenizer.pretokenizers[0], pattern: { Regex: regex } }, json.pre_tokenizer.pretokenizers[1]] } };
      writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(j));
      return ggufVocabFromHfTokenizer(join(d, 'tokenizer.json'), { bosId: 128000, eosId: 128001 });
    };
    expect(write(qwenRegex, false).pre).toBe('qwen2');
    expect(() => write('\\s+', false)).toThrow(/pre-tokenizer is none llama\.cpp names/);
  });
});
