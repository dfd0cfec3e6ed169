// Quantized-model artifacts (docs/artifact-format.md): a directory holding manifest.json and one
// safetensors file per transformer layer. The manifest names the format and its version, the source
// model and the sha256 of its weights, the method and its settings, the calibration, per-layer ranks
// and outlier channels, and the sha256 of every tensor file. This file: the manifest's types and the
// validation the writer (loaders/artifact-writer.ts) and the readers (loaders/artifact.ts, a web page)
// share. Portable; hashing files and reading manifest.json from disk: loaders/artifact-manifest.ts.
import { w4WordCount } from '../core/w4-layout.js';
import {
  ACTIVATION_BITS_TEXT, CLASSIFIER_FORMATS, LOW_RANK_DTYPES, SMOOTHING_SCOPES, classifierWeightBits, isActivationBits, isClassifierFormat, isLowRankDtype,
  isSmoothingScope, type ClassifierFormat, type LowRankDtype, type QuantizedLinear, type SmoothingScope,
} from '../core/quantized.js';
import { w8WordCount } from '../core/w8-layout.js';
import { FormatError } from './errors.js';
import { isRecord } from './json-record.js';

export const ARTIFACT_FORMAT = 'aser-artifact';
/**
 * The version this build writes. Version 2 added `smoothing` (where smoothing vectors were decided)
 * and the optional `classifier` entry (a quantized or f16 classifier); version 3 `lowRankDtype` (L_A
 * and L_B in f16, or int8 with a scale per rank index).
 */
export const ARTIFACT_FORMAT_VERSION = 3;
/** The versions this build reads; older ones are brought up to the current shape by upgradeManifest. */
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2, 3];
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

/**
 * How the artifact's classifier runs (format version ≥ 2). 'f16': the model's own classifier weights,
 * held in f16 on the GPU (nothing stored here). 'int8' / 'int4': per-output-channel weights stored in
 * `file` as `lm_head.qweight` / `lm_head.wscale`, run with `aBits`-bit per-token activations.
 */
export interface ArtifactClassifier {
  format: ClassifierFormat;
  file?: string;
  inFeatures?: number;
  outFeatures?: number;
  wBits?: number;
  aBits?: number;
}

/** The classifier's tensor file and module name inside it. */
export const CLASSIFIER_FILE = 'classifier.safetensors';
export const CLASSIFIER_MODULE = 'lm_head';

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
  // Version-2 fields. A field added to version 2 goes here, in TOP_LEVEL_V2 (its check) and in
  // upgradeManifest (its value for a version-1 manifest).
  /**
   * Where each linear's smoothing vector was decided: 'shared-input' = the linears reading one input
   * (q|k|v, gate|up) store bitwise identical `smooth` tensors (or none); 'per-linear' = each its own
   * (every version-1 artifact). Tensors are stored per linear either way.
   */
  smoothing: SmoothingScope;
  /** Version 2, optional; absent (always in version 1): the classifier runs from the model's weights in the executor's dtype. */
  classifier?: ArtifactClassifier;
  // Version-3 fields (upgradeManifest gives older manifests their value).
  /**
   * How every linear's L_A / L_B tensors are stored: 'f16' (`.la`, `.lb` F16; all of versions 1 and
   * 2), or 'int8' (`.la`, `.lb` I8 with `.la_scale` [rank] per column of L_A and `.lb_scale` [rank]
   * per row of L_B, F32).
   */
  lowRankDtype: LowRankDtype;
  /** Optional in any version: the side-path budget the per-linear ranks (layers' errorRank) were allocated for. */
  budget?: ArtifactBudget;
}

/**
 * How `aser quantize --budget-flops/--budget-bytes` chose the ranks (quant/budget.ts): the budget as a
 * percentage of the base cost, what the side path spends (fixed outlier columns included), the rank
 * every linear was computed at before being cut, and the summed whitened error before reconstruction
 * and after it (Σσ² and the dropped Σσ², over all linears).
 */
export interface ArtifactBudget {
  unit: 'flops' | 'bytes';
  /** What the allocation minimized (absent: 'output', the summed whitened error; 'relative': each linear's relative to its output). */
  objective?: 'output' | 'relative';
  percent: number;
  spentPercent: number;
  computedRank: number;
  errorSq: number;
  droppedSq: number;
}

