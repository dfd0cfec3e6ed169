// `aser eval kld` as a library call: the fp reference is made once per (model, dataset, protocol, ctx,
// windows) and kept in the result cache directory; each artifact's comparison is cached as JSON by the
// artifact's manifest hash on top of that.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openSession } from '../node/session.js';
import { modelHash } from '../node/artifact-cache.js';
import { loadDatasetText } from '../loaders/datasets.js';
import { artifactDigest, cacheKey, openResultCache, type ResultCache } from '../node/cache.js';
import { compareToReference, computeKldReference, summarizeKld, type KldReference, type KldSummary } from './kld.js';
import { readKldReference, writeKldReference } from './kld-store.js';
import type { PplProtocol } from './ppl.js';

export interface KldRunOptions {
  model: string;
  /** Quantized artifact directory; absent compares the fp model with itself (KLD 0). */
  artifact?: string;
  dataset: string;
  ctx: number;
  protocol: PplProtocol;
  maxWindows?: number;
  cache?: ResultCache;
  /** Called per window with a phase label ('fp reference' or 'compare'). */
  onWindow?: (phase: string, done: number, total: number) => void;
}

export interface KldRunResult extends KldSummary {
  model: string;
  artifact: string | null;
  method: string;
  dataset: string;
  protocol: PplProtocol;
  ctx: number;
  windows: number;
  seconds: number;
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

function referenceSettings(o: KldRunOptions, text: string) {
  return { modelHash: modelHash(o.model), dataset: o.dataset, textSha: sha256(text), protocol: o.protocol, ctx: o.ctx, maxWindows: o.maxWindows ?? null, fullVocabMax: 4096, topK: 64 };
}

/** The fp model's reference for these settings, from the cache directory or computed (and stored). */
export async function ensureKldReference(o: KldRunOptions): Promise<KldReference> {
  const cache = o.cache ?? openResultCache();
  const data = loadDatasetText(o.dataset, { protocol: o.protocol });
  const path = join(cache.dir, `kld-ref-${cacheKey('kld-ref', referenceSettings(o, data.text))}.bin`);
  if (cache.enabled && existsSync(path)) {
    try {
      return readKldReference(path);
    } catch {
      // damaged: compute it again and overwrite
    }
  }
  const session = await openSession({ model: o.model, maxSeqLen: o.ctx });
  try {
    const ids = session.tokenizer.encode(data.text, { bos: true });
    const ref = await computeKldReference(session.executor, ids, session.tokenizer.bosId, {
      ctx: o.ctx, protocol: o.protocol, maxWindows: o.maxWindows, onWindow: (d, n) => o.onWindow?.('fp reference', d, n),
    });
    if (cache.enabled) writeKldReference(path, ref);
    return ref;
  } finally {
    session.close();
  }
}

/** KL divergence (and Δppl, top-token agreement) of an artifact, or of the fp model, to the fp model. */
export async function runKld(o: KldRunOptions): Promise<KldRunResult> {
  const cache = o.cache ?? openResultCache();
  const data = loadDatasetText(o.dataset, { protocol: o.protocol });
  const settings = { ...referenceSettings(o, data.text), artifactHash: o.artifact ? artifactDigest(o.artifact) : null };
  return cache.getOrCompute('kld', settings, async () => {
    const t0 = performance.now();
    const ref = await ensureKldReference({ ...o, cache });
    const session = await openSession({ model: o.model, artifact: o.artifact, maxSeqLen: o.ctx });
    try {
      const tokens = await compareToReference(session.executor, ref, (d, n) => o.onWindow?.('compare', d, n));
      return {
        model: session.source.id,
        artifact: o.artifact ?? null,
        method: session.artifact ? `${session.artifact.manifest.method} W${session.artifact.manifest.wBits}A${session.artifact.manifest.aBits}` : 'fp32',
        dataset: o.dataset, protocol: o.protocol, ctx: o.ctx, windows: ref.windows,
        ...summarizeKld(tokens),
        seconds: (performance.now() - t0) / 1000,
      };
    } finally {
      session.close();
    }
  });
}

const f = (x: number, d = 4) => x.toFixed(d);

export function formatKldMarkdown(rows: KldRunResult[]): string {
  const lines = [
    '| model | ppl | Δppl | ln(ppl/ppl_fp) | mean KLD | median | p90 | p95 | p99 | max | same top % | tokens |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.method} | ${f(r.ppl)} | ${f(r.deltaPpl)} ± ${f(r.deltaPplStderr)} | ${f(r.lnPplRatio, 5)} ± ${f(r.lnPplRatioStderr, 5)} | ${f(r.kldMean, 5)} ± ${f(r.kldStderr, 5)} | ${f(r.kldMedian, 5)} | ${f(r.kldP90, 5)} | ${f(r.kldP95, 5)} | ${f(r.kldP99, 5)} | ${f(r.kldMax, 5)} | ${r.sameTopPct.toFixed(2)} ± ${r.sameTopStderrPct.toFixed(2)} | ${r.tokens} |`);
  }
  return lines.join('\n');
}
