// Writing quantized-model artifacts (format: loaders/artifact-manifest.ts, docs/artifact-format.md).
// Writing is atomic: a temporary sibling directory, fsynced, renamed over the target only when complete.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { w4Blocks } from '../core/w4-layout.js';
import { f32ToF16Array } from '../core/dtype.js';
import { classifierWeightBits, type ClassifierFormat, type LowRankDtype, type QuantizedLinear } from '../core/quantized.js';
import { weightWordsPerBlock } from '../core/w8-layout.js';
import { sharedInputKey } from '../core/model.js';
import { fsyncDir, tempSibling, writeBytesAtomic } from './atomic.js';
import { LoadError } from './errors.js';
import { isRecord } from './json-file.js';
import { writeSafetensors, type SafetensorsWriteTensor } from './safetensors.js';
import {
  ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION, CLASSIFIER_FILE, CLASSIFIER_MODULE, MANIFEST_FILE, type ArtifactClassifier, artifactFileFor, checkQuantizedLinear, sha256File, validateManifest,
  type ArtifactHeader, type ArtifactLayerEntry, type ArtifactManifest,
} from './artifact-manifest.js';

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

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function tensorsOf(name: string, q: QuantizedLinear): SafetensorsWriteTensor[] {
  const t: SafetensorsWriteTensor[] = [
    // [k-blocks, out, words per block] u32: the layout of core/w4-layout.ts (or w8-layout.ts), verbatim
    { name: `${name}.qweight`, dtype: 'U32', shape: [w4Blocks(q.inFeatures), q.outFeatures, weightWordsPerBlock(q.wBits)], data: bytesOf(q.qweight) },
    { name: `${name}.wscale`, dtype: 'F32', shape: [q.outFeatures], data: bytesOf(q.wScale) },
  ];
  if (q.smooth) t.push({ name: `${name}.smooth`, dtype: 'F32', shape: [q.inFeatures], data: bytesOf(q.smooth) });
  const i8 = q.lowRankInt8;
  if (q.rank > 0 && i8) {
    t.push({ name: `${name}.la`, dtype: 'I8', shape: [q.inFeatures, q.rank], data: bytesOf(i8.la) });
    t.push({ name: `${name}.la_scale`, dtype: 'F32', shape: [q.rank], data: bytesOf(i8.laScale) });
    t.push({ name: `${name}.lb`, dtype: 'I8', shape: [q.rank, q.outFeatures], data: bytesOf(i8.lb) });
    t.push({ name: `${name}.lb_scale`, dtype: 'F32', shape: [q.rank], data: bytesOf(i8.lbScale) });
  } else if (q.rank > 0) {
    t.push({ name: `${name}.la`, dtype: 'F16', shape: [q.inFeatures, q.rank], data: bytesOf(f32ToF16Array(q.la!)) });
    t.push({ name: `${name}.lb`, dtype: 'F16', shape: [q.rank, q.outFeatures], data: bytesOf(f32ToF16Array(q.lb!)) });
  }
  if (q.bias) t.push({ name: `${name}.bias`, dtype: 'F32', shape: [q.outFeatures], data: bytesOf(q.bias) });
  return t;
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
  private classifier?: ArtifactClassifier;
  /** Side-path storage of the linears written so far (rank > 0 only): commit checks it against the header's. */
  private readonly lowRankDtypes = new Set<LowRankDtype>();
  /** Per block linear: its shared-input key and a digest of its smoothing vector ('' = none). */
  private readonly smoothDigests = new Map<string, { key: string; digest: string }>();
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
      if (q.rank > 0) this.lowRankDtypes.add(q.lowRankInt8 ? 'int8' : 'f16');
      const outliers = q.outlierChannels ? Array.from(q.outlierChannels) : [];
      const entry: ArtifactLayerEntry = {
        file, inFeatures: q.inFeatures, outFeatures: q.outFeatures, wBits: q.wBits, aBits: q.aBits,
        rank: q.rank, errorRank: q.rank - outliers.length, outliers, smooth: !!q.smooth, bias: !!q.bias,
      };
      const diag = diagnostics?.get(name);
      if (diag) entry.diag = numericFields(diag);
      this.layers[name] = entry;
      const key = sharedInputKey(name);
      if (key) this.smoothDigests.set(name, { key, digest: q.smooth ? createHash('sha256').update(bytesOf(q.smooth)).digest('hex') : '' });
    }
    const path = join(this.staging, file);
    writeSafetensors(path, tensors, { format: ARTIFACT_FORMAT });
    this.files[file] = { sha256: sha256File(path), bytes: statSync(path).size };
    testPause(`wrote ${file}`);
  }

  /**
   * Records the classifier's format; an integer one is written to its own tensor file (lm_head.*).
   * 'f16' stores nothing: the runtime holds the model's classifier in f16.
   */
  addClassifier(format: ClassifierFormat, q?: QuantizedLinear): void {
    this.checkOpen();
    if (this.classifier) throw new LoadError(join(this.dir, CLASSIFIER_FILE), 'classifier written twice');
    const bits = classifierWeightBits(format);
    if (bits === undefined) {
      this.classifier = { format };
      return;
    }
    if (!q || q.wBits !== bits || q.rank !== 0 || q.smooth) throw new LoadError(join(this.dir, CLASSIFIER_FILE), `classifier ${format} needs ${bits}-bit weights, no side path, no smoothing`);
    checkQuantizedLinear(`${CLASSIFIER_MODULE} (writing ${CLASSIFIER_FILE})`, q);
    const path = join(this.staging, CLASSIFIER_FILE);
    writeSafetensors(path, tensorsOf(CLASSIFIER_MODULE, q), { format: ARTIFACT_FORMAT });
    this.files[CLASSIFIER_FILE] = { sha256: sha256File(path), bytes: statSync(path).size };
    this.classifier = { format, file: CLASSIFIER_FILE, inFeatures: q.inFeatures, outFeatures: q.outFeatures, wBits: q.wBits, aBits: q.aBits };
  }

  /** Writes manifest.json and moves the finished artifact into place. */
  commit(header: ArtifactHeader): ArtifactManifest {
    this.checkOpen();
    const { createdBy, ...rest } = header;
    if (header.smoothing === 'shared-input') this.checkSharedSmoothing();
    const lowRankDtype = header.lowRankDtype ?? (this.lowRankDtypes.has('int8') ? 'int8' : 'f16');
    const other = [...this.lowRankDtypes].find((d) => d !== lowRankDtype);
    if (other) throw new LoadError(this.dir, `lowRankDtype is ${lowRankDtype} but a linear's L_A/L_B are ${other}`);
    const manifest: ArtifactManifest = {
      format: ARTIFACT_FORMAT,
      formatVersion: ARTIFACT_FORMAT_VERSION,
      createdBy: createdBy ?? packageVersion(),
      createdAt: new Date().toISOString(),
      ...rest,
      lowRankDtype,
      layers: this.layers,
      files: this.files,
      ...(this.classifier ? { classifier: this.classifier } : {}),
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

  /** 'shared-input' promises the runtime one smoothing vector per shared input: hold the quantizer to it. */
  private checkSharedSmoothing(): void {
    const first = new Map<string, { name: string; digest: string }>();
    for (const [name, { key, digest }] of this.smoothDigests) {
      const seen = first.get(key);
      if (!seen) first.set(key, { name, digest });
      else if (seen.digest !== digest) {
        this.abort();
        throw new LoadError(this.dir, `smoothing "shared-input", but ${name} and ${seen.name} read the same input with different smoothing vectors`);
      }
    }
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
  /** Writes what else the artifact holds (its classifier) before the manifest. */
  more?: (writer: ArtifactWriter) => void,
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
    more?.(writer);
    return writer.commit(header);
  } catch (err) {
    writer.abort();
    throw err;
  }
}
