// The method table (paper Tables 2–3 on our model): perplexity of fp32 and every quantization method at
// each activation width on each dataset, with each method's side-path rank and FLOPs overhead.
//
//   1. every artifact is made (or found) through node/artifact-cache.ts; calibration runs at most once
//      per (model, calibration settings) in this process, because statistics depend on neither the
//      method nor the bit widths, and not at all when every artifact is cached;
//   2. every (method, abits, dataset) perplexity comes from node/cache.ts, keyed by model hash, the
//      artifact's tensor checksums and the evaluation settings, so a rerun is instant and an
//      interrupted run resumes at the first missing cell. fp32 is evaluated once per dataset and listed
//      under every activation width.
//
// Rank budget (`rankBudget`, default 'side'): with a fixed rank R every low-rank method gets the same
// side-path width R: LoRC, L2QER and ASER w/o AS reconstruct at rank R, ASER reconstructs at R − f and
// carries its f outlier columns in the remaining f (docs/quantization.md). 'reconstruction' gives every
// method reconstruction rank R, ASER's outlier columns on top. With α, each method's rule picks its own
// ranks. Either way each cell reports the mean side-path width and +FLOPs actually used.
//
// Smoothing scope (`smoothing`, default ['shared-input']): the first scope is every method's; each
// further one adds rows for the methods it changes (SCOPE_SENSITIVE_METHODS: SmoothQuant, SmoothQuant+,
// ASER), e.g. ['shared-input', 'per-linear'] compares one smoothing vector per shared input with one
// per linear.
import { ensureArtifact, modelHash, type ArtifactRequest } from '../node/artifact-cache.js';
import { calibrateModel, sidePathFlopsOverhead, type CalibrationRequest } from '../node/quantize.js';
import { readArtifact } from '../loaders/artifact.js';
import type { ArtifactManifest } from '../loaders/artifact-manifest.js';
import { openModelSession, type ModelSession } from '../node/session.js';
import { resolveModel } from '../loaders/registry.js';
import type { CalibrationStats } from '../quant/calibrate.js';
import { LOW_RANK_METHODS, QUANT_METHODS, SCOPE_SENSITIVE_METHODS, type OutlierColumns, type QuantMethod } from '../quant/methods.js';
import { canonicalJson, manifestDigest, openResultCache } from '../node/cache.js';
import { loadDatasetText } from '../loaders/datasets.js';
import { perplexityOfTokens, type PplProtocol } from './ppl.js';
import { PplTableError } from './errors.js';
import type { RankBudget } from '../quant/budget.js';
import {
  ACTIVATION_BITS_TEXT, DEFAULT_SMOOTHING_SCOPE, SMOOTHING_SCOPES, isActivationBits, isSmoothingScope, type SmoothingScope,
} from '../core/quantized.js';

export type TableMethod = 'fp' | QuantMethod;
export const TABLE_METHODS: readonly TableMethod[] = ['fp', ...QUANT_METHODS];

/** Names as the paper's tables print them. */
export const METHOD_LABELS: Record<TableMethod, string> = {
  fp: 'fp32', rtn: 'RTN', smoothquant: 'SmoothQuant', 'smoothquant-plus': 'SmoothQuant+', 'llm-int4': 'LLM.int4()',
  lorc: 'LoRC', l2qer: 'L2QER', 'aser-noas': 'ASER w/o AS', aser: 'ASER',
};

export interface PplTableOptions {
  model: string;
  methods: string[];
  datasets: string[];
  abits: number[];
  wbits?: number;
  /** Side-path rank budget (default 8 when no alpha is given). */
  rank?: number;
  alpha?: number;
  /**
   * Instead of rank/alpha: each low-rank method's ranks allocated across the linears within this
   * side-path budget (quant/budget.ts; outlier columns included).
   */
  budget?: RankBudget;
  /** How a fixed rank is shared with ASER's outlier columns (see the header). Default 'side'. */
  rankBudget?: 'side' | 'reconstruction';
  /** ASER's outlier channel count f (default 'auto': docs/quantization.md "f versus width"). */
  outliers?: number | 'auto';
  /** ASER's outlier columns: 'exact' one-hot side-path columns (default) or 'reconstructed' by the rank-r path. */
  outlierColumns?: OutlierColumns;
  /** Smoothing scopes: the first for every method, each further one adds rows for SCOPE_SENSITIVE_METHODS (see the header). */
  smoothing?: SmoothingScope[];
  protocol?: PplProtocol;
  ctx?: number;
  /** Windows scored per dataset (default 64). */
  maxWindows?: number;
  calib?: string;
  calibSamples?: number;
  calibLen?: number;
  seed?: number;
  /** false: recompute every perplexity and store nothing (artifacts are still cached). Default true. */
  cache?: boolean;
  /** Result cache directory (default node/cache.ts's). */
  cacheDir?: string;
  /** Artifact cache directory (default node/artifact-cache.ts's). */
  artifactCacheDir?: string;
  onProgress?: (msg: string) => void;
}

