import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, LoadError } from '../../loaders/errors.js';
import { canonicalTensorName, dequantizeQ8_0, ggufTensorName, loadGguf } from '../../loaders/gguf.js';
import { readGguf, type GgufValue } from '../../loaders/gguf-file.js';
import {
  exportGguf, GGUF_TOKEN_TYPE, halfToInterleavedRows, quantizeQ8_0, writeGguf, type GgufWriteTensor,
} from '../../loaders/gguf-writer.js';
import {
  ggufTokenizer, ggufVocabForExport, ggufVocabFromHfTokenizer, ggufVocabFromLlama2c,
} from '../../loaders/gguf-tokenizer.js';
import { interleavedToHalfRows } from '../../loaders/convert.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { resolveModel } from '../../loaders/registry.js';
import { f16BitsToF32 } from '../../core/dtype.js';
import type { ModelSource } from '../../core/model.js';
import { asHalfStyle, SYNTHETIC_CONFIG, syntheticModel } from '../reference/synthetic-model.js';
import { seededValues } from '../kernels/run-plan.js';
import { main } from '../../cli/main.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER_BIN = '../shared/models/stories260K/tokenizer.bin';
const TOK512 = '../shared/tokenizers/tok512';
const tmp = () => mkdtempSync(join(tmpdir(), 'aser-gguf-'));

function exportStories(dtype: 'f32' | 'f16' = 'f32', source?: ModelSource): string {
  const file = join(tmp(), `stories260k-${dtype}.gguf`);
  const src = source ?? loadLlama2c(MODEL, 'stories260k');
  try {
    exportGguf(src, ggufVocabFromLlama2c(TOKENIZER_BIN, 512), file, { dtype });
  } finally {
    src.close();
  }
  return file;
}

/** Every error the reader throws must be a FormatError naming the file (never RangeError/TypeError). */
function expectFormatError(file: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    loadGguf(file).close();
  } catch (err) {
    caught = err;
  }
  expect(caught, `no error for ${file}`).toBeInstanceOf(FormatError);
  expect((caught as FormatError).file).toBe(file);
  expect((caught as Error).message).toMatch(pattern);
}

