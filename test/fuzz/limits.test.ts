// Headers that claim enormous sizes are refused from the header alone: nothing is allocated for them
// (measured as ArrayBuffer memory before and after), and the error is typed and names the file.
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, LoadError } from '../../loaders/errors.js';
import { openSafetensors } from '../../loaders/safetensors.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadGguf } from '../../loaders/gguf.js';
import { readArtifact } from '../../loaders/artifact.js';
import { artifactTarget, hfConfigTarget, tinyGguf } from '../../bench/lib/fuzz-targets.js';
import { parseHfConfig } from '../../loaders/hf-config.js';
import { openHfWeights } from '../../loaders/hf-model.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'aser-limits-'));

/** Runs `load`, expects a typed error naming `file` and matching `reason`, and no large allocation. */
function refusedCheaply(file: string, load: () => void, reason: RegExp): void {
  const before = process.memoryUsage().arrayBuffers;
  let err: unknown;
  try {
    load();
  } catch (e) {
    err = e;
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  expect(err).toBeInstanceOf(LoadError);
  expect((err as LoadError).file).toBe(file);
  expect((err as Error).message).toMatch(reason);
  expect(grown).toBeLessThan(16 << 20);
}

function safetensorsFile(path: string, header: unknown, dataBytes: number): string {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  writeFileSync(path, out);
  return path;
}

describe('size claims are checked against the file before anything is allocated', () => {
  it('safetensors: a consistent header for a 2^40-element tensor in a 64-byte file', () => {
    const dir = tmp();
    const f = safetensorsFile(join(dir, 'huge.safetensors'), { w: { dtype: 'F32', shape: [1 << 20, 1 << 20], data_offsets: [0, 2 ** 42] } }, 64);
    refusedCheaply(f, () => openSafetensors(f), /truncated: tensor w ends at data byte 4398046511104, the file holds 64 bytes/);
    // A shape whose element count is not even a safe integer.
    const g = safetensorsFile(join(dir, 'overflow.safetensors'), { w: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 64] } }, 64);
    refusedCheaply(g, () => openSafetensors(g), /needs .* bytes, data_offsets span 64/);
  });

  it('llama2.c: header fields at their limits promise far more than the file holds', () => {
    const f = join(tmp(), 'huge.bin');
    const head = new DataView(new ArrayBuffer(1024));
    [1 << 16, 1 << 18, 1024, 1024, 1024, 1 << 22, 1 << 22].forEach((v, i) => head.setInt32(4 * i, v, true));
    writeFileSync(f, new Uint8Array(head.buffer));
    refusedCheaply(f, () => loadLlama2c(f), /truncated checkpoint: header promises \d+ bytes of weights, file has 1024/);
  });

  it('GGUF: a tensor count of 2^40 and a string length of 2^62', () => {
    const dir = tmp();
    const base = tinyGguf(dir);
    const count = Uint8Array.from(base);
    new DataView(count.buffer).setBigUint64(8, 1n << 40n, true); // tensor_count
    writeFileSync(join(dir, 'count.gguf'), count);
    refusedCheaply(join(dir, 'count.gguf'), () => loadGguf(join(dir, 'count.gguf')), /./);
    const str = Uint8Array.from(base);
    new DataView(str.buffer).setBigUint64(24, 1n << 62n, true); // first metadata key's length
    writeFileSync(join(dir, 'str.gguf'), str);
    refusedCheaply(join(dir, 'str.gguf'), () => loadGguf(join(dir, 'str.gguf')), /./);
  });

  it('artifact manifests: tensor file names that are paths or directories are refused as typed errors', () => {
    const target = artifactTarget();
    try {
      // Copy the target's valid artifact and point "files" elsewhere.
      const good = target.fixtures!.artifact!;
      for (const name of ['.', '..', '../good/layer-000.safetensors', '/etc/passwd', 'manifest.json']) {
        const dir = join(tmp(), 'a');
        cpSync(good, dir, { recursive: true });
        const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
        m.files[name] = { sha256: '0'.repeat(64), bytes: 0 };
        writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
        let err: unknown;
        try {
          readArtifact(dir);
        } catch (e) {
          err = e;
        }
        expect(err, name).toBeInstanceOf(FormatError);
        expect((err as Error).message, name).toMatch(/is not a plain \*\.safetensors file name/);
      }
    } finally {
      target.cleanup();
    }
  });
});


describe('configs that imply billions of tensors are refused before listing them', () => {
  it('HF config.json with num_hidden_layers 2^40, and a GGUF with block_count 2^32-1', () => {
    const target = hfConfigTarget();
    try {
      const dir = tmp();
      cpSync(target.fixtures!.dir!, dir, { recursive: true });
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      json.num_hidden_layers = 2 ** 40;
      const file = join(dir, 'config.json');
      refusedCheaply(dir, () => openHfWeights(dir, parseHfConfig(file, json)), /the config implies 13194139533315 tensors \(1099511627776 layers\), the weights hold 27/);
    } finally {
      target.cleanup();
    }
    const dir = tmp();
    const gguf = Uint8Array.from(tinyGguf(dir));
    // llama.block_count is a u32 in the metadata: find its key and set the value that follows to 2^32-1.
    const key = new TextEncoder().encode('llama.block_count');
    let at = -1;
    for (let i = 0; i < gguf.length - key.length && at < 0; i++) if (key.every((b, j) => gguf[i + j] === b)) at = i + key.length;
    expect(at).toBeGreaterThan(0);
    new DataView(gguf.buffer).setUint32(at + 4, 0xffffffff, true); // after the u32 value-type tag
    const file = join(dir, 'layers.gguf');
    writeFileSync(file, gguf);
    refusedCheaply(file, () => loadGguf(file), /implies \d+ tensors \(4294967295 layers\)/);
  });
});

describe('tokenizer.json ids are bounded by the vocabulary the file defines', () => {
  it('an added token with id 1.2e9 (found by the fuzz bench: the library sized its tables by it and hung) is refused at once', async () => {
    const { loadHfTokenizer } = await import('../../loaders/hf-tokenizer.js');
    const json = JSON.parse(readFileSync('models/stories260k/tokenizer.json', 'utf8'));
    json.added_tokens[0].id = 1211501172;
    const file = join(tmp(), 'tokenizer.json');
    writeFileSync(file, JSON.stringify(json));
    const t0 = performance.now();
    refusedCheaply(file, () => loadHfTokenizer(file, { bosId: 1, eosId: 2 }), /added_tokens\[0\] has id 1211501172, outside 0\.\.514/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