export interface PplCell {
  method: TableMethod;
  label: string;
  /** 32 for fp. */
  wbits: number;
  /** The activation width this row is listed under (fp: the same fp32 result under every width). */
  abits: number;
  dataset: string;
  protocol: PplProtocol;
  ctx: number;
  windows: number;
  /** Tokens scored. */
  tokens: number;
  nll: number;
  ppl: number;
  /** Mean over the block linears of the side path's L_A columns (reconstruction rank + outlier columns). */
  meanSideRank: number;
  /** Mean error-reconstruction rank alone. */
  meanRank: number;
  /** Side-path multiply-adds over the W4 product's, summed over all block linears, in %. */
  flopsPct: number;
  /** The artifact's smoothing scope (absent for fp). */
  smoothing?: SmoothingScope;
  /** Artifact directory (absent for fp). */
  artifact?: string;
  /** Seconds the perplexity took when it was computed (a cached cell keeps its original time). */
  seconds: number;
  /** Whether this run took the perplexity from the result cache. */
  cached: boolean;
}

export interface PplTable {
  model: string;
  modelHash: string;
  methods: TableMethod[];
  datasets: string[];
  abits: number[];
  settings: {
    wbits: number; rank: number | null; alpha: number | null; budget?: RankBudget; rankBudget: 'side' | 'reconstruction'; outliers: number | 'auto'; outlierColumns?: OutlierColumns;
    smoothing: SmoothingScope[];
    protocol: PplProtocol; ctx: number; maxWindows: number;
    calibration: { dataset: string; samples: number; seqLen: number; seed: number };
  };
  cells: PplCell[];
  /** One sentence naming what the numbers are over (for the markdown caption and reports). */
  caption: string;
  createdAt: string;
  seconds: number;
}

// Calibration statistics per (model hash, calibration settings), shared by every table and sweep in
// this process.
const calibrations = new Map<string, Promise<CalibrationStats>>();
export function calibrationStatsFor(hash: string, req: CalibrationRequest): () => Promise<CalibrationStats> {
  const key = canonicalJson({ hash, calib: req.calib, samples: req.calibSamples, len: req.calibLen, seed: req.seed });
  return () => {
    let p = calibrations.get(key);
    if (!p) {
      p = calibrateModel(req);
      calibrations.set(key, p);
      p.catch(() => calibrations.delete(key));
    }
    return p;
  };
}

function rankSummary(m: ArtifactManifest | undefined): { meanSideRank: number; meanRank: number; flopsPct: number } {
  if (!m) return { meanSideRank: 0, meanRank: 0, flopsPct: 0 };
  const layers = Object.values(m.layers);
  const mean = (f: (l: (typeof layers)[number]) => number) => layers.reduce((s, l) => s + f(l), 0) / Math.max(1, layers.length);
  return { meanSideRank: mean((l) => l.rank), meanRank: mean((l) => l.errorRank), flopsPct: 100 * sidePathFlopsOverhead(m) };
}