/** What the caller supplies; the writer fills in format, version, layers, files, createdAt/By. */
export type ArtifactHeader = Omit<ArtifactManifest, 'format' | 'formatVersion' | 'layers' | 'files' | 'createdAt' | 'createdBy' | 'lowRankDtype'> & {
  createdBy?: string;
  /** Default: what the linears written hold (int8 factors → 'int8'; f16 otherwise). */
  lowRankDtype?: LowRankDtype;
};

// ---------------------------------------------------------------------------------------------------
// validation shared by writer and reader

/** Checks that every array of a QuantizedLinear has the length its shape and rank promise. */
export function checkQuantizedLinear(where: string, q: QuantizedLinear): void {
  const fail = (reason: string): never => {
    throw new FormatError(where, reason);
  };
  const { inFeatures: inF, outFeatures: out, rank } = q;
  if (![inF, out].every((d) => Number.isInteger(d) && d > 0)) fail(`bad shape [${out}, ${inF}]`);
  if (q.wBits !== 4 && q.wBits !== 8) fail(`wBits ${q.wBits}: only 4- and 8-bit packed weights are supported`);
  if (!isActivationBits(q.aBits)) fail(`aBits ${q.aBits}: must be ${ACTIVATION_BITS_TEXT}`);
  if (!Number.isInteger(rank) || rank < 0 || rank > inF + out) fail(`bad rank ${rank}`);
  const words = q.wBits === 8 ? w8WordCount(out, inF) : w4WordCount(out, inF);
  if (q.qweight.length !== words) fail(`qweight has ${q.qweight.length} words, [${out}, ${inF}] packs into ${words} at ${q.wBits} bits`);
  if (q.wScale.length !== out) fail(`wScale has ${q.wScale.length} values, needs ${out}`);
  if (q.smooth && q.smooth.length !== inF) fail(`smooth has ${q.smooth.length} values, needs ${inF}`);
  if (q.bias && q.bias.length !== out) fail(`bias has ${q.bias.length} values, needs ${out}`);
  if (rank > 0) {
    if (!q.la || q.la.length !== inF * rank) fail(`la has ${q.la?.length ?? 0} values, needs ${inF} x ${rank}`);
    if (!q.lb || q.lb.length !== rank * out) fail(`lb has ${q.lb?.length ?? 0} values, needs ${rank} x ${out}`);
  } else if (q.la?.length || q.lb?.length) fail('la/lb present with rank 0');
  const i8 = q.lowRankInt8;
  if (i8) {
    if (rank === 0) fail('int8 side-path factors with rank 0');
    if (i8.la.length !== inF * rank || i8.lb.length !== rank * out) fail(`int8 la/lb have ${i8.la.length}/${i8.lb.length} values, need ${inF} x ${rank} and ${rank} x ${out}`);
    if (i8.laScale.length !== rank || i8.lbScale.length !== rank) fail(`int8 la/lb scales have ${i8.laScale.length}/${i8.lbScale.length} values, need ${rank} each`);
    if (![...i8.laScale, ...i8.lbScale].every((v) => Number.isFinite(v) && v >= 0)) fail('int8 la/lb scales must be finite and ≥ 0');
    if (i8.la.includes(-128) || i8.lb.includes(-128)) fail('int8 la/lb hold -128 (symmetric int8 is -127..127)');
  }
  if (q.outlierChannels) {
    if (q.outlierChannels.length > rank) fail(`${q.outlierChannels.length} outlier channels but side-path rank ${rank}`);
    for (const c of q.outlierChannels) if (c >= inF) fail(`outlier channel ${c} outside 0..${inF - 1}`);
  }
}

/** "model.layers.12.mlp.up_proj" → "layer-012.safetensors"; anything else → "other.safetensors". */
export function artifactFileFor(moduleName: string): string {
  const m = /^model\.layers\.(\d+)\./.exec(moduleName);
  return m ? `layer-${m[1]!.padStart(3, '0')}.safetensors` : 'other.safetensors';
}

