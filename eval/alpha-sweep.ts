// The α sweep (paper Table 4 on our model): for each rank threshold α, the ranks the rule of Eq. 9
// picks (mean over block linears), the side path's +FLOPs and the perplexity on each dataset. Built on
// runPplTable, so calibration happens once and every artifact and perplexity is cached.
import { lineChart, type ChartSpec } from './plot.js';
import {
  METHOD_LABELS, pplCell, runPplTable, type PplTable, type PplTableOptions, type TableMethod,
} from './ppl-table.js';
import { LOW_RANK_METHODS, type QuantMethod } from '../quant/methods.js';
import { PplTableError } from './errors.js';

export interface AlphaSweepOptions extends Omit<PplTableOptions, 'methods' | 'abits' | 'rank' | 'alpha' | 'rankBudget'> {
  /** A low-rank method (default aser). */
  method?: string;
  alphas: number[];
  /** Activation bits (default 8). */
  abits?: number;
  /**
   * Also the budget curve: uniform reconstruction ranks (ASER's outlier columns on top, as `quantize
   * --rank`), and the budget allocator (quant/budget.ts) at the +FLOPs of every α row and every uniform
   * rank, so the three rank rules can be compared at equal cost.
   */
  curve?: { uniformRanks: number[] };
}

export type RankRule = 'α rule' | 'uniform rank' | 'allocator';

/** One point of the budget curve: a rank rule at one setting, what it spends and its perplexity. */
export interface CurvePoint {
  rule: RankRule;
  /** "α = 0.05", "r = 3", "+10.20 % (α = 0.05)": what was asked. */
  setting: string;
  flopsPct: number;
  meanSideRank: number;
  ppl: Record<string, number>;
}

export interface AlphaSweepRow {
  alpha: number;
  meanRank: number;
  meanSideRank: number;
  flopsPct: number;
  /** Keyed by dataset. */
  ppl: Record<string, number>;
}

export interface AlphaSweep {
  model: string;
  method: QuantMethod;
  wbits: number;
  abits: number;
  datasets: string[];
  /** fp32 perplexity per dataset, for reference. */
  fp: Record<string, number>;
  rows: AlphaSweepRow[];
  /** With `curve`: every rule's points, in the order run. */
  curve?: CurvePoint[];
  caption: string;
  settings: PplTable['settings'];
  seconds: number;
}

export async function runAlphaSweep(opts: AlphaSweepOptions): Promise<AlphaSweep> {
  const started = performance.now();
  const method = (opts.method ?? 'aser') as QuantMethod;
  if (!LOW_RANK_METHODS.includes(method)) throw new PplTableError(`the α sweep needs a low-rank method (${LOW_RANK_METHODS.join(', ')}), got "${method}"`);
  if (opts.alphas.length === 0) throw new PplTableError('no α given');
  const abits = opts.abits ?? 8;
  const base = { ...opts, abits: [abits] };
  const fpTable = await runPplTable({ ...base, methods: ['fp'] });
  const fp = Object.fromEntries(opts.datasets.map((d) => [d, pplCell(fpTable, 'fp', abits, d)!.ppl]));
  const rows: AlphaSweepRow[] = [];
  let last: PplTable = fpTable;
  for (const alpha of opts.alphas) {
    last = await runPplTable({ ...base, methods: [method], alpha });
    const cells = opts.datasets.map((d) => pplCell(last, method, abits, d)!);
    rows.push({
      alpha, meanRank: cells[0]!.meanRank, meanSideRank: cells[0]!.meanSideRank, flopsPct: cells[0]!.flopsPct,
      ppl: Object.fromEntries(cells.map((c) => [c.dataset, c.ppl])),
    });
  }
  let curve: CurvePoint[] | undefined;
  if (opts.curve) {
    const pointOf = (t: PplTable, rule: RankRule, setting: string): CurvePoint => {
      const cells = opts.datasets.map((d) => pplCell(t, method, abits, d)!);
      return { rule, setting, flopsPct: cells[0]!.flopsPct, meanSideRank: cells[0]!.meanSideRank, ppl: Object.fromEntries(cells.map((c) => [c.dataset, c.ppl])) };
    };
    curve = rows.map((r) => ({ rule: 'α rule' as const, setting: `α = ${r.alpha}`, flopsPct: r.flopsPct, meanSideRank: r.meanSideRank, ppl: r.ppl }));
    for (const rank of opts.curve.uniformRanks) {
      if (!(Number.isInteger(rank) && rank >= 0)) throw new PplTableError(`uniform rank must be a non-negative integer, got ${rank}`);
      curve.push(pointOf(await runPplTable({ ...base, methods: [method], rank, rankBudget: 'reconstruction' }), 'uniform rank', `r = ${rank}`));
    }
    // the allocator at the cost of every point so far
    for (const p of [...curve]) {
      const t = await runPplTable({ ...base, methods: [method], budget: { unit: 'flops', percent: p.flopsPct } });
      curve.push(pointOf(t, 'allocator', `+${p.flopsPct.toFixed(2)} % (${p.setting})`));
    }
  }
  const caption = last.caption.replace(/; rank rule α = \S+ per layer/, '; rank rule of Eq. 9 per layer at each α');
  return {
    model: opts.model, method, wbits: last.settings.wbits, abits, datasets: [...opts.datasets], fp, rows, ...(curve ? { curve } : {}), caption,
    settings: { ...last.settings, alpha: null }, seconds: (performance.now() - started) / 1000,
  };
}