function checkOptions(o: PplTableOptions): TableMethod[] {
  if (o.methods.length === 0) throw new PplTableError('no methods given');
  for (const m of o.methods) {
    if (!(TABLE_METHODS as readonly string[]).includes(m)) throw new PplTableError(`unknown method "${m}" (one of ${TABLE_METHODS.join(', ')})`);
  }
  if (o.datasets.length === 0) throw new PplTableError('no datasets given');
  if (o.abits.length === 0) throw new PplTableError('no activation widths given');
  for (const b of o.abits) if (!isActivationBits(b)) throw new PplTableError(`activation bits must be ${ACTIVATION_BITS_TEXT}, got ${b}`);
  if (o.rank !== undefined && o.alpha !== undefined) throw new PplTableError('give rank or alpha, not both');
  if (o.budget !== undefined && (o.rank !== undefined || o.alpha !== undefined)) throw new PplTableError('a budget chooses the ranks: give it without rank or alpha');
  if (o.budget !== undefined && !(Number.isFinite(o.budget.percent) && o.budget.percent >= 0)) throw new PplTableError(`budget must be a non-negative percentage, got ${o.budget.percent}`);
  if (o.rank !== undefined && !(Number.isInteger(o.rank) && o.rank >= 0)) throw new PplTableError(`rank must be a non-negative integer, got ${o.rank}`);
  if (o.alpha !== undefined && !(o.alpha > 0 && o.alpha <= 1)) throw new PplTableError(`alpha must lie in (0, 1], got ${o.alpha}`);
  if (o.maxWindows !== undefined && !(Number.isInteger(o.maxWindows) && o.maxWindows >= 1)) throw new PplTableError(`maxWindows must be a positive integer, got ${o.maxWindows}`);
  if (o.smoothing !== undefined) {
    if (o.smoothing.length === 0) throw new PplTableError('no smoothing scope given');
    for (const s of o.smoothing) if (!isSmoothingScope(s)) throw new PplTableError(`smoothing must be ${SMOOTHING_SCOPES.join(' or ')}, got ${JSON.stringify(s)}`);
  }
  return [...new Set(o.methods)] as TableMethod[];
}

/** The methods listed under a scope: all of them under the first, the scope-sensitive ones under the others. */
function methodsUnder(methods: readonly TableMethod[], scopes: readonly SmoothingScope[], scope: SmoothingScope): TableMethod[] {
  return scope === scopes[0] ? [...methods] : methods.filter((m) => (SCOPE_SENSITIVE_METHODS as readonly string[]).includes(m));
}

/** A row's label: the paper's name, with the smoothing scope where the table compares scopes and it matters. */
export function rowLabel(method: TableMethod, scope: SmoothingScope | undefined, scopes: readonly SmoothingScope[]): string {
  const sensitive = (SCOPE_SENSITIVE_METHODS as readonly string[]).includes(method);
  return scopes.length > 1 && sensitive && scope ? `${METHOD_LABELS[method]} (${scope})` : METHOD_LABELS[method];
}

