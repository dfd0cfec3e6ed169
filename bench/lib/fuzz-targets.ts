// Fuzz targets shared by the CI fuzz tests (test/fuzz/) and `npm run bench -- fuzz`: for each file
// format a fast-check generator of inputs (valid files mutated byte-wise and structurally, plus
// headers generated from scratch) and a runner that writes the input to disk and loads it with the
// real loader. An input's outcome is 'loaded' (the loader ran and every tensor was read back with the
// size the header promised), a typed LoadError (its class name), a named outcome of a case that
// stopped before the loader (e.g. 'json-syntax': the mutated text is not JSON), or a failure: any
// other exception, or a case that ran longer than the per-case bound.
// One file over 500 lines on purpose: every format's generator and runner side by side, so the
// outcome classes stay the same across formats; each target is short and has no other user.
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoadError } from '../../loaders/errors.js';
import { SAFETENSORS_DTYPE_BYTES, openSafetensors } from '../../loaders/safetensors.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadGguf } from '../../loaders/gguf.js';
import { exportGguf, GGUF_TOKEN_TYPE } from '../../loaders/gguf-writer.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { loadHfTokenizer } from '../../loaders/hf-tokenizer.js';
import { readArtifact } from '../../loaders/artifact.js';
import { writeArtifact } from '../../loaders/artifact-writer.js';
import { MANIFEST_FILE } from '../../loaders/artifact-manifest.js';
import { w4WordCount } from '../../core/w4-layout.js';
import type { ModelConfig, ModelSource } from '../../core/model.js';
import { parseHfConfig, toHfConfigJson } from '../../loaders/hf-config.js';
import { openHfWeights, requiredTensorShapes } from '../../loaders/hf-model.js';
import { writeSafetensors } from '../../loaders/safetensors.js';
import type { QuantizedLinear } from '../../core/quantized.js';

/** What one case ended in. `failure` is set for anything that is neither a load nor a typed error. */
export interface CaseOutcome {
  outcome: string;
  failure?: string;
  ms: number;
}

export interface FuzzTarget<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /**
   * Loads the input; throws what the loader throws. Returns nothing when the loader ran, or the name
   * of the outcome when the case stopped before reaching the loader (counted under that name, not as
   * 'loaded').
   */
  run(input: T): void | string;
  cleanup(): void;
  /** Files the target built that tests may reuse (e.g. the valid artifact it mutates). */
  fixtures?: Record<string, string>;
}

/** Wall-clock bound for one loader case; a slower case counts as a failure (a hang in the making). */
export const CASE_BOUND_MS = 2000;

/** Runs one case and classifies it. */
export function classify<T>(target: FuzzTarget<T>, input: T, boundMs = CASE_BOUND_MS): CaseOutcome {
  const t0 = performance.now();
  let outcome = 'loaded';
  let failure: string | undefined;
  try {
    outcome = target.run(input) ?? 'loaded';
  } catch (err) {
    if (err instanceof LoadError) outcome = err.name;
    else {
      outcome = 'untyped';
      failure = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  }
  const ms = performance.now() - t0;
  if (!failure && ms > boundMs) failure = `took ${ms.toFixed(0)} ms (bound ${boundMs} ms)`;
  return { outcome, failure, ms };
}

// ---------------------------------------------------------------------------------------------------
// byte-level mutations shared by every binary format

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'u64'; at: number; hi: number; lo: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

/** Positions are fractions of the file (or of its first `headBias` bytes, where headers live). */
const position = fc.double({ min: 0, max: 1, noNaN: true });
const interestingU32 = fc.oneof(fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 1 << 20), fc.nat({ max: 0xffffffff }));

const mutation: fc.Arbitrary<Mutation & { pos: number; head: boolean }> = fc
  .tuple(
    position,
    fc.boolean(),
    fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.constant(0), bit: fc.nat({ max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.constant(0), value: fc.nat({ max: 255 }) }),
      fc.record({ kind: fc.constant('u32' as const), at: fc.constant(0), value: interestingU32 }),
      fc.record({ kind: fc.constant('u64' as const), at: fc.constant(0), hi: interestingU32, lo: interestingU32 }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.constant(0) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.constant(0), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.constant(0), count: fc.integer({ min: 1, max: 16 }) }),
    ),
  )
  .map(([pos, head, m]) => ({ ...m, pos, head }));

export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });

