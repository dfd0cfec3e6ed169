// Quantized artifacts made on demand and kept: evaluations ask for (model, method, bits, rank/α,
// calibration) and get a directory, quantizing only when no valid artifact with those settings exists.
// The key holds the model's weight hash, so a changed model never reuses a stale artifact. A cached
// artifact whose manifest is unreadable is quantized again; damaged tensor files are refused by
// readArtifact when the artifact is used.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readArtifactManifest, type ArtifactManifest } from '../loaders/artifact-manifest.js';
import { resolveModel } from '../loaders/registry.js';
import { cacheKey } from './cache.js';
import { repoRoot } from '../loaders/datasets.js';
import { quantizeToArtifact, requestedLowRankDtype, requestedSmoothing, type QuantizeRequest, type QuantizeToArtifactOptions } from './quantize.js';
import { modelIdentity } from './session.js';

export type ArtifactRequest = Omit<QuantizeRequest, 'out'>;

/** ASER_ARTIFACT_CACHE, else `.cache/artifacts` in the repository (git-ignored). */
export function defaultArtifactCacheDir(): string {
  return process.env.ASER_ARTIFACT_CACHE ? resolve(process.env.ASER_ARTIFACT_CACHE) : join(repoRoot(), '.cache', 'artifacts');
}

/** The weight hash of a model name or path (what artifacts record as their source). */
export function modelHash(model: string): string {
  const resolved = resolveModel(model);
  try {
    return modelIdentity(resolved.source.id, resolved.path).sha256;
  } finally {
    resolved.source.close();
  }
}

export function artifactKey(req: ArtifactRequest, hash = modelHash(req.model)): string {
  const { model: _model, ...settings } = req;
  // The smoothing scope is always part of the key, default included: a format-1 artifact cached before
  // the default became 'shared-input' has a key without it, so it is never taken for a shared one.
  // int8 L_A/L_B are in the key by value; f16 (every artifact cached before the choice existed) keeps
  // the key it had.
  const { lowRankDtype: _dtype, ...rest } = settings;
  const lowRank = requestedLowRankDtype(req) === 'f16' ? {} : { lowRankDtype: requestedLowRankDtype(req) };
  return `${req.method}-w${req.wbits}a${req.abits}-${cacheKey('artifact', { modelHash: hash, ...rest, smoothing: requestedSmoothing(req), ...lowRank })}`;
}

/**
 * Returns the directory of an artifact made with exactly these settings, quantizing it first when
 * the cache has none. `fresh` reports whether it was just made. `stats` (calibration statistics for
 * the same calibration settings, or a function making them) is used only when quantizing.
 */
export async function ensureArtifact(
  req: ArtifactRequest,
  opts: { cacheDir?: string; modelHash?: string } & QuantizeToArtifactOptions = {},
): Promise<{ dir: string; manifest: ArtifactManifest; fresh: boolean }> {
  const dir = join(opts.cacheDir ?? defaultArtifactCacheDir(), artifactKey(req, opts.modelHash));
  if (existsSync(dir)) {
    try {
      // Only the manifest here: the runtime's readArtifact checks every tensor's sha256 before use.
      const manifest = readArtifactManifest(dir);
      if (manifest.smoothing === requestedSmoothing(req) && manifest.lowRankDtype === requestedLowRankDtype(req)) return { dir, manifest, fresh: false };
    } catch {
      // unreadable: fall through and quantize again (the write replaces it atomically); so does one
      // whose smoothing scope or L_A/L_B dtype is not the one asked for
    }
  }
  const { manifest } = await quantizeToArtifact({ ...req, out: dir }, { stats: opts.stats });
  return { dir, manifest, fresh: true };
}