export async function runPplTable(opts: PplTableOptions): Promise<PplTable> {
  const started = performance.now();
  const methods = checkOptions(opts);
  const say = opts.onProgress ?? (() => {});
  const wbits = opts.wbits ?? 4;
  const alpha = opts.alpha;
  const budget = opts.budget;
  const rank = alpha === undefined && budget === undefined ? (opts.rank ?? 8) : undefined;
  const rankBudget = opts.rankBudget ?? 'side';
  const protocol = opts.protocol ?? 'gptq';
  const ctx = opts.ctx ?? 256;
  const maxWindows = opts.maxWindows ?? 64;
  const calibration = { calib: opts.calib ?? 'tinystories', calibSamples: opts.calibSamples ?? 64, calibLen: opts.calibLen ?? 256, seed: opts.seed ?? 0 };
  const scopes = [...new Set(opts.smoothing ?? [DEFAULT_SMOOTHING_SCOPE])];
  const hash = modelHash(opts.model);
  const stats = calibrationStatsFor(hash, { model: opts.model, ...calibration });
  const results = openResultCache({ dir: opts.cacheDir, enabled: opts.cache ?? true });

  // 1. artifacts: every (method, abits, smoothing scope), quantized only where the artifact cache has none
  const artifacts = new Map<string, { dir: string; manifest: ArtifactManifest }>();
  for (const abits of opts.abits) {
    for (const scope of scopes) {
      for (const method of methodsUnder(methods, scopes, scope)) {
        if (method === 'fp') continue;
        const lowRank = LOW_RANK_METHODS.includes(method);
        const req: ArtifactRequest = {
          model: opts.model, method, wbits, abits, ...calibration,
          ...(lowRank ? (budget !== undefined ? { budget } : alpha !== undefined ? { alpha } : { rank }) : {}),
          ...(lowRank && rank !== undefined && rankBudget === 'side' ? { rankCountsOutliers: true } : {}),
          ...(method === 'aser' && opts.outliers !== undefined ? { outliers: opts.outliers } : {}),
          ...(method === 'aser' && opts.outlierColumns !== undefined && opts.outlierColumns !== 'exact' ? { outlierColumns: opts.outlierColumns } : {}),
          smoothing: scope,
        };
        const a = await ensureArtifact(req, { cacheDir: opts.artifactCacheDir, modelHash: hash, stats });
        say(`${a.fresh ? 'quantized' : 'cached artifact'} ${rowLabel(method, scope, scopes)} W${wbits}A${abits}: ${a.dir}`);
        artifacts.set(`${method}/${abits}/${scope}`, a);
      }
    }
  }

  // 2. perplexities: one GPU device and pipeline cache for every cell; texts tokenized on first need
  const resolved = resolveModel(opts.model);
  const { source, tokenizer } = resolved;
  if (ctx > source.config.maxSeqLen) {
    source.close();
    throw new PplTableError(`ctx ${ctx} is longer than the model's context of ${source.config.maxSeqLen} tokens`);
  }
  let session: ModelSession | undefined; // opened on the first cell not in the result cache
  const tokens = new Map<string, number[]>();
  const idsOf = (dataset: string) => {
    let ids = tokens.get(dataset);
    if (!ids) {
      ids = tokenizer.encode(loadDatasetText(dataset, { protocol }).text, { bos: true });
      tokens.set(dataset, ids);
    }
    return ids;
  };
  const fpResults = new Map<string, { r: Awaited<ReturnType<typeof perplexityOfTokens>>; cached: boolean }>();
  const cells: PplCell[] = [];
  try {
    const evaluate = async (method: TableMethod, abits: number, dataset: string, scope: SmoothingScope) => {
      const a = method === 'fp' ? undefined : artifacts.get(`${method}/${abits}/${scope}`)!;
      const settings = {
        modelHash: hash, method, artifact: a ? manifestDigest(a.manifest) : null,
        dataset, protocol, ctx, maxWindows,
      };
      let cached = true;
      const r = await results.getOrCompute('ppl', settings, async () => {
        cached = false;
        session ??= await openModelSession({ model: resolved });
        const ids = idsOf(dataset);
        const artifact = a ? readArtifact(a.dir, { expectModelHash: hash }) : undefined;
        const executor = await session.createExecutor({ dtype: 'f32', maxSeqLen: ctx, linears: artifact ? (module) => artifact.layers.get(module) : undefined });
        try {
          return await perplexityOfTokens(executor, ids, tokenizer.bosId, { ctx, protocol, maxWindows });
        } finally {
          executor.destroy();
        }
      });
      return { r, cached };
    };
    for (const abits of opts.abits) {
      for (const scope of scopes) {
        for (const method of methodsUnder(methods, scopes, scope)) {
          for (const dataset of opts.datasets) {
            let out: { r: Awaited<ReturnType<typeof perplexityOfTokens>>; cached: boolean };
            if (method === 'fp') {
              out = fpResults.get(dataset) ?? (await evaluate('fp', abits, dataset, scope));
              fpResults.set(dataset, out);
            } else {
              out = await evaluate(method, abits, dataset, scope);
            }
            const a = artifacts.get(`${method}/${abits}/${scope}`);
            const cell: PplCell = {
              method, label: rowLabel(method, scope, scopes), wbits: method === 'fp' ? 32 : wbits, abits, dataset, protocol, ctx,
              windows: out.r.windows, tokens: out.r.tokens, nll: out.r.nll, ppl: out.r.ppl,
              ...rankSummary(a?.manifest), seconds: out.r.seconds, cached: out.cached,
              ...(a ? { smoothing: a.manifest.smoothing, artifact: a.dir } : {}),
            };
            if (!Number.isFinite(cell.ppl)) throw new PplTableError(`${cell.label} W${wbits}A${abits} on ${dataset}: perplexity is ${cell.ppl}`);
            cells.push(cell);
            say(`${cell.label.padEnd(12)} ${(method === 'fp' ? '' : `W${wbits}A${abits}`).padEnd(5)} ${dataset.padEnd(12)} ppl ${cell.ppl.toFixed(4)}${out.cached ? ' (cached)' : ` (${cell.seconds.toFixed(1)} s)`}`);
          }
        }
      }
    }
  } finally {
    session?.close(); // the device; the model is this function's
    source.close();
  }

  const first = cells[0]!;
  const sizing = budget !== undefined
    ? `ranks allocated across the linears for +${budget.percent} % ${budget.unit === 'flops' ? 'FLOPs' : 'bytes'} (outlier columns included)`
    : rank === undefined
    ? `rank rule α = ${alpha} per layer`
    : rankBudget === 'side'
      ? `side-path rank budget ${rank} per linear for every low-rank method (ASER: ${rank} − f reconstruction + f outlier columns)`
      : `reconstruction rank ${rank} per linear (ASER's f outlier columns on top)`;
  const caption =
    `${source.id}, W${wbits} per-channel weights and per-token activations; perplexity (${protocol} protocol) over the first ` +
    `${first.windows} windows of ${ctx} tokens (${first.tokens} scored tokens) of each dataset; calibration ${calibration.calib} ` +
    `${calibration.calibSamples} × ${calibration.calibLen} tokens, seed ${calibration.seed}; ${sizing}` +
    `${opts.outliers !== undefined && opts.outliers !== 'auto' ? `; ASER f = ${opts.outliers} outlier channels` : ''}` +
    `${opts.outlierColumns === 'reconstructed' ? '; ASER outlier columns kept in E and reconstructed by the rank-r path (no one-hot columns)' : ''}` +
    `; smoothing ${scopes.length > 1 ? `${scopes.join(' vs ')} (rows marked)` : scopes[0]}` +
    `${scopes.includes('shared-input') ? ' (shared-input: one smoothing vector for q|k|v and one for gate|up, from their stacked weights)' : ''}.`;
  return {
    model: opts.model, modelHash: hash, methods, datasets: [...opts.datasets], abits: [...opts.abits],
    settings: {
      wbits, rank: rank ?? null, alpha: alpha ?? null, ...(budget ? { budget } : {}), rankBudget, outliers: opts.outliers ?? 'auto', outlierColumns: opts.outlierColumns ?? 'exact', smoothing: scopes, protocol, ctx, maxWindows,
      calibration: { dataset: calibration.calib, samples: calibration.calibSamples, seqLen: calibration.calibLen, seed: calibration.seed },
    },
    cells, caption, createdAt: new Date().toISOString(), seconds: (performance.now() - started) / 1000,
  };
}