describe('GGUF writer -> reader', () => {
  it('round-trips metadata of every value type, arrays included', () => {
    const file = join(tmp(), 'kv.gguf');
    const md: Array<[string, GgufValue]> = [
      ['a.u8', { type: 'u8', value: 255 }], ['a.i8', { type: 'i8', value: -128 }], ['a.u16', { type: 'u16', value: 65535 }],
      ['a.i16', { type: 'i16', value: -32768 }], ['a.u32', { type: 'u32', value: 4294967295 }], ['a.i32', { type: 'i32', value: -2147483648 }],
      ['a.f32', { type: 'f32', value: 1.5 }], ['a.f64', { type: 'f64', value: Math.PI }], ['a.bool', { type: 'bool', value: true }],
      ['a.u64', { type: 'u64', value: 2n ** 64n - 1n }], ['a.i64', { type: 'i64', value: -(2n ** 63n) }],
      ['a.str', { type: 'string', value: 'héllo ▁ wörld' }],
      ['a.arr.str', { type: 'array', itemType: 'string', value: ['', 'x', '▁the'] }],
      ['a.arr.f32', { type: 'array', itemType: 'f32', value: Float32Array.of(0.5, -2) }],
      ['a.arr.i32', { type: 'array', itemType: 'i32', value: Int32Array.of(-1, 7) }],
      ['a.arr.bool', { type: 'array', itemType: 'bool', value: [true, false] }],
      ['a.arr.u64', { type: 'array', itemType: 'u64', value: BigUint64Array.of(1n, 2n ** 40n) }],
      ['a.arr.empty', { type: 'array', itemType: 'u8', value: new Uint8Array(0) }],
      // A header well past the writer's first 64 KiB buffer and the reader's 1 MiB chunk.
      ['a.arr.big', { type: 'array', itemType: 'string', value: Array.from({ length: 60_000 }, (_, i) => `piece-${i}-▁`) }],
    ];
    const tensor: GgufWriteTensor = { name: 't', type: 'F32', ne: [3, 2], data: () => new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6).buffer) };
    writeGguf(file, md, [tensor], { alignment: 64 });
    const g = readGguf(file);
    expect(g.version).toBe(3);
    expect(g.alignment).toBe(64);
    expect(g.dataOffset % 64).toBe(0);
    for (const [key, value] of md) expect(g.metadata.get(key), key).toEqual(value);
    expect(g.metadata.get('general.alignment')).toEqual({ type: 'u32', value: 64 });
    expect(g.tensors).toEqual([{ name: 't', ne: [3, 2], type: expect.objectContaining({ name: 'F32' }), offset: g.dataOffset, byteLength: 24 }]);
  });

  it('maps GGUF tensor names to canonical names and back', () => {
    expect(canonicalTensorName('blk.12.attn_q.weight')).toBe('model.layers.12.self_attn.q_proj.weight');
    expect(canonicalTensorName('blk.0.ffn_norm.weight')).toBe('model.layers.0.post_attention_layernorm.weight');
    expect(canonicalTensorName('token_embd.weight')).toBe('model.embed_tokens.weight');
    expect(canonicalTensorName('rope_freqs.weight')).toBeUndefined();
    for (const n of ['output.weight', 'output_norm.weight', 'blk.3.ffn_down.weight', 'blk.1.attn_output.weight', 'blk.2.attn_k.bias']) {
      expect(ggufTensorName(canonicalTensorName(n)!)).toBe(n);
    }
  });

  it('exports stories260K (f32) with llama.* metadata, a typed vocabulary and byte-identical tensors', () => {
    const file = exportStories('f32');
    const g = loadGguf(file, 'gguf');
    const l2c = loadLlama2c(MODEL, 'stories260k');
    try {
      expect(g.config).toEqual({ ...l2c.config });
      const md = g.gguf.metadata;
      expect(md.get('general.architecture')).toEqual({ type: 'string', value: 'llama' });
      expect(md.get('llama.rope.dimension_count')).toEqual({ type: 'u32', value: 8 });
      expect(md.get('tokenizer.ggml.model')).toEqual({ type: 'string', value: 'llama' });
      const tokens = md.get('tokenizer.ggml.tokens')!.value as string[];
      expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
      expect(tokens[259]).toBe('▁t');
      const types = md.get('tokenizer.ggml.token_type')!.value as Int32Array;
      expect([types[0], types[1], types[3], types[259]]).toEqual([GGUF_TOKEN_TYPE.unknown, GGUF_TOKEN_TYPE.control, GGUF_TOKEN_TYPE.byte, GGUF_TOKEN_TYPE.normal]);
      expect(g.ggufTensor('model.layers.0.self_attn.q_proj.weight').ne).toEqual([64, 64]);
      expect(g.ggufTensor('model.embed_tokens.weight').ne).toEqual([64, 512]);
      expect(g.has('lm_head.weight')).toBe(false); // tied: no output.weight, as llama.cpp expects
      for (const name of l2c.names()) {
        const t = g.tensor(name);
        expect(t.shape, name).toEqual(l2c.tensor(name).shape);
        expect(Buffer.compare(t.read(), l2c.tensor(name).read()), name).toBe(0);
      }
    } finally {
      g.close();
      l2c.close();
    }
  });

  it('exports f16 matrices (norms stay f32) that widen back to the f32 values rounded to f16', () => {
    const g = loadGguf(exportStories('f16'));
    const l2c = loadLlama2c(MODEL);
    try {
      expect(g.ggufTensor('model.layers.0.input_layernorm.weight').type.name).toBe('F32');
      const q = g.tensor('model.layers.2.mlp.down_proj.weight');
      expect(q.dtype).toBe('f16');
      const halves = new Uint16Array(q.read().buffer);
      const f32 = new Float32Array(l2c.tensor('model.layers.2.mlp.down_proj.weight').read().buffer);
      let worst = 0;
      for (let i = 0; i < f32.length; i++) worst = Math.max(worst, Math.abs(f16BitsToF32(halves[i]!) - f32[i]!) / Math.max(Math.abs(f32[i]!), 2 ** -14));
      expect(worst).toBeLessThanOrEqual(2 ** -11); // one f16 rounding: half an ulp (relative, normals)
    } finally {
      g.close();
      l2c.close();
    }
  });

  it('permutes rotate-half (HF) q/k rows into llama.cpp adjacent-pair order', () => {
    // Exporting the HF-permuted view of stories260K must give back llama2.c's own interleaved rows.
    const l2c = loadLlama2c(MODEL);
    const g = loadGguf(exportStories('f32', asHalfStyle(l2c)));
    try {
      expect(g.config.ropeStyle).toBe('interleaved');
      for (const name of ['model.layers.1.self_attn.q_proj.weight', 'model.layers.4.self_attn.k_proj.weight', 'model.layers.0.self_attn.v_proj.weight']) {
        expect(Buffer.compare(g.tensor(name).read(), l2c.tensor(name).read()), name).toBe(0);
      }
      const rows = Uint8Array.from({ length: 16 * 3 }, (_, i) => i);
      expect(halfToInterleavedRows(interleavedToHalfRows(rows, 16, 3, 2, 1), 16, 3, 2, 1)).toEqual(rows);
    } finally {
      g.close();
      l2c.close();
    }
  });

  it('reads a qwen2 GGUF: rotate-half RoPE, q/k/v biases, untied head', () => {
    const c = { ...SYNTHETIC_CONFIG, arch: 'qwen2' as const, ropeScaling: undefined };
    const model = syntheticModel(c, 3);
    const u32 = (value: number): GgufValue => ({ type: 'u32', value });
    const file = join(tmp(), 'qwen2.gguf');
    writeGguf(file, [
      ['general.architecture', { type: 'string', value: 'qwen2' }], ['qwen2.context_length', u32(c.maxSeqLen)],
      ['qwen2.embedding_length', u32(c.dim)], ['qwen2.block_count', u32(c.nLayers)], ['qwen2.feed_forward_length', u32(c.hiddenDim)],
      ['qwen2.attention.head_count', u32(c.nHeads)], ['qwen2.attention.head_count_kv', u32(c.nKvHeads)],
      ['qwen2.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.normEps }], ['qwen2.rope.freq_base', { type: 'f32', value: c.ropeTheta }],
      ['tokenizer.ggml.bos_token_id', u32(1)], ['tokenizer.ggml.eos_token_id', u32(2)],
    ], model.names().map((name) => {
      const t = model.tensor(name);
      return { name: ggufTensorName(name)!, type: 'F32', ne: [...t.shape].reverse(), data: () => t.read() };
    }));
    const g = loadGguf(file);
    try {
      const { ropeScaling: _none, ...want } = c;
      expect(g.config).toEqual({ ...want, ropeStyle: 'half', attentionBias: true, tiedEmbeddings: false });
      for (const name of model.names()) expect(Buffer.compare(g.tensor(name).read(), model.tensor(name).read()), name).toBe(0);
    } finally {
      g.close();
    }
  });

  it('dequantizes Q8_0 tensors to f32 on read', () => {
    const file = join(tmp(), 'q8.gguf');
    const l2c = loadLlama2c(MODEL);
    const matrices = l2c.names().filter((n) => l2c.tensor(n).shape.length === 2);
    const q8 = new Map<string, Uint8Array>();
    const tensors: GgufWriteTensor[] = l2c.names().map((name) => {
      const t = l2c.tensor(name);
      const values = new Float32Array(t.read().buffer);
      // ggml requires rows to be whole Q8_0 blocks: down_proj (in = 172) stays F32.
      const quantize = t.shape.length === 2 && t.shape[1]! % 32 === 0;
      if (quantize) q8.set(name, quantizeQ8_0(values));
      return { name: ggufTensorName(name)!, type: quantize ? 'Q8_0' : 'F32', ne: [...t.shape].reverse(), data: () => (quantize ? q8.get(name)! : new Uint8Array(values.buffer)) };
    });
    const vocab = ggufVocabFromLlama2c(TOKENIZER_BIN, 512);
    const md: Array<[string, GgufValue]> = [
      ['general.architecture', { type: 'string', value: 'llama' }], ['llama.context_length', { type: 'u32', value: 512 }],
      ['llama.embedding_length', { type: 'u32', value: 64 }], ['llama.block_count', { type: 'u32', value: 5 }],
      ['llama.feed_forward_length', { type: 'u32', value: 172 }], ['llama.attention.head_count', { type: 'u32', value: 8 }],
      ['llama.attention.head_count_kv', { type: 'u32', value: 4 }], ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }], ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ];
    writeGguf(file, md, tensors);
    const g = loadGguf(file);
    try {
      expect(q8.size).toBeGreaterThan(20);
      expect(g.config).toMatchObject({ vocabSize: 512, ropeTheta: 10000, bosId: 1, eosId: 2, tiedEmbeddings: true });
      for (const name of matrices) {
        const original = new Float32Array(l2c.tensor(name).read().buffer);
        const got = new Float32Array(g.tensor(name).read().buffer);
        expect(g.tensor(name).dtype).toBe('f32');
        const blocks = q8.get(name);
        if (!blocks) {
          expect(got).toEqual(original);
          continue;
        }
        // Reference dequantization, plain loops: x = f16(d) · q.
        const view = new DataView(blocks.buffer);
        let mismatches = 0;
        let worstExcess = -Infinity;
        for (let b = 0; b < original.length / 32; b++) {
          const d = f16BitsToF32(view.getUint16(b * 34, true));
          // Half a step, plus 127 × the f16 rounding of the scale (≤ 2^-11 relative).
          const bound = d * (0.5 + 127 * 2 ** -11) + 1e-7;
          for (let i = 0; i < 32; i++) {
            const x = got[b * 32 + i]!;
            if (x !== Math.fround(d * view.getInt8(b * 34 + 2 + i))) mismatches++;
            worstExcess = Math.max(worstExcess, Math.abs(x - original[b * 32 + i]!) - bound);
          }
        }
        expect(mismatches, name).toBe(0);
        expect(worstExcess, name).toBeLessThanOrEqual(0);
      }
      expect(() => dequantizeQ8_0(new Uint8Array(33), 32)).toThrow(RangeError);
    } finally {
      g.close();
      l2c.close();
    }
  });
});