function isNonNegInt(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

/** Top-level fields of versions 2 and 3 that older versions lack: each one's check and what it should be. */
const TOP_LEVEL_V2: Record<string, { ok: (x: unknown) => boolean; expected: string }> = {
  smoothing: { ok: isSmoothingScope, expected: SMOOTHING_SCOPES.map((s) => JSON.stringify(s)).join(' or ') },
  lowRankDtype: { ok: isLowRankDtype, expected: LOW_RANK_DTYPES.map((s) => JSON.stringify(s)).join(' or ') },
};

const isFiniteNonNeg = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/**
 * Top-level fields any version may carry or leave out, each with its check. Old readers ignore them, so
 * adding one needs no version bump; a present one must be well formed.
 */
const OPTIONAL_FIELDS: Record<string, { ok: (x: unknown) => boolean; expected: string }> = {
  budget: {
    ok: (x) => isRecord(x) && (x.unit === 'flops' || x.unit === 'bytes') && isNonNegInt(x.computedRank) &&
      (x.objective === undefined || x.objective === 'output' || x.objective === 'relative') &&
      ['percent', 'spentPercent', 'errorSq', 'droppedSq'].every((k) => isFiniteNonNeg(x[k])),
    expected: '{unit: "flops" | "bytes", objective?: "output" | "relative", percent, spentPercent, computedRank, errorSq, droppedSq}',
  },
};

/**
 * An older manifest in the current shape (in place): version 1 decided smoothing per linear; versions
 * 1 and 2 stored L_A / L_B in f16. The recorded formatVersion stays (it says what was written).
 */
function upgradeManifest(m: Record<string, unknown>): void {
  if (m.formatVersion === 1) m.smoothing = 'per-linear';
  if ((m.formatVersion === 1 || m.formatVersion === 2) && m.lowRankDtype === undefined) m.lowRankDtype = 'f16';
}

/** Checks the manifest's structure; a version this build cannot read gets its own message. */
export function validateManifest(file: string, raw: unknown): ArtifactManifest {
  const bad = (reason: string): never => {
    throw new FormatError(file, reason);
  };
  if (!isRecord(raw)) bad('manifest is not a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.format !== ARTIFACT_FORMAT) bad(`not an ASER artifact manifest: format is ${JSON.stringify(m.format)}, expected "${ARTIFACT_FORMAT}"`);
  if (!READABLE_FORMAT_VERSIONS.includes(m.formatVersion as number)) {
    const newer = typeof m.formatVersion === 'number' && m.formatVersion > ARTIFACT_FORMAT_VERSION;
    bad(`artifact format version ${JSON.stringify(m.formatVersion)} is not supported: this build reads versions ${READABLE_FORMAT_VERSIONS.join(', ')}` +
      ` (written by ${JSON.stringify(m.createdBy)}); ${newer ? 'use the aser-webgpu that wrote it, or ' : ''}re-quantize the model with this build`);
  }
  const lowRankDtypeTooEarly = (m.formatVersion as number) < 3 && m.lowRankDtype !== undefined;
  upgradeManifest(m);
  for (const [name, { ok, expected }] of Object.entries(TOP_LEVEL_V2)) {
    if (!ok(m[name])) bad(`"${name}" must be ${expected}, got ${JSON.stringify(m[name])}`);
  }
  for (const [name, { ok, expected }] of Object.entries(OPTIONAL_FIELDS)) {
    if (m[name] !== undefined && !ok(m[name])) bad(`"${name}" must be ${expected}, got ${JSON.stringify(m[name])}`);
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
  if (m.classifier !== undefined) {
    if (m.formatVersion === 1) bad('"classifier" needs format version 2');
    const c = m.classifier;
    if (!isRecord(c) || !isClassifierFormat(c.format)) bad(`classifier.format must be one of ${CLASSIFIER_FORMATS.join(', ')}`);
    const cl = c as Record<string, unknown>;
    const bits = classifierWeightBits(cl.format as ClassifierFormat);
    if (bits !== undefined) {
      if (cl.file !== CLASSIFIER_FILE || !Object.hasOwn(m.files as object, CLASSIFIER_FILE)) bad(`classifier.file must be "${CLASSIFIER_FILE}", listed in "files"`);
      for (const k of ['inFeatures', 'outFeatures', 'aBits'] as const) if (!isNonNegInt(cl[k]) || cl[k] === 0) bad(`classifier.${k} must be a positive integer`);
      if (cl.wBits !== bits) bad(`classifier.wBits ${JSON.stringify(cl.wBits)} does not match format ${cl.format as string} (${bits} bits)`);
      if (!isActivationBits(cl.aBits)) bad(`classifier.aBits ${JSON.stringify(cl.aBits)}: must be ${ACTIVATION_BITS_TEXT}`);
    } else if (cl.file !== undefined) bad(`classifier.file is given for format ${cl.format as string}, which stores no tensors`);
  }
  if (lowRankDtypeTooEarly) bad(`"lowRankDtype" needs format version 3, this manifest is version ${m.formatVersion as number}`);
  return raw as ArtifactManifest;
}

