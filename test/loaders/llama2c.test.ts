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
