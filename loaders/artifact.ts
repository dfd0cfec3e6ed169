// Quantized-model artifacts (docs/artifact-format.md): a directory holding manifest.json and one
// safetensors file per transformer layer. The manifest names the format and its version, the source
// model and the sha256 of its weights, the method and its settings, the calibration, per-layer ranks
// and outlier channels, and the sha256 of every tensor file. Writing is atomic (a temporary sibling
// directory, fsynced, renamed over the target only when complete); reading checks the version and every
// checksum before anything is returned.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { w4WordCount, w4Blocks, W4_WORDS_PER_BLOCK } from '../core/w4-layout.js';
import { f16ToF32Array, f32ToF16Array } from '../core/dtype.js';
import { ACTIVATION_BITS_TEXT, isActivationBits, type QuantizedLinear } from '../core/quantized.js';
import { fsyncDir, tempSibling, writeBytesAtomic } from './atomic.js';
import { FormatError, LoadError, NotFoundError } from './errors.js';
import { isRecord, readJsonFile } from './json-file.js';
import { openSafetensors, writeSafetensors, type SafetensorsWriteTensor } from './safetensors.js';

export const ARTIFACT_FORMAT = 'aser-artifact';
export const ARTIFACT_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';

/** The model an artifact was made from. */
export interface ArtifactSource {
  /** Short identity, e.g. "stories260k". */
  id: string;
  /** sha256 of the weight file, or for several files of the sorted lines "<sha256>  <name>\n" (sha256sum's output). */
  sha256: string;
  files: Array<{ name: string; sha256: string; bytes: number }>;
}

export interface ArtifactCalibration {
  dataset: string;
  samples: number;
  seqLen: number;
  seed: number;
  /** Tokens actually accumulated per linear input. */
  tokens?: number;
}

/** Per-linear entry of the manifest. */
export interface ArtifactLayerEntry {
  /** Tensor file (in the artifact directory) holding this linear's tensors. */
  file: string;
  inFeatures: number;
  outFeatures: number;
  wBits: number;
  aBits: number;
  /** Columns of L_A: the error-reconstruction rank plus the outlier channels. */
  rank: number;
  /** The error-reconstruction rank r alone. */
  errorRank: number;
  /** Input channels carried exactly by the side path (one-hot L_A columns after the first errorRank). */
  outliers: number[];
  smooth: boolean;
  bias: boolean;
  /** Quantizer diagnostics worth keeping (output errors via H, effective rank, damping, …). */
  diag?: Record<string, number>;
}

export interface ArtifactManifest {
  format: typeof ARTIFACT_FORMAT;
  formatVersion: number;
  /** "aser-webgpu <version>". */
  createdBy: string;
  createdAt: string;
  source: ArtifactSource;
  method: string;
  wBits: number;
  aBits: number;
  /** Fixed rank, or null when the α rule chose per-layer ranks. */
  rank: number | null;
  alpha: number | null;
  /** Further method settings (smoothAlpha, outliers, outlierThreshold, damping, maxRank, …). */
  options: Record<string, unknown>;
  calibration: ArtifactCalibration | null;
  /** Keyed by module name, e.g. "model.layers.3.mlp.down_proj". */
  layers: Record<string, ArtifactLayerEntry>;
  /** Every tensor file with its sha256 and size. */
  files: Record<string, { sha256: string; bytes: number }>;
}

/** What the caller supplies; the writer fills in format, version, layers, files, createdAt/By. */
export type ArtifactHeader = Omit<ArtifactManifest, 'format' | 'formatVersion' | 'layers' | 'files' | 'createdAt' | 'createdBy'> & {
  createdBy?: string;
};

export interface Artifact {
  manifest: ArtifactManifest;
  layers: Map<string, QuantizedLinear>;
}

// ---------------------------------------------------------------------------------------------------
// hashing

const HASH_CHUNK = 16 << 20;

