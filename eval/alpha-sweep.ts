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
  const caption = last.caption.replace(/; rank rule α = \S+ per layer/, '; rank rule of Eq. 9 per layer at each α');
  return {
    model: opts.model, method, wbits: last.settings.wbits, abits, datasets: [...opts.datasets], fp, rows, caption,
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
