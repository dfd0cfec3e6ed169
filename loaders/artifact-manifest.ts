// Quantized-model artifacts on disk: hashing model and tensor files, reading manifest.json (the
// manifest's types and checks: loaders/artifact-schema.ts, re-exported here).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ArtifactManifest, ArtifactSource } from './artifact-schema.js';
import { MANIFEST_FILE, validateManifest } from './artifact-schema.js';
import { LoadError, NotFoundError } from './errors.js';
import { readJsonFile } from './json-file.js';

export * from './artifact-schema.js';

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

/** Reads and validates manifest.json only (no tensor file is opened). */
export function readArtifactManifest(dir: string): ArtifactManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(dir)) throw new NotFoundError(dir, 'artifact directory does not exist');
  if (!existsSync(file)) throw new NotFoundError(file, `not an ASER artifact: ${MANIFEST_FILE} is missing`);
  return validateManifest(file, readJsonFile(file, 'artifact manifest'));
}
