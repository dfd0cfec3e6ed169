import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLlama2c, tensorF32 } from '../../loaders/llama2c.js';

const MODEL = '../shared/models/stories260K/model.bin';

describe('llama2.c checkpoint loader', () => {
  it('reads the stories260K v1 header and every tensor', () => {
    const m = loadLlama2c(MODEL);
    expect(m.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 512, tiedEmbeddings: true });
    expect(m.has('lm_head.weight')).toBe(false);
    expect(m.tensor('model.layers.4.mlp.up_proj.weight').shape).toEqual([172, 64]);
    const norm = tensorF32(m.tensor('model.layers.0.input_layernorm.weight'));
    expect(norm.every(Number.isFinite)).toBe(true);
    // The last tensor (layer 4 up_proj) ends exactly at the end of the file.
    const bytes = readFileSync(MODEL);
    const up = m.tensor('model.layers.4.mlp.up_proj.weight').read();
    expect(Buffer.compare(Buffer.from(up), bytes.subarray(bytes.length - up.length))).toBe(0);
    m.close();
  });

  it('refuses a truncated checkpoint, a wrong magic and a missing file with a clear reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-l2c-'));
    const truncated = join(dir, 'truncated.bin');
    writeFileSync(truncated, readFileSync(MODEL).subarray(0, 500_000));
    expect(() => loadLlama2c(truncated)).toThrow(/truncated checkpoint/);
    const garbage = join(dir, 'garbage.bin');
    writeFileSync(garbage, Buffer.alloc(4096, 0xff));
    expect(() => loadLlama2c(garbage)).toThrow(/not a llama2.c checkpoint/);
    expect(() => loadLlama2c(join(dir, 'missing.bin'))).toThrow(/cannot open/);
    copyFileSync(MODEL, join(dir, 'ok.bin'));
    expect(loadLlama2c(join(dir, 'ok.bin')).config.dim).toBe(64);
  });
});

describe('llama2.c legacy v0 checkpoints', () => {
  /** Re-serializes stories260K in the legacy layout (llama2.c model.py legacy_export), unshared classifier. */
  function writeV0(path: string): void {
    const m = loadLlama2c(MODEL);
    const c = m.config;
    const header = Buffer.alloc(28);
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, -c.vocabSize, c.maxSeqLen].forEach((v, i) => header.writeInt32LE(v, 4 * i));
    const perLayer = (suffix: string) => Array.from({ length: c.nLayers }, (_, l) => `model.layers.${l}.${suffix}`);
    const order = [
      'model.embed_tokens.weight', ...perLayer('input_layernorm.weight'),
      ...['q', 'k', 'v', 'o'].flatMap((p) => perLayer(`self_attn.${p}_proj.weight`)),
      ...perLayer('post_attention_layernorm.weight'),
      ...['gate', 'down', 'up'].flatMap((p) => perLayer(`mlp.${p}_proj.weight`)),
      'model.norm.weight',
    ];
    const freqs = Buffer.alloc(2 * c.maxSeqLen * (c.headDim / 2) * 4);
    // An unshared classifier: the embedding again, negated so it differs from it.
    const cls = Buffer.from(new Float32Array(tensorF32(m.tensor('model.embed_tokens.weight')).map((x) => -x)).buffer);
    writeFileSync(path, Buffer.concat([header, ...order.map((n) => Buffer.from(m.tensor(n).read())), freqs, cls]));
    m.close();
  }

  it('reads every tensor of a v0 file, skipping the RoPE tables, with an unshared classifier', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-l2c-v0-'));
    const v0File = join(dir, 'v0.bin');
    writeV0(v0File);
    const v1 = loadLlama2c(MODEL);
    const v0 = loadLlama2c(v0File);
    expect(v0.config).toEqual({ ...v1.config, tiedEmbeddings: false });
    for (const name of v1.names()) expect(Buffer.compare(Buffer.from(v0.tensor(name).read()), Buffer.from(v1.tensor(name).read())), name).toBe(0);
    expect(tensorF32(v0.tensor('lm_head.weight'))[5]).toBe(-tensorF32(v1.tensor('model.embed_tokens.weight'))[5]!);
    v0.close();
    v1.close();
    expect(() => loadLlama2c(dir)).toThrow(/not a regular file/);
  });
});
