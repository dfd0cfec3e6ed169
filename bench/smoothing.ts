// Perplexity with one smoothing vector per shared input (q|k|v, gate|up: what lets the runtime
// quantize each input once and run the group as one dispatch) against one per linear (format 1),
// through the method table (eval/ppl-table.ts) with both smoothing scopes: every method under
// shared-input, and SmoothQuant, SmoothQuant+ and ASER again under per-linear.
//
//   npm run bench -- smoothing [--model stories260k] [--datasets tinystories] [--abits 8,6] [--max-windows 32]
//                              [--methods fp,rtn,smoothquant,smoothquant-plus,aser] [--side-width 8]
//
// Prints the table and writes bench/results/smoothing.json (the table's JSON plus a per-row summary).
import { join } from 'node:path';
import { formatPplTableMarkdown, pplCell, runPplTable } from '../eval/ppl-table.js';
import { SCOPE_SENSITIVE_METHODS } from '../quant/methods.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';
import { repoRoot } from '../loaders/datasets.js';
import { benchOptions } from './lib/args.js';

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const { opt, list } = benchOptions(args);
  const model = opt('model', 'stories260k');
  const datasets = list(opt('datasets', 'tinystories'));
  const abits = list(opt('abits', '8,6')).map(Number);
  const maxWindows = Number(opt('max-windows', '32'));
  const rank = Number(opt('side-width', '8'));
  const methods = list(opt('methods', 'fp,rtn,smoothquant,smoothquant-plus,aser'));
  const table = await runPplTable({
    model, methods, datasets, abits, rank, rankBudget: 'side', maxWindows, smoothing: ['shared-input', 'per-linear'],
    onProgress: (m) => process.stderr.write(`${m}\n`),
  });
  // shared-input minus per-linear, per scope-sensitive method, width and dataset
  const deltas = table.methods.filter((m) => (SCOPE_SENSITIVE_METHODS as readonly string[]).includes(m)).flatMap((method) =>
    abits.flatMap((b) => datasets.map((dataset) => {
      const shared = pplCell(table, method, b, dataset, 'shared-input')!;
      const perLinear = pplCell(table, method, b, dataset, 'per-linear')!;
      return { method, abits: b, dataset, shared: shared.ppl, perLinear: perLinear.ppl, deltaPct: (100 * (shared.ppl - perLinear.ppl)) / perLinear.ppl };
    })),
  );
  console.log(formatPplTableMarkdown(table));
  console.log('| method | W4A | dataset | shared-input ppl | per-linear ppl | Δ % |\n|---|---:|---|---:|---:|---:|');
  for (const d of deltas) console.log(`| ${d.method} | ${d.abits} | ${d.dataset} | ${d.shared.toFixed(4)} | ${d.perLinear.toFixed(4)} | ${d.deltaPct.toFixed(2)} |`);
  const { cells, ...rest } = table;
  writeJsonReport(join(repoRoot(), 'bench', 'results', 'smoothing.json'), {
    ...rest, cells: cells.map(({ artifact: _dir, ...c }) => c), deltas,
  }, await probeAdapter());
  return 0;
}

runIfMain(import.meta.url, main);
