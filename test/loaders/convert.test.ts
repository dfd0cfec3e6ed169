import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertLlama2cToHf, interleavedToHalfRows } from '../../loaders/convert.js';
import { LoadError, NotFoundError } from '../../loaders/errors.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import { loadHfTokenizer } from '../../loaders/hf-tokenizer.js';
import { loadLlama2c, tensorF32 } from '../../loaders/llama2c.js';
import { openSafetensors } from '../../loaders/safetensors.js';
import { readTensorF32 } from '../../core/dtype.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOK512 = '../shared/tokenizers/tok512';

/** RoPE on one head at position `pos`, in either pairing (what the executor does, in plain loops). */
function rope(v: Float32Array, pos: number, style: 'interleaved' | 'half'): Float32Array {
  const hd = v.length, half = hd / 2, out = new Float32Array(hd);
  for (let i = 0; i < half; i++) {
    const angle = pos * 10000 ** (-(2 * i) / hd);
    const [a, b] = style === 'interleaved' ? [2 * i, 2 * i + 1] : [i, i + half];
    out[a] = v[a]! * Math.cos(angle) - v[b]! * Math.sin(angle);
    out[b] = v[a]! * Math.sin(angle) + v[b]! * Math.cos(angle);
  }
  return out;
}
function matvec(w: Float32Array, rows: number, x: Float32Array): Float32Array {
  const out = new Float32Array(rows), cols = x.length;
  for (let r = 0; r < rows; r++) { let s = 0; for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!; out[r] = s; }
  return out;
}

describe('llama2.c -> Hugging Face conversion', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'aser-conv-')), 'stories260k-hf');
  const result = convertLlama2cToHf(MODEL, TOK512, out);
  const l2c = loadLlama2c(MODEL);

  it('writes a directory that loadHfModel reads back with the same config', () => {
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const json = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(json).toMatchObject({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5,
      num_attention_heads: 8, num_key_value_heads: 4, head_dim: 8, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5,
      rope_theta: 10000, rope_scaling: null, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', torch_dtype: 'float32',
    });
    const { source, tokenizer } = loadHfModel(out);
    expect(source.config).toEqual({ ...l2c.config, ropeStyle: 'half' });
    expect(result).toMatchObject({ dir: out, tensorCount: 2 + 5 * 9 });
    expect(source.has('lm_head.weight')).toBe(false);
    expect(openSafetensors(join(out, 'model.safetensors')).metadata.format).toBe('pt');
    const reference = loadHfTokenizer(TOK512);
    expect(tokenizer.encode('Once upon a time, Lily saw a ball.', { bos: true })).toEqual(reference.encode('Once upon a time, Lily saw a ball.', { bos: true }));
    source.close();
  });

  it('permutes q/k rows to rotate-half exactly and copies every other tensor byte for byte', () => {
    const { source } = loadHfModel(out);
    const hd = 8;
    for (const [name, heads] of [['model.layers.0.self_attn.q_proj.weight', 8], ['model.layers.4.self_attn.k_proj.weight', 4]] as const) {
      const src = tensorF32(l2c.tensor(name));
      const dst = readTensorF32(source.tensor(name));
      // HF row h*hd + p*hd/2 + j is llama2.c row h*hd + 2j + p (torch: view(heads, hd/2, 2, in).transpose(1, 2)).
      for (const [h, p, j] of [[0, 0, 0], [0, 1, 0], [0, 0, 3], [0, 1, 3], [heads - 1, 1, 2], [1, 0, 1]]) {
        const dr = h * hd + p * (hd / 2) + j, sr = h * hd + 2 * j + p;
        expect([...dst.subarray(dr * 64, dr * 64 + 64)], `${name} row ${dr}`).toEqual([...src.subarray(sr * 64, sr * 64 + 64)]);
      }
      // What the permutation is for: rotate-half RoPE of the converted projection equals interleaved RoPE of
      // the original, up to the same row order.
      const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7));
      const qSrc = matvec(src, heads * hd, x), qDst = matvec(dst, heads * hd, x);
      for (let h = 0; h < heads; h++) {
        const a = rope(qSrc.subarray(h * hd, h * hd + hd), 37, 'interleaved');
        const b = rope(qDst.subarray(h * hd, h * hd + hd), 37, 'half');
        for (let j = 0; j < hd / 2; j++) {
          expect(b[j]).toBe(a[2 * j]);
          expect(b[j + hd / 2]).toBe(a[2 * j + 1]);
        }
      }
    }
    for (const name of l2c.names()) {
      if (/[qk]_proj/.test(name)) continue;
      expect(Buffer.compare(Buffer.from(source.tensor(name).read()), Buffer.from(l2c.tensor(name).read())), name).toBe(0);
    }
    source.close();
  });

  it('interleavedToHalfRows matches the torch view/transpose on a labelled matrix', () => {
    // 2 heads of head_dim 4, 1 column, f32 rows labelled by their index.
    const rows = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer);
    expect([...new Float32Array(interleavedToHalfRows(rows, 8, 1, 2, 4).buffer)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(() => interleavedToHalfRows(rows, 8, 1, 3, 4)).toThrow(RangeError);
  });

  it('refuses to clobber an existing directory unless asked, and leaves nothing behind on failure', () => {
    expect(() => convertLlama2cToHf(MODEL, TOK512, out)).toThrow(LoadError);
    expect(() => convertLlama2cToHf(MODEL, TOK512, out)).toThrow(/already exists/);
    writeFileSync(join(out, 'stale.txt'), 'old');
    convertLlama2cToHf(MODEL, TOK512, out, { overwrite: true });
    expect(existsSync(join(out, 'stale.txt'))).toBe(false);

    const parent = mkdtempSync(join(tmpdir(), 'aser-conv-fail-'));
    expect(() => convertLlama2cToHf(MODEL, join(parent, 'no-tokenizer'), join(parent, 'out'))).toThrow(NotFoundError);
    // The Llama-2 tokenizer does not fit a 512-token model: refused before anything is written.
    expect(() => convertLlama2cToHf(MODEL, '../shared/tokenizers/llama2', join(parent, 'out'))).toThrow(/has 32000 tokens but the model only 512/);
    expect(readdirSync(parent)).toEqual([]);
  });
});