/** Applies mutations; `headBytes` is where header-biased mutations land (most bugs hide in headers). */
export function mutate(base: Uint8Array, ms: Array<Mutation & { pos: number; head: boolean }>, headBytes: number): Uint8Array {
  let b = Uint8Array.from(base);
  for (const m of ms) {
    const span = m.head ? Math.min(headBytes, b.length) : b.length;
    const at = Math.min(Math.floor(m.pos * span), Math.max(0, b.length - 1));
    switch (m.kind) {
      case 'flip':
        if (b.length) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        if (b.length) b[at] = m.value;
        break;
      case 'u32':
        if (at + 4 <= b.length) new DataView(b.buffer).setUint32(at, m.value, true);
        break;
      case 'u64':
        if (at + 8 <= b.length) {
          new DataView(b.buffer).setUint32(at, m.lo, true);
          new DataView(b.buffer).setUint32(at + 4, m.hi, true);
        }
        break;
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'insert': {
        const out = new Uint8Array(b.length + m.bytes.length);
        out.set(b.subarray(0, at));
        out.set(m.bytes, at);
        out.set(b.subarray(at), at + m.bytes.length);
        b = out;
        break;
      }
      case 'delete': {
        const count = Math.min(m.count, b.length - at);
        const out = new Uint8Array(b.length - count);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + count), at);
        b = out;
        break;
      }
    }
  }
  return b;
}

function scratchDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `aser-fuzz-${name}-`));
}

/** A JSON value that is likely to be wrong in interesting ways where a number, list or name is expected. */
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53, 2 ** 53 + 2, 1e308, -0, 0.5, null, true, '', '..', '../../etc/passwd', '/etc/passwd', '__proto__', 'constructor', 'x'.repeat(300)),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.array(fc.oneof(fc.nat({ max: 64 }), fc.constantFrom(2 ** 20, 2 ** 40, -1, 1.5)), { maxLength: 5 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Replaces the value at a random path of a JSON object (or deletes it, or adds a key). */
function mutateJson(root: unknown, picks: Array<{ path: number[]; action: 'replace' | 'delete' | 'add'; value: unknown; key: string }>): unknown {
  const copy = JSON.parse(JSON.stringify(root)) as unknown;
  for (const p of picks) {
    let parent: unknown = null;
    let key: string | number | null = null;
    let node: unknown = copy;
    for (const step of p.path) {
      if (node === null || typeof node !== 'object') break;
      const keys = Object.keys(node as object);
      if (keys.length === 0) break;
      const k = keys[step % keys.length]!;
      parent = node;
      key = Array.isArray(node) ? Number(k) : k;
      node = (node as Record<string, unknown>)[k];
    }
    if (p.action === 'add' && node !== null && typeof node === 'object' && !Array.isArray(node)) {
      (node as Record<string, unknown>)[p.key] = p.value;
    } else if (parent && key !== null) {
      if (p.action === 'delete' && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
      else (parent as Record<string | number, unknown>)[key] = p.value;
    }
  }
  return copy;
}

const jsonPicks = fc.array(
  fc.record({
    path: fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 5 }),
    action: fc.constantFrom('replace' as const, 'delete' as const, 'add' as const, 'replace' as const),
    value: nastyValue,
    key: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__metadata__', '__proto__', 'constructor', 'dtype', 'shape', 'data_offsets', '.', '..', '/etc/passwd', 'layer-000.safetensors', 'manifest.json')),
  }),
  { minLength: 1, maxLength: 3 },
);

// ---------------------------------------------------------------------------------------------------
// safetensors

function safetensorsBytes(header: unknown, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const stDtype = fc.constantFrom(...(Object.keys(SAFETENSORS_DTYPE_BYTES) as Array<keyof typeof SAFETENSORS_DTYPE_BYTES>));

/** A valid safetensors header + data from a list of small tensors. */
const validSafetensors = fc
  .array(fc.record({ dtype: fc.constantFrom('F32' as const, 'F16' as const, 'BF16' as const), shape: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }) }), { minLength: 1, maxLength: 5 })
  .map((ts) => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    ts.forEach((t, i) => {
      const bytes = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
      header[`t${i}`] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    });
    return { header, data: new Uint8Array(offset).map((_, i) => (i * 37) & 255) };
  });