describe('GGUF vocabulary', () => {
  it('builds the same vocabulary from tokenizer.bin and from the SentencePiece-style tokenizer.json', () => {
    const fromBin = ggufVocabFromLlama2c(TOKENIZER_BIN, 512);
    const fromJson = ggufVocabFromHfTokenizer(join(TOK512, 'tokenizer.json'), { bosId: 1, eosId: 2 });
    expect(fromJson.tokens).toEqual(fromBin.tokens);
    expect(fromJson.tokenTypes).toEqual(fromBin.tokenTypes);
    expect(fromJson.scores).toEqual(fromBin.scores);
  });

  it('tokenizes with the embedded vocabulary exactly as llama2.c run.c does (374 reference strings)', () => {
    const g = loadGguf(exportStories('f16'));
    try {
      const tok = ggufTokenizer(g.gguf);
      const ref = loadLlama2cTokenizer(TOKENIZER_BIN, 512);
      const cases = JSON.parse(readFileSync(join(TOK512, 'test-vectors/reference-encodings.llama2c-run-c.json'), 'utf8')) as Array<{ text: string; ids: number[] }>;
      expect(cases.length).toBeGreaterThan(300);
      for (const { text, ids } of cases) expect(tok.encode(text), JSON.stringify(text)).toEqual(ids);
      const story = 'Once upon a time, there was a little dog named Max. He liked to run — fast! 🐶';
      expect(tok.decode(tok.encode(story, { bos: true }))).toBe(ref.decode(ref.encode(story, { bos: true })));
      expect(tok.encode('hi', { bos: true })[0]).toBe(1);
    } finally {
      g.close();
    }
  });

  it('pads a vocabulary shorter than the embedding with [PADi] tokens, as llama.cpp requires', () => {
    const v = ggufVocabFromLlama2c(TOKENIZER_BIN, 512);
    const short = { ...v, tokens: v.tokens.slice(0, 500), scores: v.scores.slice(0, 500), tokenTypes: v.tokenTypes.slice(0, 500) };
    const file = join(tmp(), 'padded.gguf');
    const src = loadLlama2c(MODEL);
    exportGguf(src, short, file);
    const md = readGguf(file).metadata;
    const tokens = md.get('tokenizer.ggml.tokens')!.value as string[];
    expect(tokens.length).toBe(512);
    expect(tokens.slice(499, 502)).toEqual([v.tokens[499], '[PAD1]', '[PAD2]']);
    expect((md.get('tokenizer.ggml.token_type')!.value as Int32Array)[511]).toBe(GGUF_TOKEN_TYPE.unused);
    expect(() => exportGguf(src, { ...v, tokens: [...v.tokens, 'x'] }, join(tmp(), 'long.gguf'))).toThrow(/does not fit the model's 512/);
    src.close();
  });

  it('refuses a gpt2 vocabulary without merges, and tokenizer models it cannot run, naming what to pass', () => {
    const file = exportStories('f32');
    const g = loadGguf(file);
    g.gguf.metadata.set('tokenizer.ggml.model', { type: 'string', value: 'gpt2' });
    expect(() => ggufTokenizer(g.gguf)).toThrow(/tokenizer\.ggml\.merges/);
    g.gguf.metadata.set('tokenizer.ggml.model', { type: 'string', value: 'bert' });
    expect(() => ggufTokenizer(g.gguf)).toThrow(/"bert".*--tokenizer/);
    g.close();
  });
});

describe('GGUF through --model and aser export', () => {
  it('resolves a .gguf path with its embedded tokenizer, or an explicit one', () => {
    const file = exportStories('f32');
    const m = resolveModel(file);
    expect(m.format).toBe('gguf');
    expect(m.source.config).toMatchObject({ dim: 64, nLayers: 5, ropeStyle: 'interleaved' });
    expect(m.tokenizer.encode('Once upon a time', { bos: true })).toEqual([1, 403, 407, 261, 378]);
    m.source.close();
    const withJson = resolveModel(file, { tokenizer: join(TOK512, 'tokenizer.json') });
    expect(withJson.tokenizer.encode('a  b')).toEqual([261, 268]); // SentencePiece collapses the double space
    withJson.source.close();
  });

  it('aser export writes the file atomically and refuses to overwrite without --overwrite', async () => {
    const dir = tmp();
    const out = join(dir, 'm.gguf');
    const log = console.log;
    const write = process.stderr.write;
    const lines: string[] = [];
    const errors: string[] = [];
    console.log = (s: string) => lines.push(s);
    process.stderr.write = ((s: string) => (errors.push(s), true)) as typeof process.stderr.write;
    const args = ['export', '--format', 'gguf', '--model', 'stories260k', '--out', out, '--dtype', 'f16', '--json'];
    try {
      expect(await main(args)).toBe(0);
      expect(JSON.parse(lines[0]!)).toMatchObject({ out, tensors: 47, dtype: 'f16', vocabulary: expect.stringMatching(/tokenizer\.bin$/) });
      expect(await main(args)).toBe(2);
      expect(errors.join('')).toMatch(/already exists/);
    } finally {
      console.log = log;
      process.stderr.write = write;
    }
    const g = loadGguf(out);
    expect(g.config.vocabSize).toBe(512);
    g.close();
    expect(ggufVocabForExport(MODEL, { bosId: 1, eosId: 2, vocabSize: 512 }).from).toMatch(/tokenizer\.bin$/);
  });
});

describe('malformed GGUF files fail with a FormatError naming the file and the reason', () => {
  const good = exportStories('f32');
  const bytes = readFileSync(good);
  const headerEnd = readGguf(good).dataOffset;
  const write = (b: Uint8Array, name = 'bad.gguf') => {
    const f = join(tmp(), name);
    writeFileSync(f, b);
    return f;
  };
  const patched = (at: number, set: (v: DataView) => void) => {
    const b = new Uint8Array(bytes);
    set(new DataView(b.buffer, at));
    return write(b);
  };
  /** Offset of the tensor info whose name is `name` (the u64 name length before it). */
  const infoOf = (name: string) => {
    const enc = Buffer.from(name);
    const at = bytes.indexOf(Buffer.concat([Buffer.from(new BigUint64Array([BigInt(enc.length)]).buffer), enc]));
    expect(at).toBeGreaterThan(0);
    return at + 8 + enc.length; // -> n_dims
  };

  it('bad magic, unsupported versions, big-endian files', () => {
    expectFormatError(patched(0, (v) => v.setUint32(0, 0x12345678, true)), /not a GGUF file: magic/);
    expectFormatError(patched(4, (v) => v.setUint32(0, 1, true)), /version 1 is not supported.*v1/);
    expectFormatError(patched(4, (v) => v.setUint32(0, 3, false)), /big-endian/);
    expectFormatError(write(new Uint8Array(2)), /too short/);
  });

  it('truncation anywhere in the header, metadata, tensor infos or data', () => {
    const cuts = [4, 8, 15, 23, 24, 30, 100, 1000, 3000, headerEnd - 200, headerEnd - 9, headerEnd - 1, headerEnd + 10, bytes.length - 1];
    for (let i = 0; i < 40; i++) cuts.push(Math.floor(((i + 0.5) / 40) * headerEnd));
    for (const cut of cuts) expectFormatError(write(bytes.subarray(0, cut)), /truncated|short read|too short|runs past the end|bytes left/);
  });

  it('huge counts and lengths are refused before allocating', () => {
    expectFormatError(patched(8, (v) => v.setBigUint64(0, 2n ** 62n, true)), /not a plausible size/);
    expectFormatError(patched(8, (v) => v.setBigUint64(0, 10n ** 9n, true)), /claims 1000000000 tensors/);
    expectFormatError(patched(16, (v) => v.setBigUint64(0, 10n ** 12n, true)), /claims 1000000000000 metadata entries/);
    expectFormatError(patched(24, (v) => v.setBigUint64(0, 10n ** 12n, true)), /truncated metadata key 0/); // first key's length
    const tokensKey = bytes.indexOf(Buffer.from('tokenizer.ggml.tokens'));
    expectFormatError(patched(tokensKey + 21 + 8, (v) => v.setBigUint64(0, 10n ** 10n, true)), /claims 10000000000 items of string/);
  });

  it('unknown tensor type, lying dims, offsets and alignment', () => {
    const q = infoOf('blk.0.attn_q.weight');
    const typeAt = q + 4 + 2 * 8;
    expectFormatError(patched(typeAt, (v) => v.setUint32(0, 99, true)), /blk\.0\.attn_q\.weight has unknown ggml type 99/);
    expectFormatError(patched(typeAt, (v) => v.setUint32(0, 12, true)), /row length 64 is not a multiple of the Q4_K block size 256/);
    expectFormatError(patched(q, (v) => v.setUint32(0, 9, true)), /9 dimensions/);
    expectFormatError(patched(q + 4, (v) => v.setBigUint64(0, 65n, true)), /attn_q\.weight has ne \[65, 64\], the metadata implies \[64, 64\]|overlaps/);
    expectFormatError(patched(q + 4 + 8, (v) => v.setBigUint64(0, 2n ** 40n, true)), /too many elements/);
    expectFormatError(patched(typeAt + 4, (v) => v.setBigUint64(0, 3n, true)), /offset 3 is not a multiple of the alignment 32/);
    expectFormatError(patched(typeAt + 4, (v) => v.setBigUint64(0, BigInt(Math.ceil(bytes.length / 32) * 32), true)), /runs past the end of the file/);
    expectFormatError(patched(typeAt + 4, (v) => v.setBigUint64(0, 0n, true)), /overlaps/);
    const embedRows = infoOf('token_embd.weight') + 4 + 8;
    expectFormatError(patched(embedRows, (v) => v.setBigUint64(0, 500n, true)), /token_embd\.weight has ne \[64, 500\], the metadata implies \[64, 512\]/);
  });

  it('metadata that contradicts itself or is missing', () => {
    const arch = bytes.indexOf(Buffer.from('llama', 'latin1'), bytes.indexOf(Buffer.from('general.architecture')));
    expectFormatError(patched(arch, (v) => v.setUint8(0, 'x'.charCodeAt(0))), /general.architecture "xlama" is not supported/);
    const heads = bytes.indexOf(Buffer.from('llama.attention.head_count\x04', 'latin1'));
    expect(heads).toBeGreaterThan(0);
    expectFormatError(patched(heads + 30, (v) => v.setUint32(0, 6, true)), /llama\.embedding_length 64 is not a multiple of llama\.attention\.head_count 6/);
    expectFormatError(patched(heads + 30, (v) => v.setUint32(0, 0, true)), /metadata llama\.attention\.head_count must be a positive integer, got u32 0/);
    const valueType = bytes.indexOf(Buffer.from('llama.block_count')) + 'llama.block_count'.length;
    expectFormatError(patched(valueType, (v) => v.setUint32(0, 77, true)), /unknown value type 77/);
  });

  it('random corruption of the header never escapes as anything but a LoadError', () => {
    let rejected = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const b = new Uint8Array(bytes);
      const r = seededValues(8, seed);
      for (const x of r) b[Math.floor(((x + 1) / 2) * Math.min(headerEnd, 4096))] ^= 1 << (seed % 8);
      const f = write(b, `fuzz-${seed}.gguf`);
      try {
        loadGguf(f).close();
      } catch (err) {
        expect(err, `seed ${seed}: ${String(err)}`).toBeInstanceOf(LoadError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(10);
    expect(existsSync(good)).toBe(true);
  });
});
