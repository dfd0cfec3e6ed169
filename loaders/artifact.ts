// Reading quantized-model artifacts (format: loaders/artifact-manifest.ts, docs/artifact-format.md):
// the version and every checksum are checked before anything is returned.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { w4Blocks } from '../core/w4-layout.js';
import { f16ToF32Array } from '../core/dtype.js';
import type { LowRankDtype, LowRankInt8, QuantizedLinear } from '../core/quantized.js';
import { dequantizeLowRankInt8 } from '../core/lowrank-int8.js';
import { weightWordsPerBlock } from '../core/w8-layout.js';
import { FormatError, LoadError, NotFoundError } from './errors.js';
import { openSafetensors } from './safetensors.js';
import {
  CLASSIFIER_MODULE, MANIFEST_FILE, checkQuantizedLinear, readArtifactManifest, sha256File, type ArtifactLayerEntry, type ArtifactManifest,
} from './artifact-manifest.js';

export interface Artifact {
  manifest: ArtifactManifest;
  layers: Map<string, QuantizedLinear>;
  /** The quantized classifier (format int8/int4), read with the rest. */
  classifier?: QuantizedLinear;
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
  return { manifest: reader.manifest, layers, classifier: reader.classifier() };
}

/** An artifact whose checksums were verified, read one tensor file (one layer) at a time. */
export interface ArtifactReader {
  manifest: ArtifactManifest;
  /** The linear named `name`, read from its file (the last file read is kept for its other linears). */
  linear(name: string): QuantizedLinear | undefined;
  /** The quantized classifier (manifest.classifier with an integer format), read from its file; else undefined. */
  classifier(): QuantizedLinear | undefined;
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
    classifier() {
      const c = manifest.classifier;
      if (!c?.file) return undefined;
      const entry: ArtifactLayerEntry = {
        file: c.file, inFeatures: c.inFeatures!, outFeatures: c.outFeatures!, wBits: c.wBits!, aBits: c.aBits!,
        rank: 0, errorRank: 0, outliers: [], smooth: false, bias: false,
      };
      return readLinears(dir, c.file, [[CLASSIFIER_MODULE, entry]], manifest.lowRankDtype).get(CLASSIFIER_MODULE);
    },
  };
}

/** The linears of one tensor file, cross-checked with the manifest's shapes (checksums: openArtifact). */
function readArtifactFile(dir: string, manifest: ArtifactManifest, file: string): Map<string, QuantizedLinear> {
  return readLinears(dir, file, Object.entries(manifest.layers).filter(([, e]) => e.file === file), manifest.lowRankDtype);
}

/** The linears `entries` describe, read from `file`. */
function readLinears(dir: string, file: string, entries: Array<[string, ArtifactLayerEntry]>, lowRankDtype: LowRankDtype): Map<string, QuantizedLinear> {
  const layers = new Map<string, QuantizedLinear>();
  const path = join(dir, file);
  const st = openSafetensors(path, { dtypes: ['U32', 'F32', 'F16', 'I8'] });
  try {
    const expectTensor = (tensor: string, dtype: string, shape: number[]): Uint8Array => {
      if (!st.has(tensor)) throw new FormatError(path, `tensor ${tensor} is missing`);
      const entry = st.entry(tensor);
      if (entry.dtype !== dtype || entry.shape.join(',') !== shape.join(',')) {
        throw new FormatError(path, `tensor ${tensor} is ${entry.dtype} [${entry.shape}], the manifest implies ${dtype} [${shape}]`);
      }
      return st.read(tensor);
    };
    for (const [name, e] of entries) {
      const { inFeatures: inF, outFeatures: out, rank } = e;
      const q: QuantizedLinear = {
        inFeatures: inF,
        outFeatures: out,
        wBits: e.wBits,
        aBits: e.aBits,
        qweight: typed(expectTensor(`${name}.qweight`, 'U32', [w4Blocks(inF), out, weightWordsPerBlock(e.wBits)]), Uint32Array),
        wScale: typed(expectTensor(`${name}.wscale`, 'F32', [out]), Float32Array),
        rank,
      };
      if (e.smooth) q.smooth = typed(expectTensor(`${name}.smooth`, 'F32', [inF]), Float32Array);
      if (rank > 0 && lowRankDtype === 'int8') {
        const f: LowRankInt8 = {
          la: typed(expectTensor(`${name}.la`, 'I8', [inF, rank]), Int8Array),
          laScale: typed(expectTensor(`${name}.la_scale`, 'F32', [rank]), Float32Array),
          lb: typed(expectTensor(`${name}.lb`, 'I8', [rank, out]), Int8Array),
          lbScale: typed(expectTensor(`${name}.lb_scale`, 'F32', [rank]), Float32Array),
        };
        Object.assign(q, dequantizeLowRankInt8(f, inF, out, rank), { lowRankInt8: f });
      } else if (rank > 0) {
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