/** sha256 (hex) of a file, streamed. */
export function sha256File(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new NotFoundError(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    const hash = createHash('sha256');
    const buf = new Uint8Array(HASH_CHUNK);
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        throw new LoadError(path, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      if (got <= 0) break;
      hash.update(buf.subarray(0, got));
    }
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** The identity of a model's weight files for the manifest (and for readArtifact's expectModelHash). */
export function describeModelFiles(id: string, paths: string[]): ArtifactSource {
  if (paths.length === 0) throw new LoadError(id, 'no weight files to hash');
  const files = paths.map((p) => ({ name: basename(p), sha256: sha256File(p), bytes: statSync(p).size }));
  const sha256 = files.length === 1
    ? files[0]!.sha256
    : createHash('sha256').update([...files].sort((a, b) => (a.name < b.name ? -1 : 1)).map((f) => `${f.sha256}  ${f.name}\n`).join('')).digest('hex');
  return { id, sha256, files };
}

function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'aser-webgpu') return `aser-webgpu ${pkg.version ?? '?'}`;
    } catch {
      // try the next location (source tree vs dist/)
    }
  }
  return 'aser-webgpu';
}

// ---------------------------------------------------------------------------------------------------
// validation shared by writer and reader

/** Checks that every array of a QuantizedLinear has the length its shape and rank promise. */
export function checkQuantizedLinear(where: string, q: QuantizedLinear): void {
  const fail = (reason: string): never => {
    throw new FormatError(where, reason);
  };
  const { inFeatures: inF, outFeatures: out, rank } = q;
  if (![inF, out].every((d) => Number.isInteger(d) && d > 0)) fail(`bad shape [${out}, ${inF}]`);
  if (q.wBits !== 4) fail(`wBits ${q.wBits}: only 4-bit packed weights are supported`);
  if (!isActivationBits(q.aBits)) fail(`aBits ${q.aBits}: must be ${ACTIVATION_BITS_TEXT}`);
  if (!Number.isInteger(rank) || rank < 0 || rank > inF + out) fail(`bad rank ${rank}`);
  if (q.qweight.length !== w4WordCount(out, inF)) fail(`qweight has ${q.qweight.length} words, [${out}, ${inF}] packs into ${w4WordCount(out, inF)}`);
  if (q.wScale.length !== out) fail(`wScale has ${q.wScale.length} values, needs ${out}`);
  if (q.smooth && q.smooth.length !== inF) fail(`smooth has ${q.smooth.length} values, needs ${inF}`);
  if (q.bias && q.bias.length !== out) fail(`bias has ${q.bias.length} values, needs ${out}`);
  if (rank > 0) {
    if (!q.la || q.la.length !== inF * rank) fail(`la has ${q.la?.length ?? 0} values, needs ${inF} x ${rank}`);
    if (!q.lb || q.lb.length !== rank * out) fail(`lb has ${q.lb?.length ?? 0} values, needs ${rank} x ${out}`);
  } else if (q.la?.length || q.lb?.length) fail('la/lb present with rank 0');
  if (q.outlierChannels) {
    if (q.outlierChannels.length > rank) fail(`${q.outlierChannels.length} outlier channels but side-path rank ${rank}`);
    for (const c of q.outlierChannels) if (c >= inF) fail(`outlier channel ${c} outside 0..${inF - 1}`);
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function tensorsOf(name: string, q: QuantizedLinear): SafetensorsWriteTensor[] {
  const t: SafetensorsWriteTensor[] = [
    // [k-blocks, out, 4] u32: the layout of core/w4-layout.ts, verbatim
    { name: `${name}.qweight`, dtype: 'U32', shape: [w4Blocks(q.inFeatures), q.outFeatures, W4_WORDS_PER_BLOCK], data: bytesOf(q.qweight) },
    { name: `${name}.wscale`, dtype: 'F32', shape: [q.outFeatures], data: bytesOf(q.wScale) },
  ];
  if (q.smooth) t.push({ name: `${name}.smooth`, dtype: 'F32', shape: [q.inFeatures], data: bytesOf(q.smooth) });
  if (q.rank > 0) {
    t.push({ name: `${name}.la`, dtype: 'F16', shape: [q.inFeatures, q.rank], data: bytesOf(f32ToF16Array(q.la!)) });
    t.push({ name: `${name}.lb`, dtype: 'F16', shape: [q.rank, q.outFeatures], data: bytesOf(f32ToF16Array(q.lb!)) });
  }
  if (q.bias) t.push({ name: `${name}.bias`, dtype: 'F32', shape: [q.outFeatures], data: bytesOf(q.bias) });
  return t;
}

/** "model.layers.12.mlp.up_proj" → "layer-012.safetensors"; anything else → "other.safetensors". */
export function artifactFileFor(moduleName: string): string {
  const m = /^model\.layers\.(\d+)\./.exec(moduleName);
  return m ? `layer-${m[1]!.padStart(3, '0')}.safetensors` : 'other.safetensors';
}

// ---------------------------------------------------------------------------------------------------
// writing

/** An existing path may be replaced only if it is an artifact (has our manifest) or an empty directory. */
function checkReplaceable(dir: string): void {
  if (!existsSync(dir)) return;
  const st = statSync(dir);
  if (!st.isDirectory()) throw new LoadError(dir, 'exists and is not a directory; refusing to replace it with an artifact');
  if (readdirSync(dir).length === 0) return;
  const manifest = join(dir, MANIFEST_FILE);
  let format: unknown;
  try {
    format = (JSON.parse(readFileSync(manifest, 'utf8')) as { format?: unknown }).format;
  } catch {
    format = undefined;
  }
  if (format !== ARTIFACT_FORMAT) {
    throw new LoadError(dir, `exists and is not an ASER artifact (no ${MANIFEST_FILE} with format "${ARTIFACT_FORMAT}"); refusing to replace it`);
  }
}

/**
 * Test-only hook (ASER_TEST_ARTIFACT_PAUSE_MS): at each step of a write, say so on stderr and pause,
 * so a crash test can SIGKILL the writer inside a chosen window. Unset, it costs one env lookup.
 */
function testPause(step: string): void {
  const ms = Number(process.env.ASER_TEST_ARTIFACT_PAUSE_MS ?? 0);
  if (!(ms > 0)) return;
  process.stderr.write(`aser-test: artifact ${step}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether a process id is alive (EPERM: alive, someone else's). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes staging directories of earlier writers to `dir` that died mid-write (their names carry the
 * writer's pid; `.NAME.tmp-PID-xxxx`). They are hidden, never read, and only take space.
 */
export function removeStaleStaging(dir: string): string[] {
  const parent = dirname(dir);
  const prefix = `.${basename(dir)}.tmp-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Writes an artifact file by file into a temporary sibling directory (so a quantizer can stream layer
 * by layer), then `commit` writes the manifest and renames the directory over `dir`. An existing
 * artifact at `dir` is replaced only by a complete new one; anything else there is refused.
 */
export class ArtifactWriter {
  private readonly layers: Record<string, ArtifactLayerEntry> = {};
  private readonly files: Record<string, { sha256: string; bytes: number }> = {};
  private done = false;

  private constructor(
    readonly dir: string,
    private readonly staging: string,
  ) {}

  static begin(dir: string): ArtifactWriter {
    checkReplaceable(dir);
    mkdirSync(dirname(dir), { recursive: true });
    removeStaleStaging(dir);
    const staging = tempSibling(dir);
    mkdirSync(staging);
    return new ArtifactWriter(dir, staging);
  }

  /** Writes one tensor file holding the given linears (normally one transformer layer's seven). */
  addFile(file: string, linears: Map<string, QuantizedLinear>, diagnostics?: Map<string, Record<string, unknown>>): void {
    this.checkOpen();
    if (file !== basename(file) || !file.endsWith('.safetensors') || file === MANIFEST_FILE) {
      throw new LoadError(file, 'artifact tensor files must be plain *.safetensors names');
    }
    if (this.files[file]) throw new LoadError(join(this.dir, file), 'written twice');
    const tensors: SafetensorsWriteTensor[] = [];
    for (const [name, q] of linears) {
      if (this.layers[name]) throw new LoadError(join(this.dir, file), `linear ${name} written twice`);
      checkQuantizedLinear(`${name} (writing ${file})`, q);
      tensors.push(...tensorsOf(name, q));
      const outliers = q.outlierChannels ? Array.from(q.outlierChannels) : [];
      const entry: ArtifactLayerEntry = {
        file, inFeatures: q.inFeatures, outFeatures: q.outFeatures, wBits: q.wBits, aBits: q.aBits,
        rank: q.rank, errorRank: q.rank - outliers.length, outliers, smooth: !!q.smooth, bias: !!q.bias,
      };
      const diag = diagnostics?.get(name);
      if (diag) entry.diag = numericFields(diag);
      this.layers[name] = entry;
    }
    const path = join(this.staging, file);
    writeSafetensors(path, tensors, { format: ARTIFACT_FORMAT });
    this.files[file] = { sha256: sha256File(path), bytes: statSync(path).size };
    testPause(`wrote ${file}`);
  }

  /** Writes manifest.json and moves the finished artifact into place. */
  commit(header: ArtifactHeader): ArtifactManifest {
    this.checkOpen();
    const { createdBy, ...rest } = header;
    const manifest: ArtifactManifest = {
      format: ARTIFACT_FORMAT,
      formatVersion: ARTIFACT_FORMAT_VERSION,
      createdBy: createdBy ?? packageVersion(),
      createdAt: new Date().toISOString(),
      ...rest,
      layers: this.layers,
      files: this.files,
    };
    try {
      validateManifest(join(this.dir, MANIFEST_FILE), JSON.parse(JSON.stringify(manifest)));
      writeBytesAtomic(join(this.staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
      fsyncDir(this.staging);
      testPause('manifest written');
      if (existsSync(this.dir)) {
        checkReplaceable(this.dir);
        const old = tempSibling(this.dir);
        renameSync(this.dir, old);
        testPause('previous artifact moved aside');
        try {
          renameSync(this.staging, this.dir);
        } catch (err) {
          renameSync(old, this.dir); // put the previous artifact back
          throw err;
        }
        rmSync(old, { recursive: true, force: true });
      } else {
        renameSync(this.staging, this.dir);
      }
      fsyncDir(dirname(this.dir));
    } catch (err) {
      this.abort();
      throw err;
    }
    this.done = true;
    return manifest;
  }

  /** Removes the temporary directory; the target is left as it was. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    rmSync(this.staging, { recursive: true, force: true });
  }

  private checkOpen(): void {
    if (this.done) throw new LoadError(this.dir, 'artifact writer already committed or aborted');
  }
}

/** The finite numbers of a diagnostics object, nested plain objects flattened ("sampled.error"); arrays dropped. */
function numericFields(diag: Record<string, unknown>, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  for (const [k, v] of Object.entries(diag)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[prefix + k] = v;
    else if (isRecord(v) && !ArrayBuffer.isView(v) && prefix === '') numericFields(v, `${k}.`, out);
  }
  return out;
}

/**
 * Writes a whole artifact at once: linears grouped into one file per transformer layer.
 * `diagnostics` (e.g. quantizeModel's) are summarized into the manifest (their finite numeric fields).
 */
export function writeArtifact(
  dir: string,
  header: ArtifactHeader,
  layers: Map<string, QuantizedLinear>,
  diagnostics?: Map<string, object>,
): ArtifactManifest {
  const writer = ArtifactWriter.begin(dir);
  try {
    const groups = new Map<string, Map<string, QuantizedLinear>>();
    for (const [name, q] of layers) {
      const file = artifactFileFor(name);
      if (!groups.has(file)) groups.set(file, new Map());
      groups.get(file)!.set(name, q);
    }
    for (const [file, group] of groups) writer.addFile(file, group, diagnostics as Map<string, Record<string, unknown>> | undefined);
    return writer.commit(header);
  } catch (err) {
    writer.abort();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// reading

function isNonNegInt(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

/** Checks the manifest's structure; a version mismatch gets its own message. */
function validateManifest(file: string, raw: unknown): ArtifactManifest {
  const bad = (reason: string): never => {
    throw new FormatError(file, reason);
  };
  if (!isRecord(raw)) bad('manifest is not a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.format !== ARTIFACT_FORMAT) bad(`not an ASER artifact manifest: format is ${JSON.stringify(m.format)}, expected "${ARTIFACT_FORMAT}"`);
  if (m.formatVersion !== ARTIFACT_FORMAT_VERSION) {
    bad(`artifact format version ${JSON.stringify(m.formatVersion)} is not supported: this build reads version ${ARTIFACT_FORMAT_VERSION}` +
      ` (written by ${JSON.stringify(m.createdBy)}); re-quantize the model with this build`);
  }
  if (typeof m.method !== 'string') bad('"method" must be a string');
  if (!isNonNegInt(m.wBits) || !isNonNegInt(m.aBits)) bad('"wBits" and "aBits" must be integers');
  if (m.rank !== null && !isNonNegInt(m.rank)) bad('"rank" must be an integer or null');
  if (m.alpha !== null && typeof m.alpha !== 'number') bad('"alpha" must be a number or null');
  const src = m.source;
  if (!isRecord(src) || typeof src.id !== 'string' || typeof src.sha256 !== 'string' || !Array.isArray(src.files)) {
    bad('"source" must be {id, sha256, files}');
  }
  if (!isRecord(m.files)) bad('"files" must be an object');
  for (const [name, f] of Object.entries(m.files as Record<string, unknown>)) {
    // A plain *.safetensors name in the artifact directory: never a path, '.', '..' or the manifest.
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*\.safetensors$/.test(name)) bad(`files: ${JSON.stringify(name)} is not a plain *.safetensors file name`);
    if (!isRecord(f) || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256) || !isNonNegInt(f.bytes)) {
      bad(`files.${name} must be {sha256: 64 hex digits, bytes}`);
    }
  }
  if (!isRecord(m.layers)) bad('"layers" must be an object');
  for (const [name, l] of Object.entries(m.layers as Record<string, unknown>)) {
    if (!isRecord(l)) bad(`layers.${name} is not an object`);
    const e = l as Record<string, unknown>;
    if (typeof e.file !== 'string' || !Object.hasOwn(m.files as object, e.file)) bad(`layers.${name}.file ${JSON.stringify(e.file)} is not listed in "files"`);
    for (const k of ['inFeatures', 'outFeatures', 'wBits', 'aBits', 'rank', 'errorRank'] as const) {
      if (!isNonNegInt(e[k])) bad(`layers.${name}.${k} must be a non-negative integer`);
    }
    if (!Array.isArray(e.outliers) || !e.outliers.every(isNonNegInt)) bad(`layers.${name}.outliers must be a list of channel indices`);
    if ((e.errorRank as number) + (e.outliers as number[]).length !== e.rank) bad(`layers.${name}: rank ${e.rank} ≠ errorRank ${e.errorRank} + ${(e.outliers as number[]).length} outliers`);
    if (typeof e.smooth !== 'boolean' || typeof e.bias !== 'boolean') bad(`layers.${name}.smooth and .bias must be booleans`);
  }
  return raw as ArtifactManifest;
}

/** Reads and validates manifest.json only (no tensor file is opened). */
export function readArtifactManifest(dir: string): ArtifactManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(dir)) throw new NotFoundError(dir, 'artifact directory does not exist');
  if (!existsSync(file)) throw new NotFoundError(file, `not an ASER artifact: ${MANIFEST_FILE} is missing`);
  return validateManifest(file, readJsonFile(file, 'artifact manifest'));
}

export interface ReadArtifactOptions {
  /** sha256 of the model the artifact will run on (ArtifactSource.sha256); a different one is refused. */
  expectModelHash?: string;
}

function typed<T>(bytes: Uint8Array, ctor: { new (buffer: ArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number }): T {
  const copy = bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new ctor(copy.buffer as ArrayBuffer, copy.byteOffset, copy.byteLength / ctor.BYTES_PER_ELEMENT);
}

/**
 * Reads an artifact: the manifest (format and version), the model hash when asked, then every tensor
 * file's size and sha256 against the manifest, then the tensors, cross-checked with the manifest's
 * shapes. Any mismatch is a LoadError naming the file and the reason; nothing partial is returned.
 */
export function readArtifact(dir: string, options: ReadArtifactOptions = {}): Artifact {
  const reader = openArtifact(dir, options);
  const layers = new Map<string, QuantizedLinear>();
  for (const file of new Set(Object.values(reader.manifest.layers).map((e) => e.file))) {
    for (const [name, q] of readArtifactFile(dir, reader.manifest, file)) layers.set(name, q);
  }
  return { manifest: reader.manifest, layers };
}

/** An artifact whose checksums were verified, read one tensor file (one layer) at a time. */
export interface ArtifactReader {
  manifest: ArtifactManifest;
  /** The linear named `name`, read from its file (the last file read is kept for its other linears). */
  linear(name: string): QuantizedLinear | undefined;
}

/**
 * Checks the manifest, the model hash when asked, and every tensor file's size and sha256 (streamed),
 * then returns a reader that loads a file only when one of its linears is asked for: a quantized
 * model streams onto the GPU layer by layer without a host copy of the whole artifact.
 */
export function openArtifact(dir: string, options: ReadArtifactOptions = {}): ArtifactReader {
  const manifest = readArtifactManifest(dir);
  const manifestFile = join(dir, MANIFEST_FILE);
  if (options.expectModelHash !== undefined && options.expectModelHash !== manifest.source.sha256) {
    throw new LoadError(manifestFile, `artifact was made from model ${manifest.source.id} with sha256 ${manifest.source.sha256}, ` +
      `but the model given has sha256 ${options.expectModelHash}; quantize this model again`);
  }
  for (const [name, f] of Object.entries(manifest.files)) {
    const path = join(dir, name);
    if (!existsSync(path)) throw new NotFoundError(path, `tensor file listed in ${MANIFEST_FILE} is missing (incomplete or damaged artifact)`);
    const st = statSync(path);
    if (!st.isFile()) throw new FormatError(path, `tensor file listed in ${MANIFEST_FILE} is not a regular file`);
    const bytes = st.size;
    if (bytes !== f.bytes) throw new FormatError(path, `is ${bytes} bytes, ${MANIFEST_FILE} says ${f.bytes} (truncated or modified)`);
    const sha = sha256File(path);
    if (sha !== f.sha256) throw new FormatError(path, `sha256 mismatch: ${MANIFEST_FILE} says ${f.sha256}, the file has ${sha} (corrupted or modified)`);
  }
  let cached: { file: string; layers: Map<string, QuantizedLinear> } | undefined;
  return {
    manifest,
    linear(name) {
      const e = manifest.layers[name];
      if (!e) return undefined;
      if (cached?.file !== e.file) cached = { file: e.file, layers: readArtifactFile(dir, manifest, e.file) };
      return cached.layers.get(name);
    },
  };
}

/** The linears of one tensor file, cross-checked with the manifest's shapes (checksums: openArtifact). */
function readArtifactFile(dir: string, manifest: ArtifactManifest, file: string): Map<string, QuantizedLinear> {
  const layers = new Map<string, QuantizedLinear>();
  const names = Object.entries(manifest.layers).filter(([, e]) => e.file === file).map(([name]) => name);
  const path = join(dir, file);
  const st = openSafetensors(path, { dtypes: ['U32', 'F32', 'F16'] });
  try {
    const expectTensor = (tensor: string, dtype: string, shape: number[]): Uint8Array => {
      if (!st.has(tensor)) throw new FormatError(path, `tensor ${tensor} is missing`);
      const entry = st.entry(tensor);
      if (entry.dtype !== dtype || entry.shape.join(',') !== shape.join(',')) {
        throw new FormatError(path, `tensor ${tensor} is ${entry.dtype} [${entry.shape}], the manifest implies ${dtype} [${shape}]`);
      }
      return st.read(tensor);
    };
    for (const name of names) {
      const e = manifest.layers[name]!;
      const { inFeatures: inF, outFeatures: out, rank } = e;
      const q: QuantizedLinear = {
        inFeatures: inF,
        outFeatures: out,
        wBits: e.wBits,
        aBits: e.aBits,
        qweight: typed(expectTensor(`${name}.qweight`, 'U32', [w4Blocks(inF), out, W4_WORDS_PER_BLOCK]), Uint32Array),
        wScale: typed(expectTensor(`${name}.wscale`, 'F32', [out]), Float32Array),
        rank,
      };
      if (e.smooth) q.smooth = typed(expectTensor(`${name}.smooth`, 'F32', [inF]), Float32Array);
      if (rank > 0) {
        q.la = f16ToF32Array(typed(expectTensor(`${name}.la`, 'F16', [inF, rank]), Uint16Array));
        q.lb = f16ToF32Array(typed(expectTensor(`${name}.lb`, 'F16', [rank, out]), Uint16Array));
      }
      if (e.bias) q.bias = typed(expectTensor(`${name}.bias`, 'F32', [out]), Float32Array);
      if (e.outliers.length) q.outlierChannels = Uint32Array.from(e.outliers);
      checkQuantizedLinear(`${path} (${name})`, q);
      layers.set(name, q);
    }
  } finally {
    st.close();
  }
  return layers;
}
