// Reading quantized-model artifacts from a directory (format: loaders/artifact-schema.ts,
// docs/artifact-format.md): the version and every checksum are checked before anything is returned.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { QuantizedLinear } from '../core/quantized.js';
import { FormatError, NotFoundError } from './errors.js';
import { openSafetensors } from './safetensors.js';
import { MANIFEST_FILE, readArtifactManifest, sha256File, type ArtifactManifest } from './artifact-manifest.js';
import { ARTIFACT_TENSOR_DTYPES, artifactReader, checkArtifactFileSync, checkArtifactModel, type ArtifactReader } from './artifact-reader.js';

export { artifactClassifier, type ArtifactReader } from './artifact-reader.js';

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

/**
 * Reads an artifact: the manifest (format and version), the model hash when asked, then every tensor
 * file's size and sha256 against the manifest, then the tensors, cross-checked with the manifest's
 * shapes. Any mismatch is a LoadError naming the file and the reason; nothing partial is returned.
 */
export function readArtifact(dir: string, options: ReadArtifactOptions = {}): Artifact {
  const reader = openArtifact(dir, options);
  const layers = new Map<string, QuantizedLinear>();
  for (const name of Object.keys(reader.manifest.layers)) layers.set(name, reader.linear(name)!);
  return { manifest: reader.manifest, layers, classifier: reader.classifier() };
}

/**
 * Checks the manifest, the model hash when asked, and every tensor file's size and sha256 (streamed),
 * then returns a reader that loads a file only when one of its linears is asked for: a quantized
 * model streams onto the GPU layer by layer without a host copy of the whole artifact.
 */
export function openArtifact(dir: string, options: ReadArtifactOptions = {}): ArtifactReader {
  const manifest = readArtifactManifest(dir);
  checkArtifactModel(join(dir, MANIFEST_FILE), manifest, options.expectModelHash);
  for (const [name, f] of Object.entries(manifest.files)) {
    const path = join(dir, name);
    if (!existsSync(path)) throw new NotFoundError(path, `tensor file listed in ${MANIFEST_FILE} is missing (incomplete or damaged artifact)`);
    const st = statSync(path);
    if (!st.isFile()) throw new FormatError(path, `tensor file listed in ${MANIFEST_FILE} is not a regular file`);
    checkArtifactFileSync(path, f, st.size, () => sha256File(path));
  }
  return artifactReader(manifest, (file) => openSafetensors(join(dir, file), ARTIFACT_TENSOR_DTYPES));
}