/** The cell for (method, abits, dataset) under the table's first smoothing scope (or `scope`), or undefined. */
export function pplCell(t: PplTable, method: TableMethod, abits: number, dataset: string, scope?: SmoothingScope): PplCell | undefined {
  const want = scope ?? t.settings.smoothing?.[0];
  return t.cells.find((c) => c.method === method && c.abits === abits && c.dataset === dataset && (c.smoothing === undefined || want === undefined || c.smoothing === want));
}

/** The table's rows in order: every method under the first scope, then the scope-sensitive ones under each further scope. */
export function pplTableRows(t: PplTable): Array<{ method: TableMethod; scope?: SmoothingScope; label: string }> {
  const scopes = t.settings.smoothing ?? [];
  if (scopes.length === 0) return t.methods.map((method) => ({ method, label: METHOD_LABELS[method] }));
  return scopes.flatMap((scope) => methodsUnder(t.methods, scopes, scope).map((method) => ({ method, scope, label: rowLabel(method, scope, scopes) })));
}

/**
 * One markdown table: a row per method (and smoothing scope), its side-path width (rank + outlier columns) and +FLOPs (taken at the
 * first activation width; they do not depend on it), then a perplexity column per (activation width,
 * dataset); the caption below.
 */
export function formatPplTableMarkdown(t: PplTable): string {
  const cols = t.abits.flatMap((b) => t.datasets.map((d) => ({ b, d })));
  const head = ['Method', 'side width', '+FLOPs %', ...cols.map(({ b, d }) => `W${t.settings.wbits}A${b} ${d}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const { method: m, scope, label } of pplTableRows(t)) {
    const any = t.cells.find((c) => c.method === m && (scope === undefined || c.smoothing === undefined || c.smoothing === scope));
    if (!any) continue;
    const ppl = cols.map(({ b, d }) => pplCell(t, m, b, d, scope)?.ppl.toFixed(3) ?? '–');
    lines.push(`| ${[label, any.meanSideRank.toFixed(2), any.flopsPct.toFixed(2), ...ppl].join(' | ')} |`);
  }
  return `${lines.join('\n')}\n\n${t.caption}\n`;
}

const CSV_COLUMNS = ['method', 'label', 'smoothing', 'wbits', 'abits', 'dataset', 'protocol', 'ctx', 'windows', 'tokens', 'ppl', 'nll', 'meanSideRank', 'meanRank', 'flopsPct'] as const;

export function formatPplTableCsv(t: PplTable): string {
  const quote = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [CSV_COLUMNS.join(','), ...t.cells.map((c) => CSV_COLUMNS.map((k) => quote(c[k] ?? '')).join(','))].join('\n') + '\n';
}
