// Reading an artifact's linears once its files are at hand: the checks on the model hash and on each
// tensor file's size and sha256 (messages shared by every reader), and a reader that parses one
// tensor file (one layer) at a time. Portable: the files come from disk (loaders/artifact.ts) or from
// fetched bytes (a web page), through `openFile`.
import { w4Blocks } from '../core/w4-layout.js';
import { f16ToF32Array } from '../core/dtype.js';
import type { LowRankDtype, LowRankInt8, QuantizedLinear } from '../core/quantized.js';
import { dequantizeLowRankInt8 } from '../core/lowrank-int8.js';
import { weightWordsPerBlock } from '../core/w8-layout.js';
import { FormatError, LoadError } from './errors.js';
import { SafetensorsFile, type SafetensorsOpenOptions } from './safetensors-format.js';
import { CLASSIFIER_MODULE, MANIFEST_FILE, checkQuantizedLinear, type ArtifactLayerEntry, type ArtifactManifest } from './artifact-schema.js';

/** The dtypes an artifact's tensor files hold. */
export const ARTIFACT_TENSOR_DTYPES: SafetensorsOpenOptions = { dtypes: ['U32', 'F32', 'F16', 'I8'] };

/** An artifact whose checksums were verified, read one tensor file (one layer) at a time. */
export interface ArtifactReader {
  manifest: ArtifactManifest;
  /** The linear named `name`, read from its file (the last file read is kept for its other linears). */
  linear(name: string): QuantizedLinear | undefined;
  /** The quantized classifier (manifest.classifier with an integer format), read from its file; else undefined. */
  classifier(): QuantizedLinear | undefined;
}

/** A different model than the artifact was made from is refused (`manifestFile` names the manifest). */
export function checkArtifactModel(manifestFile: string, manifest: ArtifactManifest, modelSha256: string | undefined): void {
  if (modelSha256 !== undefined && modelSha256 !== manifest.source.sha256) {
    throw new LoadError(manifestFile, `artifact was made from model ${manifest.source.id} with sha256 ${manifest.source.sha256}, ` +
      `but the model given has sha256 ${modelSha256}; quantize this model again`);
  }
}

/**
 * One tensor file against its manifest entry: `bytes` and `sha256` are what the file has; the sha256 is
 * asked for only when the size matches (hashing is the slow part).
 */
export async function checkArtifactFile(path: string, entry: { bytes: number; sha256: string }, bytes: number, sha256: () => string | Promise<string>): Promise<void> {
  if (bytes !== entry.bytes) throw new FormatError(path, `is ${bytes} bytes, ${MANIFEST_FILE} says ${entry.bytes} (truncated or modified)`);
  const sha = await sha256();
  if (sha !== entry.sha256) throw new FormatError(path, `sha256 mismatch: ${MANIFEST_FILE} says ${entry.sha256}, the file has ${sha} (corrupted or modified)`);
}

/** As checkArtifactFile, for a hash computed synchronously (Node's streamed sha256). */
export function checkArtifactFileSync(path: string, entry: { bytes: number; sha256: string }, bytes: number, sha256: () => string): void {
  if (bytes !== entry.bytes) throw new FormatError(path, `is ${bytes} bytes, ${MANIFEST_FILE} says ${entry.bytes} (truncated or modified)`);
  const sha = sha256();
  if (sha !== entry.sha256) throw new FormatError(path, `sha256 mismatch: ${MANIFEST_FILE} says ${entry.sha256}, the file has ${sha} (corrupted or modified)`);
}

function typed<T>(bytes: Uint8Array, ctor: { new (buffer: ArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number }): T {
  const copy = bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new ctor(copy.buffer as ArrayBuffer, copy.byteOffset, copy.byteLength / ctor.BYTES_PER_ELEMENT);
}

/**
 * A reader over a verified manifest: `openFile(name)` opens one of its tensor files (with
 * ARTIFACT_TENSOR_DTYPES); each file is parsed when one of its linears is first asked for.
 */
export function artifactReader(manifest: ArtifactManifest, openFile: (file: string) => SafetensorsFile): ArtifactReader {
  let cached: { file: string; layers: Map<string, QuantizedLinear> } | undefined;
  return {
    manifest,
    linear(name) {
      const e = manifest.layers[name];
      if (!e) return undefined;
      if (cached?.file !== e.file) cached = { file: e.file, layers: readLinears(openFile(e.file), Object.entries(manifest.layers).filter(([, l]) => l.file === e.file), manifest.lowRankDtype) };
      return cached.layers.get(name);
    },
    classifier() {
      const c = manifest.classifier;
      if (!c?.file) return undefined;
      const entry: ArtifactLayerEntry = {
        file: c.file, inFeatures: c.inFeatures!, outFeatures: c.outFeatures!, wBits: c.wBits!, aBits: c.aBits!,
        rank: 0, errorRank: 0, outliers: [], smooth: false, bias: false,
      };
      return readLinears(openFile(c.file), [[CLASSIFIER_MODULE, entry]], manifest.lowRankDtype).get(CLASSIFIER_MODULE);
    },
  };
}

/** The classifier an artifact asks for: its quantized lm_head, 'f16', or undefined (the model's, as in format 1). */
export function artifactClassifier(artifact: { manifest: ArtifactManifest; classifier(): QuantizedLinear | undefined } | undefined): QuantizedLinear | 'f16' | undefined {
  const format = artifact?.manifest.classifier?.format;
  return format === 'f16' ? 'f16' : format ? artifact!.classifier() : undefined;
}

/** The linears `entries` describe, read from the tensor file `st` (closed afterwards), cross-checked with the manifest's shapes. */
export function readLinears(st: SafetensorsFile, entries: Array<[string, ArtifactLayerEntry]>, lowRankDtype: LowRankDtype): Map<string, QuantizedLinear> {
  const layers = new Map<string, QuantizedLinear>();
  const path = st.file;
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