export function formatAlphaSweepMarkdown(s: AlphaSweep): string {
  const label = METHOD_LABELS[s.method as TableMethod];
  const head = ['α', 'mean rank r', 'mean side width', '+FLOPs %', ...s.datasets.map((d) => `${d} ppl`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---:').join('|')}|`];
  lines.push(`| fp32 | – | – | – | ${s.datasets.map((d) => s.fp[d]!.toFixed(3)).join(' | ')} |`);
  for (const r of s.rows) {
    lines.push(`| ${[r.alpha, r.meanRank.toFixed(2), r.meanSideRank.toFixed(2), r.flopsPct.toFixed(2), ...s.datasets.map((d) => r.ppl[d]!.toFixed(3))].join(' | ')} |`);
  }
  return `${label} W${s.wbits}A${s.abits}, α sweep.\n\n${lines.join('\n')}\n\n${s.caption}\n`;
}

/** Perplexity increase over fp32 (%) against α, one line per dataset (the texts' ppl differ 30×, so relative). */
export function alphaSweepChart(s: AlphaSweep): ChartSpec {
  const rows = s.rows.flatMap((r) => s.datasets.map((d) => ({ alpha: r.alpha, 'ppl over fp32 (%)': 100 * (r.ppl[d]! / s.fp[d]! - 1), dataset: d })));
  return lineChart(rows, { title: `${METHOD_LABELS[s.method as TableMethod]} W${s.wbits}A${s.abits}: perplexity increase over fp32 vs α (${s.model})`, x: 'alpha', y: 'ppl over fp32 (%)', series: 'dataset', points: true });
}

/** The budget curve as a table: every point, sorted by +FLOPs within each rule. */
export function formatBudgetCurveMarkdown(s: AlphaSweep): string {
  if (!s.curve) return '';
  const head = ['rule', 'setting', '+FLOPs %', 'mean side rank', ...s.datasets.map((d) => `${d} ppl`)];
  const lines = [`| ${head.join(' | ')} |`, `|---|---|${head.slice(2).map(() => '---:').join('|')}|`];
  const rules: RankRule[] = ['α rule', 'uniform rank', 'allocator'];
  for (const rule of rules) {
    for (const p of s.curve.filter((c) => c.rule === rule).sort((a, b) => a.flopsPct - b.flopsPct)) {
      lines.push(`| ${[rule, p.setting, p.flopsPct.toFixed(2), p.meanSideRank.toFixed(2), ...s.datasets.map((d) => p.ppl[d]!.toFixed(3))].join(' | ')} |`);
    }
  }
  return `${METHOD_LABELS[s.method as TableMethod]} W${s.wbits}A${s.abits}, budget curve: perplexity against side-path +FLOPs for three rank rules.\n\n${lines.join('\n')}\n`;
}

/** Pareto plot: perplexity increase over fp32 (%) against +FLOPs %, a line per (rule, dataset). */
export function budgetCurveChart(s: AlphaSweep): ChartSpec {
  const rows = (s.curve ?? []).flatMap((p) => s.datasets.map((d) => ({
    '+FLOPs %': p.flopsPct, 'ppl over fp32 (%)': 100 * (p.ppl[d]! / s.fp[d]! - 1), rule: `${p.rule}, ${d}`, setting: p.setting,
  }))).sort((a, b) => a['+FLOPs %'] - b['+FLOPs %']);
  return lineChart(rows, { title: `${METHOD_LABELS[s.method as TableMethod]} W${s.wbits}A${s.abits}: perplexity increase over fp32 vs side-path +FLOPs (${s.model})`, x: '+FLOPs %', y: 'ppl over fp32 (%)', series: 'rule', points: true });
}
