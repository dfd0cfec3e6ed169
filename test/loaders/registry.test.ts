import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { convertLlama2cToHf } from '../../loaders/convert.js';
import { FormatError, NotFoundError } from '../../loaders/errors.js';
import { HfTokenizer } from '../../loaders/hf-tokenizer.js';
import { Llama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { findModelsJson, listPresets, loadRegistry, resolveModel } from '../../loaders/registry.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const tmp = () => mkdtempSync(join(tmpdir(), 'aser-reg-'));

describe('model registry (models.json) and resolveModel', () => {
  it('ships stories260k with files matching their PROVENANCE sha256 and the shared originals', () => {
    const provenance = readFileSync('models/stories260k/PROVENANCE.md', 'utf8');
    const originals: Record<string, string> = {
      'model.bin': '../shared/models/stories260K/model.bin',
      'tokenizer.bin': '../shared/models/stories260K/tokenizer.bin',
      'tokenizer.json': '../shared/tokenizers/tok512/tokenizer.json',
      'tokenizer_config.json': '../shared/tokenizers/tok512/tokenizer_config.json',
    };
    for (const [name, original] of Object.entries(originals)) {
      const digest = sha256(`models/stories260k/${name}`);
      expect(provenance, name).toContain(`| \`${name}\` | ${readFileSync(`models/stories260k/${name}`).length} | \`${digest}\``);
      expect(digest, name).toBe(sha256(original));
    }
    expect(provenance).toMatch(/MIT/);
  });

  it('resolves the default preset from the repository models.json', () => {
    expect(findModelsJson()).toBe(resolve('models.json'));
    const registry = loadRegistry();
    expect(registry.defaultName).toBe('stories260k');
    expect([...registry.presets.keys()].sort()).toEqual(['llama2-7b', 'llama3-8b', 'qwen1.5-7b', 'stories260k']);
    const m = resolveModel('stories260k');
    expect(m.preset?.name).toBe('stories260k');
    expect(m.format).toBe('llama2c');
    expect(m.source.id).toBe('stories260k');
    expect(m.source.config).toMatchObject({ dim: 64, nLayers: 5, vocabSize: 512, ropeStyle: 'interleaved' });
    expect(m.tokenizer).toBeInstanceOf(HfTokenizer);
    // SentencePiece tokenization (tok512 reference vectors), with BOS.
    expect(m.tokenizer.encode('Once upon a time ', { bos: true })).toEqual([1, 403, 407, 261, 378]);
    m.source.close();
  });

  it('resolves llama2.c files (sibling or explicit tokenizer) and HF directories by path', () => {
    const dir = tmp();
    copyFileSync('../shared/models/stories260K/model.bin', join(dir, 'model.bin'));
    expect(() => resolveModel(join(dir, 'model.bin'))).toThrow(/no tokenizer next to model.bin/);
    const withBin = resolveModel(join(dir, 'model.bin'), { tokenizer: '../shared/tokenizers/tok512/tokenizer.bin' });
    expect(withBin.tokenizer).toBeInstanceOf(Llama2cTokenizer);
    expect(withBin.source.id).toBe('model');
    withBin.source.close();
    copyFileSync('../shared/models/stories260K/tokenizer.bin', join(dir, 'tokenizer.bin'));
    const sibling = resolveModel(dir); // a directory holding model.bin is a llama2.c model
    expect(sibling.tokenizer).toBeInstanceOf(Llama2cTokenizer);
    sibling.source.close();
    expect(() => resolveModel(join(dir, 'model.bin'), { tokenizer: '../shared/tokenizers/llama2/tokenizer.json' })).toThrow(/has 32000 tokens but the model only 512/);

    const hf = join(tmp(), 'hf');
    convertLlama2cToHf('../shared/models/stories260K/model.bin', '../shared/tokenizers/tok512', hf);
    for (const path of [hf, join(hf, 'config.json'), join(hf, 'model.safetensors')]) {
      const m = resolveModel(path);
      expect(m.format).toBe('hf');
      expect(m.source.config.ropeStyle).toBe('half');
      expect(m.tokenizer.vocabSize).toBe(512);
      m.source.close();
    }
  });

  it('uses a preset\'s env variable, and says where to put missing weights', () => {
    const hf = join(tmp(), 'Meta-Llama-3-8B');
    convertLlama2cToHf('../shared/models/stories260K/model.bin', '../shared/tokenizers/tok512', hf);
    const viaEnv = resolveModel('llama3-8b', { env: { ASER_MODEL_LLAMA3_8B: hf } });
    expect(viaEnv.preset).toMatchObject({ name: 'llama3-8b', path: hf, pathFrom: 'ASER_MODEL_LLAMA3_8B' });
    expect(viaEnv.source.id).toBe('llama3-8b');
    viaEnv.source.close();

    const gone = join(tmp(), 'nothing-here');
    expect(() => resolveModel('qwen1.5-7b', { env: { ASER_MODEL_QWEN1_5_7B: gone } })).toThrow(NotFoundError);
    expect(() => resolveModel('qwen1.5-7b', { env: { ASER_MODEL_QWEN1_5_7B: gone } })).toThrow(/ASER_MODEL_QWEN1_5_7B points here .* Qwen\/Qwen1\.5-7B/);
    const defaultPath = join(homedir(), '.cache/aser/models/Llama-2-7b-hf');
    const preset = listPresets({ env: {} }).find((p) => p.name === 'llama2-7b')!;
    expect(preset.path).toBe(defaultPath);
    if (!existsSync(defaultPath)) {
      expect(() => resolveModel('llama2-7b', { env: {} })).toThrow(
        `${defaultPath}: model llama2-7b is not installed: download the Hugging Face repo meta-llama/Llama-2-7b-hf`,
      );
      expect(() => resolveModel('llama2-7b', { env: {} })).toThrow(/or set ASER_MODEL_LLAMA2_7B to where it is/);
    }
    expect(() => resolveModel('llama9-1t')).toThrow(/no such model: not a preset in .*models\.json \(stories260k, llama3-8b, llama2-7b, qwen1\.5-7b\)/);
    expect(() => resolveModel(join(tmp(), 'x.bin'))).toThrow(NotFoundError);
  });

  it('refuses a broken models.json and a file that is not a model', () => {
    const dir = tmp();
    const reg = join(dir, 'models.json');
    writeFileSync(reg, JSON.stringify({ default: 'a', models: { a: { format: 'gguf', path: 'a.gguf' } } }));
    expect(() => resolveModel('a', { registry: reg })).toThrow(FormatError);
    expect(() => resolveModel('a', { registry: reg })).toThrow(/models.a.format must be "llama2c" or "hf"/);
    writeFileSync(reg, '{"models": ');
    expect(() => loadRegistry(reg)).toThrow(/not valid JSON/);
    // Relative preset paths resolve against the registry file's directory.
    mkdirSync(join(dir, 'm'));
    copyFileSync('../shared/models/stories260K/model.bin', join(dir, 'm', 'model.bin'));
    writeFileSync(reg, JSON.stringify({ default: 'tiny', models: { tiny: { format: 'llama2c', path: 'm/model.bin', tokenizer: 'm/tok.bin' } } }));
    expect(() => resolveModel('tiny', { registry: reg })).toThrow(/m\/tok\.bin: tokenizer not found/);
    copyFileSync('../shared/models/stories260K/tokenizer.bin', join(dir, 'm', 'tok.bin'));
    const tiny = resolveModel('tiny', { registry: reg });
    expect(tiny.source.config.dim).toBe(64);
    tiny.source.close();
    const garbage = join(dir, 'garbage.bin');
    writeFileSync(garbage, Buffer.alloc(1024, 7));
    expect(() => resolveModel(garbage)).toThrow(/not a llama2.c checkpoint/);
  });
});
