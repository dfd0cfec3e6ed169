// The method table with a W4A4 column, and ASER's outlier handling measured: the outlier count f swept
// at equal side-path columns (--side-width: f columns of the width go to the outliers), each f with the
// two ways of carrying the outlier columns (exact one-hot columns, or kept in E and reconstructed by
// the rank-r path; QuantizeOptions.outlierColumns), at each activation width, perplexity on each
// dataset, through the method table (eval/ppl-table.ts: calibrated once, everything cached).
//
//   npm run bench -- outliers [--model stories260k] [--datasets tinystories,wikitext2] [--abits 8,4]
//                             [--side-width 8] [--f 1,2,4] [--max-windows 32] [--methods all]
//
// Prints both tables and writes bench/results/outliers.json.
import { join } from 'node:path';
import { formatPplTableMarkdown, pplCell, runPplTable, TABLE_METHODS } from '../eval/ppl-table.js';
import { readArtifactManifest } from '../loaders/artifact-manifest.js';
import { repoRoot } from '../loaders/datasets.js';
import type { OutlierColumns } from '../quant/methods.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';
import { benchOptions } from './lib/args.js';

interface OutlierRow {
  f: number;
  outlierColumns: OutlierColumns;
  abits: number;
  meanSideRank: number;
  meanRank: number;
  flopsPct: number;
  ppl: Record<string, number>;
  /** Mean over linears of the max / median activation channel mean (what smoothing has to work with). */
  activationOutlierRatio: number;
  /** Σ over linears of outputErrorAfter² (whitened weight error the side path leaves). */
  residualSq: number;
}

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const { opt, list } = benchOptions(args);
  const model = opt('model', 'stories260k');
  const datasets = list(opt('datasets', 'tinystories,wikitext2'));
  const abits = list(opt('abits', '8,4')).map(Number);
  const width = Number(opt('side-width', '8'));
  const fs = list(opt('f', '1,2,4')).map(Number);
  const maxWindows = Number(opt('max-windows', '32'));
  const methodsArg = opt('methods', 'all');
  const methods = methodsArg === 'all' ? [...TABLE_METHODS] : list(methodsArg);
  const started = performance.now();
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const common = { model, datasets, abits, maxWindows, rank: width, rankBudget: 'side' as const, onProgress: say };

  // 1. the method table at every width (W4A4 included)
  const table = await runPplTable({ ...common, methods });
  console.log(formatPplTableMarkdown(table));

  // 2. ASER: f × outlier-column variant at equal side-path columns
  const rows: OutlierRow[] = [];
  for (const f of fs) {
    for (const outlierColumns of ['exact', 'reconstructed'] as const) {
      const t = await runPplTable({ ...common, methods: ['aser'], outliers: f, outlierColumns });
      for (const b of abits) {
        const cells = datasets.map((d) => pplCell(t, 'aser', b, d)!);
        const m = readArtifactManifest(cells[0]!.artifact!);
        const ls = Object.values(m.layers);
        rows.push({
          f, outlierColumns, abits: b, meanSideRank: cells[0]!.meanSideRank, meanRank: cells[0]!.meanRank, flopsPct: cells[0]!.flopsPct,
          ppl: Object.fromEntries(cells.map((c) => [c.dataset, c.ppl])),
          activationOutlierRatio: ls.reduce((s, l) => s + (l.diag?.activationOutlierRatio ?? NaN), 0) / ls.length,
          residualSq: ls.reduce((s, l) => s + (l.diag?.outputErrorAfter ?? NaN) ** 2, 0),
        });
      }
    }
  }
  const head = ['W4A', 'f', 'outlier columns', 'side rank', 'reconstruction rank', '+FLOPs %', ...datasets.map((d) => `${d} ppl`), 'whitened residual'];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const r of [...rows].sort((a, b) => b.abits - a.abits || a.f - b.f)) {
    console.log(`| ${r.abits} | ${r.f} | ${r.outlierColumns} | ${r.meanSideRank.toFixed(2)} | ${r.meanRank.toFixed(2)} | ${r.flopsPct.toFixed(2)} | ${datasets.map((d) => r.ppl[d]!.toFixed(4)).join(' | ')} | ${r.residualSq.toExponential(3)} |`);
  }
  const { cells, ...rest } = table;
  writeJsonReport(join(repoRoot(), 'bench', 'results', 'outliers.json'), {
    ...rest, cells: cells.map(({ artifact: _dir, ...c }) => c), sideWidth: width, outlierRows: rows,
    command: `npm run bench -- outliers${args.length ? ` ${args.join(' ')}` : ''}`, totalSeconds: (performance.now() - started) / 1000,
  }, await probeAdapter());
  return 0;
}

runIfMain(import.meta.url, main);
