import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArtifact, readArtifact } from '../../loaders/artifact.js';
import { writeArtifact } from '../../loaders/artifact-writer.js';
import {
  ARTIFACT_FORMAT_VERSION, MANIFEST_FILE, describeModelFiles, readArtifactManifest, sha256File,
  type ArtifactHeader,
} from '../../loaders/artifact-manifest.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { BLOCK_LINEARS } from '../../core/model.js';
import { CalibrationStats, LINEAR_INPUT_KINDS } from '../../quant/calibrate.js';
import { quantizeModel } from '../../quant/quantize-model.js';
import { FormatError, LoadError, NotFoundError } from '../../loaders/errors.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import { withInt8LowRank } from '../../core/lowrank-int8.js';
import { quantizeLinear, type QuantDiagnostics } from '../../quant/methods.js';
import { LinearInputStats } from '../../quant/stats.js';
import { ensureNativeBuilt, gaussian } from './helpers.js';
import { quantizeClassifier } from '../../quant/classifier.js';
import { CLASSIFIER_FILE } from '../../loaders/artifact-manifest.js';
import { unpackW4 } from '../../core/w4-layout.js';
import { unpackW8 } from '../../core/w8-layout.js';
import type { WeightRows } from '../../runtime/weight-rows.js';

const root = mkdtempSync(join(tmpdir(), 'aser-artifact-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const header: ArtifactHeader = {
  source: { id: 'synthetic', sha256: 'ab'.repeat(32), files: [{ name: 'model.bin', sha256: 'ab'.repeat(32), bytes: 123 }] },
  method: 'aser', wBits: 4, aBits: 8, rank: 4, alpha: null, options: { outliers: 2 },
  calibration: { dataset: 'synthetic', samples: 2, seqLen: 40, seed: 7, tokens: 80 }, smoothing: 'per-linear',
};

let layers: Map<string, QuantizedLinear>;
let diagnostics: Map<string, QuantDiagnostics>;

beforeAll(() => {
  ensureNativeBuilt();
  const g = gaussian(3);
  layers = new Map();
  diagnostics = new Map();
  // two transformer layers, different shapes (in not a multiple of 32), with smoothing, outliers and a bias
  const shapes: Array<[string, number, number, 'aser' | 'rtn' | 'lorc']> = [
    ['model.layers.0.self_attn.q_proj', 24, 40, 'aser'],
    ['model.layers.0.mlp.down_proj', 40, 70, 'lorc'],
    ['model.layers.1.self_attn.k_proj', 8, 40, 'rtn'],
  ];
  for (const [name, out, inF, method] of shapes) {
    const stats = new LinearInputStats(inF, { sampleTokens: 16 });
    const x = Float32Array.from({ length: 80 * inF }, (_, i) => g() * (i % inF === 3 ? 25 : 1));
    stats.add(x);
    const weight = Float32Array.from({ length: out * inF }, () => g() * 0.1);
    const bias = name.includes('q_proj') ? Float32Array.from({ length: out }, () => g()) : undefined;
    const { linear, diag } = quantizeLinear(method, { name, weight, outFeatures: out, inFeatures: inF, bias, stats },
      method === 'rtn' ? {} : { rank: 4, outliers: 2 });
    layers.set(name, linear);
    diagnostics.set(name, diag);
  }
});

function freshArtifact(name: string): string {
  const dir = join(root, name);
  writeArtifact(dir, header, layers, diagnostics);
  return dir;
}

describe('artifact directory', () => {
  it('round trip: write → read gives identical QuantizedLinear fields', () => {
    const dir = freshArtifact('roundtrip');
    expect(readdirSync(dir).sort()).toEqual(['layer-000.safetensors', 'layer-001.safetensors', MANIFEST_FILE]);
    const { manifest, layers: read } = readArtifact(dir, { expectModelHash: header.source.sha256 });
    expect(manifest.formatVersion).toBe(ARTIFACT_FORMAT_VERSION);
    expect(manifest.createdBy).toMatch(/^aser-webgpu/);
    expect(manifest.calibration).toEqual(header.calibration);
    expect(manifest.layers['model.layers.0.self_attn.q_proj']!.outliers.length).toBe(2);
    expect(manifest.layers['model.layers.0.self_attn.q_proj']!.errorRank).toBe(4);
    expect(manifest.layers['model.layers.0.mlp.down_proj']!.diag!.outputErrorAfter).toBeGreaterThan(0);
    expect(manifest.layers['model.layers.0.mlp.down_proj']!.diag!['sampled.error']).toBeGreaterThan(0);
    expect([...read.keys()].sort()).toEqual([...layers.keys()].sort());
    for (const [name, want] of layers) {
      const got = read.get(name)!;
      expect(got, name).toEqual(want); // every field, typed arrays element by element
    }
    expect(read.get('model.layers.0.self_attn.q_proj')!.smooth).toBeDefined();
    expect(read.get('model.layers.0.self_attn.q_proj')!.bias).toBeDefined();
  });

  it('openArtifact verifies every file up front, then reads one layer file at a time', () => {
    const dir = freshArtifact('lazy');
    const reader = openArtifact(dir, { expectModelHash: header.source.sha256 });
    // Files are read only when asked for: removing one after open does not matter until its layer is needed.
    unlinkSync(join(dir, 'layer-001.safetensors'));
    for (const name of [...layers.keys()].filter((n) => n.startsWith('model.layers.0.'))) expect(reader.linear(name), name).toEqual(layers.get(name));
    expect(reader.linear('model.layers.9.mlp.up_proj')).toBeUndefined();
    const inLayer1 = [...layers.keys()].find((n) => n.startsWith('model.layers.1.'))!;
    expect(() => reader.linear(inLayer1)).toThrow(NotFoundError);
    const bad = freshArtifact('lazy-corrupt');
    const file = join(bad, 'layer-001.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] ^= 0x10;
    writeFileSync(file, bytes);
    expect(() => openArtifact(bad)).toThrow(/layer-001\.safetensors: sha256 mismatch/);
  });

  it('a flipped byte in a tensor file is refused (sha256 mismatch)', () => {
    const dir = freshArtifact('corrupt');
    const file = join(dir, 'layer-001.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] ^= 0x10;
    writeFileSync(file, bytes);
    expect(() => readArtifact(dir)).toThrow(FormatError);
    expect(() => readArtifact(dir)).toThrow(/layer-001\.safetensors: sha256 mismatch: manifest\.json says [0-9a-f]{64}, the file has/);
  });

  it('a manifest of a newer format version is refused with a clear one-line message', () => {
    const dir = freshArtifact('version');
    const path = join(dir, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(path, 'utf8'));
    m.formatVersion = ARTIFACT_FORMAT_VERSION + 1;
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifact(dir)).toThrow(new RegExp(`artifact format version ${ARTIFACT_FORMAT_VERSION + 1} is not supported: this build reads versions 1, 2, 3 .*; use the aser-webgpu that wrote it, or re-quantize the model with this build$`));
    expect(() => readArtifact(dir)).not.toThrow(/\n/);
    m.formatVersion = 0;
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifact(dir)).toThrow(/artifact format version 0 is not supported: this build reads versions 1, 2, 3 .*; re-quantize the model with this build$/);
    m.formatVersion = ARTIFACT_FORMAT_VERSION;
    m.format = 'something-else';
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(dir)).toThrow(/not an ASER artifact manifest/);
  });

  it('a quantized classifier round-trips (int8 and int4 layouts); f16 stores no tensor; version 1 still loads', () => {
    const g = gaussian(11);
    const vocab = 37, dim = 70; // dim not a multiple of 32
    const rows: WeightRows = { rows: vocab, cols: dim, dtype: 'f32', read: (r0, n) => new Uint8Array(Float32Array.from({ length: n * dim }, () => g()).buffer) };
    for (const format of ['int8', 'int4'] as const) {
      const q = quantizeClassifier(rows, format);
      expect(q.wBits).toBe(format === 'int8' ? 8 : 4);
      const dir = join(root, `classifier-${format}`);
      writeArtifact(dir, header, layers, diagnostics, (w) => w.addClassifier(format, q));
      expect(readdirSync(dir)).toContain(CLASSIFIER_FILE);
      const read = readArtifact(dir);
      expect(read.manifest.classifier).toEqual({ format, file: CLASSIFIER_FILE, inFeatures: dim, outFeatures: vocab, wBits: q.wBits, aBits: 8 });
      expect(read.classifier).toEqual(q);
      expect(Object.keys(read.manifest.layers)).not.toContain('lm_head'); // block linears only
      const unpacked = format === 'int8' ? unpackW8(q.qweight, vocab, dim) : unpackW4(q.qweight, vocab, dim);
      const qmax = format === 'int8' ? 127 : 7;
      expect(Math.max(...unpacked.map(Math.abs))).toBe(qmax); // every row's absmax lands on ±qmax
    }
    const f16 = join(root, 'classifier-f16');
    writeArtifact(f16, header, layers, diagnostics, (w) => w.addClassifier('f16'));
    expect(readArtifact(f16).manifest.classifier).toEqual({ format: 'f16' });
    expect(readArtifact(f16).classifier).toBeUndefined();
    // A version-1 manifest (no classifier entry) still reads; one with a classifier entry is refused.
    const path = join(f16, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(path, 'utf8'));
    m.formatVersion = 1;
    delete m.lowRankDtype; // version 3's field
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(f16)).toThrow(/"classifier" needs format version 2/);
    delete m.classifier;
    writeFileSync(path, JSON.stringify(m));
    expect(readArtifact(f16).manifest.classifier).toBeUndefined();
    m.formatVersion = 2;
    m.classifier = { format: 'int3' };
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(f16)).toThrow(/classifier\.format must be one of f16, int8, int4/);
  });

  it('version 2 records the smoothing scope; a version-1 manifest loads as per-linear', () => {
    expect(ARTIFACT_FORMAT_VERSION).toBe(3);
    const dir = freshArtifact('smoothing-v2');
    const path = join(dir, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(path, 'utf8'));
    expect(m.formatVersion).toBe(3);
    expect(m.smoothing).toBe('per-linear');
    const shared = join(root, 'smoothing-shared');
    // layers 0 and 1 hold no two linears of one input, so 'shared-input' holds trivially here
    writeArtifact(shared, { ...header, smoothing: 'shared-input' }, layers, diagnostics);
    expect(readArtifact(shared).manifest.smoothing).toBe('shared-input');
    // a manifest as version 1 wrote it: no smoothing field (nor version 3's lowRankDtype)
    delete m.smoothing;
    delete m.lowRankDtype;
    m.formatVersion = 1;
    writeFileSync(path, JSON.stringify(m));
    const v1 = readArtifact(dir, { expectModelHash: header.source.sha256 });
    expect(v1.manifest.formatVersion).toBe(1);
    expect(v1.manifest.smoothing).toBe('per-linear');
    for (const [name, want] of layers) expect(v1.layers.get(name), name).toEqual(want);
    // version 2 must say which
    m.formatVersion = 2;
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(dir)).toThrow(/"smoothing" must be "shared-input" or "per-linear", got undefined/);
    m.smoothing = 'shared';
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(dir)).toThrow(/"smoothing" must be "shared-input" or "per-linear", got "shared"/);
  });

  it('version 3: int8 L_A/L_B (scales per rank index) round-trip; f16 stays the default; mixed or mislabelled factors are refused', () => {
    const int8 = new Map([...layers].map(([n, q]) => [n, withInt8LowRank(q)]));
    const dir = join(root, 'lowrank-int8');
    const manifest = writeArtifact(dir, header, int8, diagnostics);
    expect(manifest.formatVersion).toBe(3);
    expect(manifest.lowRankDtype).toBe('int8');
    const read = readArtifact(dir);
    for (const [name, want] of int8) {
      expect(read.layers.get(name), name).toEqual(want);
      if (want.rank > 0) expect(read.layers.get(name)!.lowRankInt8!.la).toBeInstanceOf(Int8Array);
    }
    // the file holds int8 factors (half the f16 bytes) with their scales
    const f16Dir = freshArtifact('lowrank-f16');
    expect(readArtifact(f16Dir).manifest.lowRankDtype).toBe('f16');
    expect(read.manifest.files['layer-000.safetensors']!.bytes).toBeLessThan(readArtifact(f16Dir).manifest.files['layer-000.safetensors']!.bytes);
    // f16 and int8 factors in one artifact, or a header that says otherwise, are refused
    const mixed = new Map(layers);
    mixed.set('model.layers.0.self_attn.q_proj', int8.get('model.layers.0.self_attn.q_proj')!);
    expect(() => writeArtifact(join(root, 'lowrank-mixed'), header, mixed, diagnostics)).toThrow(/lowRankDtype is int8 but a linear's L_A\/L_B are f16/);
    expect(() => writeArtifact(join(root, 'lowrank-mislabelled'), { ...header, lowRankDtype: 'f16' }, int8, diagnostics)).toThrow(/lowRankDtype is f16 but a linear's L_A\/L_B are int8/);
    // a manifest that says f16 over int8 tensors names the tensor; version 2 cannot carry the field
    const path = join(dir, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(path, 'utf8'));
    m.lowRankDtype = 'f16';
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifact(dir)).toThrow(/tensor model\.layers\.0\.self_attn\.q_proj\.la is I8 \[40,6\], the manifest implies F16 \[40,6\]/);
    m.lowRankDtype = 'int4';
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(dir)).toThrow(/"lowRankDtype" must be "f16" or "int8", got "int4"/);
    m.lowRankDtype = 'int8';
    m.formatVersion = 2;
    writeFileSync(path, JSON.stringify(m));
    expect(() => readArtifactManifest(dir)).toThrow(/"lowRankDtype" needs format version 3, this manifest is version 2/);
    // a version-2 manifest (no field) reads its F16 factors as before
    const f16Path = join(f16Dir, MANIFEST_FILE);
    const m2 = JSON.parse(readFileSync(f16Path, 'utf8'));
    m2.formatVersion = 2;
    delete m2.lowRankDtype;
    writeFileSync(f16Path, JSON.stringify(m2));
    const v2 = readArtifact(f16Dir);
    expect(v2.manifest.lowRankDtype).toBe('f16');
    for (const [name, want] of layers) expect(v2.layers.get(name), name).toEqual(want);
  });

  it("the writer refuses 'shared-input' when linears of one input carry different smoothing vectors", () => {
    const q = layers.get('model.layers.0.self_attn.q_proj')!;
    const k = { ...q, smooth: Float32Array.from(q.smooth!, (v, i) => (i === 5 ? v * 2 : v)) };
    const group = new Map([['model.layers.0.self_attn.q_proj', q], ['model.layers.0.self_attn.k_proj', k]]);
    expect(() => writeArtifact(join(root, 'bad-shared'), { ...header, smoothing: 'shared-input' }, group))
      .toThrow(/smoothing "shared-input", but model\.layers\.0\.self_attn\.k_proj and model\.layers\.0\.self_attn\.q_proj read the same input with different smoothing vectors/);
    expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
    writeArtifact(join(root, 'per-linear-ok'), header, group);
    group.set('model.layers.0.self_attn.k_proj', { ...q, smooth: Float32Array.from(q.smooth!) });
    writeArtifact(join(root, 'shared-ok'), { ...header, smoothing: 'shared-input' }, group);
  });

  it('a missing tensor file or manifest is refused, naming the file', () => {
    const dir = freshArtifact('missing');
    unlinkSync(join(dir, 'layer-000.safetensors'));
    expect(() => readArtifact(dir)).toThrow(NotFoundError);
    expect(() => readArtifact(dir)).toThrow(/layer-000\.safetensors: tensor file listed in manifest\.json is missing/);
    unlinkSync(join(dir, MANIFEST_FILE));
    expect(() => readArtifact(dir)).toThrow(/manifest\.json: not an ASER artifact: manifest\.json is missing/);
  });

  it('an artifact made from another model is refused when the model hash is given', () => {
    const dir = freshArtifact('otherModel');
    expect(() => readArtifact(dir, { expectModelHash: 'cd'.repeat(32) })).toThrow(/made from model synthetic with sha256 (ab)+, but the model given has sha256 (cd)+/);
  });

  it('replaces an existing artifact only by a complete one, and never a foreign directory', () => {
    const dir = freshArtifact('replace');
    const first = readArtifactManifest(dir).createdAt;
    writeArtifact(dir, { ...header, method: 'lorc' }, layers);
    expect(readArtifactManifest(dir).method).toBe('lorc');
    expect(readArtifactManifest(dir).createdAt >= first).toBe(true);
    // a failing write (bad linear) leaves the previous artifact untouched and no temporary directory behind
    const broken = new Map(layers);
    broken.set('model.layers.2.mlp.up_proj', { ...layers.get('model.layers.1.self_attn.k_proj')!, wScale: new Float32Array(3) });
    expect(() => writeArtifact(dir, header, broken)).toThrow(/wScale has 3 values, needs 8/);
    expect(readArtifactManifest(dir).method).toBe('lorc');
    expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
    // a directory that is not an artifact is never replaced
    const foreign = join(root, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'keep me');
    expect(() => writeArtifact(foreign, header, layers)).toThrow(LoadError);
    expect(() => writeArtifact(foreign, header, layers)).toThrow(/is not an ASER artifact .* refusing to replace it/);
    expect(readFileSync(join(foreign, 'notes.txt'), 'utf8')).toBe('keep me');
  });

  it('stories260K: quantizeModel over every block linear, written and read back against the model hash', () => {
    const modelFile = new URL('../../../shared/models/stories260K/model.bin', import.meta.url).pathname;
    const model = loadLlama2c(modelFile, 'stories260k');
    try {
      const { dim, hiddenDim, nLayers } = model.config;
      const width = { attn_in: dim, attn_out: dim, mlp_in: dim, mlp_act: hiddenDim } as const;
      const stats = new CalibrationStats();
      const g = gaussian(77);
      for (let layer = 0; layer < nLayers; layer++) {
        for (const kind of LINEAR_INPUT_KINDS) {
          stats.add(layer, kind, Float32Array.from({ length: 64 * width[kind] }, (_, i) => g() * (i % width[kind] === 1 ? 20 : 1)), 64, { sampleTokens: 32 });
        }
      }
      const seen: string[] = [];
      const q = quantizeModel(model, stats, 'aser', { alpha: 0.3, onLinear: (name) => seen.push(name) });
      expect(q.layers.size).toBe(nLayers * BLOCK_LINEARS.length);
      expect(seen[0]).toBe('model.layers.0.self_attn.q_proj');
      expect(q.layers.get('model.layers.0.mlp.down_proj')!.inFeatures).toBe(hiddenDim);
      const source = describeModelFiles('stories260k', [modelFile]);
      expect(source.sha256).toBe(sha256File(modelFile));
      const dir = join(root, 'stories260k');
      writeArtifact(dir, { ...header, source, rank: null, alpha: 0.3 }, q.layers, q.diagnostics);
      const back = readArtifact(dir, { expectModelHash: source.sha256 });
      expect(back.layers.size).toBe(q.layers.size);
      for (const [name, want] of q.layers) expect(back.layers.get(name), name).toEqual(want);
      expect(back.manifest.layers['model.layers.4.mlp.up_proj']!.errorRank).toBe(q.diagnostics.get('model.layers.4.mlp.up_proj')!.rank);
    } finally {
      model.close();
    }
  });
});
