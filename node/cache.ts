// Result cache for long evaluations: one JSON file per (kind, settings) key, so an interrupted
// `aser eval …` resumes where it stopped and a repeated one is instant. The key is the sha256 of the
// canonical JSON of everything the result depends on (model hash, artifact hash, dataset, protocol,
// ctx, …); callers must put all of that in `settings`. Writes are atomic.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeBytesAtomic } from '../loaders/atomic.js';
import { repoRoot } from '../loaders/datasets.js';
import { readArtifactManifest, type ArtifactManifest } from '../loaders/artifact-manifest.js';

/** JSON with object keys sorted at every level: equal settings give equal keys. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * What an artifact computes: its tensors' checksums and every manifest field the runtime reads (aBits
 * lives in the manifest, not in the tensor files: W4A8 and W4A6 RTN share identical tensors).
 */
export function manifestDigest(m: ArtifactManifest): string {
  const { createdAt: _at, createdBy: _by, ...what } = m;
  return createHash('sha256').update(canonicalJson(what)).digest('hex').slice(0, 32);
}

/** The same digest, of the artifact in `dir` (a missing or invalid manifest is a typed LoadError). */
export function artifactDigest(dir: string): string {
  return manifestDigest(readArtifactManifest(dir));
}

export function cacheKey(kind: string, settings: unknown): string {
  return createHash('sha256').update(kind).update('\0').update(canonicalJson(settings)).digest('hex').slice(0, 32);
}

/** The cache directory: ASER_CACHE_DIR, else `.cache/eval` in the repository (git-ignored). */
export function defaultCacheDir(): string {
  return process.env.ASER_CACHE_DIR ? resolve(process.env.ASER_CACHE_DIR) : join(repoRoot(), '.cache', 'eval');
}

export interface ResultCache {
  readonly dir: string;
  /** False for a cache opened with enabled: false (stores nothing). */
  readonly enabled: boolean;
  get<T>(kind: string, settings: unknown): T | undefined;
  put<T>(kind: string, settings: unknown, value: T): T;
  /** Returns the cached value, or computes, stores and returns it. */
  getOrCompute<T>(kind: string, settings: unknown, compute: () => Promise<T>): Promise<T>;
}

/** `enabled: false` (e.g. `--no-cache`) computes everything and stores nothing. */
export function openResultCache(opts: { dir?: string; enabled?: boolean } = {}): ResultCache {
  const dir = opts.dir ?? defaultCacheDir();
  const enabled = opts.enabled ?? true;
  const file = (kind: string, settings: unknown) => join(dir, `${kind.replace(/[^A-Za-z0-9_.-]/g, '_')}-${cacheKey(kind, settings)}.json`);
  const cache: ResultCache = {
    dir,
    enabled,
    get<T>(kind: string, settings: unknown): T | undefined {
      if (!enabled) return undefined;
      const path = file(kind, settings);
      if (!existsSync(path)) return undefined;
      try {
        const entry = JSON.parse(readFileSync(path, 'utf8')) as { settings: unknown; value: T };
        // A hash collision or a hand-edited file must not return someone else's result.
        return canonicalJson(entry.settings) === canonicalJson(settings) ? entry.value : undefined;
      } catch {
        return undefined; // unreadable entry: recompute and overwrite
      }
    },
    put<T>(kind: string, settings: unknown, value: T): T {
      if (enabled) writeBytesAtomic(file(kind, settings), JSON.stringify({ kind, settings, value }));
      return value;
    },
    async getOrCompute<T>(kind: string, settings: unknown, compute: () => Promise<T>): Promise<T> {
      const hit = cache.get<T>(kind, settings);
      if (hit !== undefined) return hit;
      return cache.put(kind, settings, await compute());
    },
  };
  return cache;
}