export type SafetensorsInput =
  | { kind: 'bytes'; base: { header: unknown; data: Uint8Array }; ms: Array<Mutation & { pos: number; head: boolean }> }
  | { kind: 'json'; base: { header: unknown; data: Uint8Array }; picks: Parameters<typeof mutateJson>[1] }
  | { kind: 'generated'; header: unknown; dataBytes: number; lengthLie?: bigint }
  | { kind: 'raw'; text: string; dataBytes: number };

export function safetensorsTarget(): FuzzTarget<SafetensorsInput> {
  const dir = scratchDir('safetensors');
  const file = join(dir, 'model.safetensors');
  const generatedEntry = fc.record({
    dtype: fc.oneof(stDtype, nastyValue),
    shape: fc.oneof(fc.array(fc.oneof(fc.nat({ max: 8 }), fc.constantFrom(2 ** 20, 2 ** 30, 2 ** 40, 2 ** 53)), { maxLength: 4 }), nastyValue),
    data_offsets: fc.oneof(fc.tuple(fc.nat({ max: 256 }), fc.nat({ max: 256 })), fc.tuple(fc.constantFrom(0, 2 ** 40, 2 ** 53), fc.constantFrom(2 ** 40, 2 ** 53, 2 ** 62)), nastyValue),
  }, { requiredKeys: [] });
  const arbitrary: fc.Arbitrary<SafetensorsInput> = fc.oneof(
    fc.record({ kind: fc.constant('bytes' as const), base: validSafetensors, ms: mutations }),
    fc.record({ kind: fc.constant('json' as const), base: validSafetensors, picks: jsonPicks }),
    fc.record({
      kind: fc.constant('generated' as const),
      header: fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant('__metadata__')), fc.oneof(generatedEntry, nastyValue), { maxKeys: 4 }),
      dataBytes: fc.nat({ max: 512 }),
      lengthLie: fc.option(fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 7n, 2n ** 40n, (100n << 20n) + 1n)), { nil: undefined }),
    }),
    fc.record({ kind: fc.constant('raw' as const), text: fc.oneof(fc.string({ maxLength: 64 }), fc.constantFrom('{', '[]', 'null', '{"a":', '\u0000\u0000', '{"__metadata__":5}')), dataBytes: fc.nat({ max: 64 }) }),
  );
  return {
    name: 'safetensors',
    arbitrary,
    run(input) {
      let bytes: Uint8Array;
      if (input.kind === 'bytes') bytes = mutate(safetensorsBytes(input.base.header, input.base.data), input.ms, 8 + JSON.stringify(input.base.header).length);
      else if (input.kind === 'json') bytes = safetensorsBytes(mutateJson(input.base.header, input.picks), input.base.data);
      else if (input.kind === 'generated') bytes = safetensorsBytes(input.header, new Uint8Array(input.dataBytes), input.lengthLie);
      else bytes = safetensorsBytes(input.text, new Uint8Array(input.dataBytes));
      writeFileSync(file, bytes);
      const st = openSafetensors(file, { dtypes: Object.keys(SAFETENSORS_DTYPE_BYTES) as Array<keyof typeof SAFETENSORS_DTYPE_BYTES> });
      try {
        for (const name of st.names()) {
          const e = st.entry(name);
          const got = st.read(name).byteLength;
          const want = e.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[e.dtype];
          if (got !== want || e.end > bytes.length) throw new Error(`loaded ${name} inconsistently: ${got} bytes read, ${want} promised`);
        }
      } finally {
        st.close();
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// llama2.c checkpoints

interface TinyLlama {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seq: number;
}

const TINY: TinyLlama = { dim: 8, hidden: 16, layers: 1, heads: 2, kvHeads: 2, vocab: 16, seq: 8 };

/** Bytes of the v0 weights (shared classifier) of a config. */
function llama2cWeightFloats(c: TinyLlama): number {
  const headDim = c.dim / c.heads;
  const kv = headDim * c.kvHeads;
  return c.vocab * c.dim + c.layers * (2 * c.dim + c.dim * c.dim * 2 + 2 * kv * c.dim + 3 * c.hidden * c.dim) + c.dim + c.seq * headDim;
}

/** A valid legacy (v0) llama2.c checkpoint. */
export function tinyLlama2c(c: TinyLlama = TINY): Uint8Array {
  const floats = llama2cWeightFloats(c);
  const out = new Uint8Array(28 + floats * 4);
  const v = new DataView(out.buffer);
  [c.dim, c.hidden, c.layers, c.heads, c.kvHeads, c.vocab, c.seq].forEach((x, i) => v.setInt32(4 * i, x, true));
  for (let i = 0; i < floats; i++) v.setFloat32(28 + 4 * i, Math.sin(i) * 0.1, true);
  return out;
}

export type Llama2cInput =
  | { kind: 'bytes'; ms: Array<Mutation & { pos: number; head: boolean }> }
  | { kind: 'consistent'; c: TinyLlama; delta: number }
  | { kind: 'header'; v1: boolean; fields: number[]; shared: boolean; bodyBytes: number; exact: boolean };

export function llama2cTarget(): FuzzTarget<Llama2cInput> {
  const dir = scratchDir('llama2c');
  const file = join(dir, 'model.bin');
  const base = tinyLlama2c();
  const field = fc.oneof(fc.integer({ min: 1, max: 16 }), fc.constantFrom(0, -1, -16, 2 ** 16, 2 ** 16 + 1, 2 ** 22, 2 ** 31 - 1, -(2 ** 31)), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
  // Consistent small headers with a body of exactly the right size, or a few bytes off.
  const consistent = fc
    .record({ kvHeads: fc.constantFrom(1, 2), group: fc.constantFrom(1, 2), headDim: fc.constantFrom(2, 4), hidden: fc.integer({ min: 1, max: 16 }), layers: fc.integer({ min: 1, max: 3 }), vocab: fc.integer({ min: 1, max: 32 }), seq: fc.integer({ min: 1, max: 16 }), delta: fc.constantFrom(0, 0, 0, -4, -1, 1, 4) })
    .map((r) => ({ kind: 'consistent' as const, c: { dim: r.kvHeads * r.group * r.headDim, hidden: r.hidden, layers: r.layers, heads: r.kvHeads * r.group, kvHeads: r.kvHeads, vocab: r.vocab, seq: r.seq }, delta: r.delta }));
  const arbitrary: fc.Arbitrary<Llama2cInput> = fc.oneof(
    fc.record({ kind: fc.constant('bytes' as const), ms: mutations }),
    consistent,
    fc.record({
      kind: fc.constant('header' as const),
      v1: fc.boolean(),
      fields: fc.array(field, { minLength: 7, maxLength: 7 }),
      shared: fc.boolean(),
      bodyBytes: fc.nat({ max: 1 << 16 }),
      exact: fc.boolean(),
    }),
  );
  return {
    name: 'llama2c',
    arbitrary,
    run(input) {
      let bytes: Uint8Array;
      if (input.kind === 'bytes') bytes = mutate(base, input.ms, 28);
      else if (input.kind === 'consistent') {
        const full = tinyLlama2c(input.c);
        bytes = input.delta <= 0 ? full.subarray(0, full.length + input.delta) : Uint8Array.from([...full, ...new Uint8Array(input.delta)]);
      } else {
        const headerBytes = input.v1 ? 256 : 28;
        // With `exact`, the body is exactly what the header promises when that is small (a valid file
        // whenever the fields are consistent); otherwise an arbitrary length.
        const [dim, hidden, layers, heads, kvHeads, vocab, seq] = input.fields as [number, number, number, number, number, number, number];
        let body = input.bodyBytes;
        if (input.exact && dim > 0 && heads > 0 && kvHeads > 0 && dim % heads === 0) {
          const c = { dim, hidden, layers, heads, kvHeads, vocab: Math.abs(vocab), seq };
          const floats = llama2cWeightFloats(c) - (input.v1 ? c.seq * (dim / heads) : 0) + (input.shared ? 0 : Math.abs(vocab) * dim);
          if (floats > 0 && floats * 4 <= 1 << 20) body = floats * 4;
        }
        bytes = new Uint8Array(headerBytes + body);
        const v = new DataView(bytes.buffer);
        if (input.v1) {
          v.setUint32(0, 0x616b3432, true);
          v.setInt32(4, 1, true);
          input.fields.forEach((x, i) => v.setInt32(8 + 4 * i, x, true));
          v.setUint8(36, input.shared ? 1 : 0);
        } else {
          input.fields.forEach((x, i) => v.setInt32(4 * i, i === 5 && !input.shared ? -Math.abs(x) : x, true));
        }
      }
      writeFileSync(file, bytes);
      const src = loadLlama2c(file);
      try {
        for (const name of src.names()) {
          const t = src.tensor(name);
          if (t.read().byteLength !== t.byteLength || t.byteLength !== t.shape.reduce((a, b) => a * b, 1) * 4) throw new Error(`loaded ${name} inconsistently`);
        }
      } finally {
        src.close();
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// GGUF

/** A tiny valid llama GGUF (exported from the tiny llama2.c model with a 16-token vocabulary). */
export function tinyGguf(dir: string): Uint8Array {
  const bin = join(dir, 'tiny.bin');
  writeFileSync(bin, tinyLlama2c());
  const src: ModelSource = loadLlama2c(bin, 'tiny');
  const n = TINY.vocab;
  const tokens = Array.from({ length: n }, (_, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i]! : `\u2581t${i}`));
  const path = join(dir, 'tiny.gguf');
  try {
    exportGguf(src, {
      tokens, scores: new Float32Array(n).map((_, i) => -i), tokenTypes: Int32Array.from(tokens, (_, i) => (i < 3 ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.normal)),
      bosId: 1, eosId: 2, unkId: 0, addBos: true,
    }, path, { dtype: 'f32' });
  } finally {
    src.close();
  }
  return new Uint8Array(readFileSync(path));
}

export type GgufInput = { ms: Array<Mutation & { pos: number; head: boolean }> };

export function ggufTarget(): FuzzTarget<GgufInput> {
  const dir = scratchDir('gguf');
  const base = tinyGguf(dir);
  const file = join(dir, 'case.gguf');
  // The header (metadata + tensor infos) is everything before the first tensor's data.
  const headBytes = Math.min(base.length, 1500);
  return {
    name: 'gguf',
    arbitrary: fc.record({ ms: mutations }),
    run(input) {
      writeFileSync(file, mutate(base, input.ms, headBytes));
      const src = loadGguf(file);
      try {
        for (const name of src.names()) {
          const t = src.tensor(name);
          const got = t.read().byteLength;
          if (got !== t.byteLength) throw new Error(`loaded ${name} inconsistently: ${got} of ${t.byteLength} bytes`);
        }
      } finally {
        src.close();
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// llama2.c tokenizer.bin

export function llama2cTokenizerTarget(tokenizerBin: string): FuzzTarget<GgufInput> {
  const dir = scratchDir('tokenizer');
  const base = new Uint8Array(readFileSync(tokenizerBin));
  const file = join(dir, 'tokenizer.bin');
  return {
    name: 'llama2c-tokenizer',
    arbitrary: fc.record({ ms: mutations }),
    run(input) {
      writeFileSync(file, mutate(base, input.ms, 64));
      const tok = loadLlama2cTokenizer(file);
      // A loaded tokenizer must round-trip plain text without throwing.
      tok.decode(tok.encode('Once upon a time', { bos: true }));
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// artifact manifests

/** A small valid QuantizedLinear (in 32, out 8, rank 2, smoothed, with bias). */
function tinyLinear(seed: number): QuantizedLinear {
  const inF = 32, out = 8, rank = 2;
  const f = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + s) * 0.05 + (s === 9 ? 1 : 0));
  return {
    inFeatures: inF, outFeatures: out, wBits: 4, aBits: 8,
    qweight: Uint32Array.from({ length: w4WordCount(out, inF) }, (_, i) => (i * 2654435761 + seed) >>> 0 & 0x77777777),
    wScale: f(out, 1).map(Math.abs), smooth: f(inF, 9), rank, la: f(inF * rank, 3), lb: f(rank * out, 4), bias: f(out, 5),
  };
}

export type ArtifactInput =
  | { kind: 'json'; picks: Parameters<typeof mutateJson>[1] }
  | { kind: 'manifest-bytes'; ms: Array<Mutation & { pos: number; head: boolean }> }
  | { kind: 'tensor-bytes'; ms: Array<Mutation & { pos: number; head: boolean }> };

export function artifactTarget(): FuzzTarget<ArtifactInput> {
  const dir = scratchDir('artifact');
  const good = join(dir, 'good');
  writeArtifact(good, {
    source: { id: 'tiny', sha256: '0'.repeat(64), files: [{ name: 'tiny.bin', sha256: '0'.repeat(64), bytes: 1 }] },
    method: 'aser', wBits: 4, aBits: 8, rank: 2, alpha: null, options: {}, calibration: null, smoothing: 'shared-input',
  }, new Map([['model.layers.0.self_attn.q_proj', tinyLinear(1)], ['model.layers.1.mlp.down_proj', tinyLinear(2)]]));
  const manifestText = readFileSync(join(good, MANIFEST_FILE), 'utf8');
  const manifest = JSON.parse(manifestText) as unknown;
  const tensorFile = 'layer-000.safetensors';
  const tensorBytes = new Uint8Array(readFileSync(join(good, tensorFile)));
  const work = join(dir, 'case');
  mkdirSync(work);
  const restore = () => {
    for (const f of ['layer-000.safetensors', 'layer-001.safetensors']) copyFileSync(join(good, f), join(work, f));
  };
  restore();
  return {
    name: 'artifact-manifest',
    fixtures: { artifact: good },
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('json' as const), picks: jsonPicks }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('manifest-bytes' as const), ms: mutations }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('tensor-bytes' as const), ms: mutations }) },
    ),
    run(input) {
      let text = manifestText;
      if (input.kind === 'json') text = JSON.stringify(mutateJson(manifest, input.picks));
      else if (input.kind === 'manifest-bytes') text = new TextDecoder().decode(mutate(new TextEncoder().encode(manifestText), input.ms, manifestText.length));
      writeFileSync(join(work, MANIFEST_FILE), text);
      if (input.kind === 'tensor-bytes') writeFileSync(join(work, tensorFile), mutate(tensorBytes, input.ms, 400));
      try {
        const a = readArtifact(work);
        for (const [name, q] of a.layers) {
          if (q.qweight.length !== w4WordCount(q.outFeatures, q.inFeatures)) throw new Error(`loaded ${name} inconsistently`);
        }
      } finally {
        if (input.kind === 'tensor-bytes') restore();
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Hugging Face config.json against the weights it must describe

export type HfConfigInput = { kind: 'json'; picks: Parameters<typeof mutateJson>[1] } | { kind: 'bytes'; ms: Array<Mutation & { pos: number; head: boolean }> };

export function hfConfigTarget(): FuzzTarget<HfConfigInput> {
  const dir = scratchDir('hf');
  const config: ModelConfig = {
    arch: 'qwen2', dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, headDim: 4, vocabSize: 16, maxSeqLen: 32, normEps: 1e-6,
    ropeTheta: 10000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: true, bosId: 1, eosId: 2,
  };
  writeSafetensors(join(dir, 'model.safetensors'), requiredTensorShapes(config).map(({ name, shape }) => ({
    name, dtype: 'f32' as const, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4),
  })));
  const json = toHfConfigJson(config);
  const text = JSON.stringify(json, null, 2);
  const file = join(dir, 'config.json');
  writeFileSync(file, text);
  return {
    name: 'hf-config',
    fixtures: { dir },
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('json' as const), picks: jsonPicks }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), ms: mutations }) },
    ),
    run(input) {
      const bytes = input.kind === 'json' ? JSON.stringify(mutateJson(json, input.picks)) : new TextDecoder().decode(mutate(new TextEncoder().encode(text), input.ms, text.length));
      writeFileSync(file, bytes);
      let parsed: unknown;
      try {
        parsed = JSON.parse(bytes);
      } catch {
        // Not JSON: the loader is never reached (readJsonFile's FormatError path has its own tests).
        return 'json-syntax';
      }
      const c = parseHfConfig(file, parsed);
      const src = openHfWeights(dir, c);
      try {
        for (const name of src.names()) src.tensor(name).read();
      } finally {
        src.close();
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json

export function hfTokenizerTarget(tokenizerJson: string): FuzzTarget<HfConfigInput> {
  const dir = scratchDir('hftok');
  const text = readFileSync(tokenizerJson, 'utf8');
  const json = JSON.parse(text) as unknown;
  const file = join(dir, 'tokenizer.json');
  return {
    name: 'hf-tokenizer',
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('json' as const), picks: jsonPicks }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), ms: mutations }) },
    ),
    run(input) {
      writeFileSync(file, input.kind === 'json' ? JSON.stringify(mutateJson(json, input.picks)) : mutate(new TextEncoder().encode(text), input.ms, 2000));
      const tok = loadHfTokenizer(file, { bosId: 1, eosId: 2 });
      // A loaded tokenizer must encode and decode plain text without throwing.
      tok.decode(tok.encode('Once upon a time, Lily saw a big red ball.', { bos: true }));
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
