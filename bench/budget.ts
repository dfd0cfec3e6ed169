// Ranks for a budget against uniform rank at the same cost: ASER with reconstruction rank 3 on every
// linear (its f outlier columns on top, as `aser quantize --rank 3`), and ASER with ranks allocated by
// quant/budget.ts for exactly that artifact's +FLOPs (`aser quantize --budget-flops P`), at each
// activation width, perplexity on each dataset, through the method table (eval/ppl-table.ts: calibrated
// once, artifacts and perplexities cached). Beside the perplexities, what the allocator optimizes: the
// whitened output error each artifact leaves, Σ‖X (W − W_eff)ᵀ‖² over the calibration tokens (manifest
// diagnostics, f16 factors included), summed per kind of linear, with the ranks each kind got. A third
// variant allocates for the 'relative' objective (each linear's error over its own output energy).
//
//   npm run bench -- budget [--model stories260k] [--datasets tinystories,wikitext2] [--abits 8,4]
//                           [--rank 3] [--max-windows 64]
//
// Prints the tables and writes bench/results/budget.json.
import { join } from 'node:path';
import { pplCell, runPplTable, type PplTable } from '../eval/ppl-table.js';
import { readArtifactManifest, type ArtifactManifest } from '../loaders/artifact-manifest.js';
import { repoRoot } from '../loaders/datasets.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';
import { benchOptions } from './lib/args.js';

interface KindSummary {
  /** e.g. "self_attn.q_proj". */
  kind: string;
  /** Reconstruction ranks of this kind's linears, layer order. */
  ranks: number[];
  /** Σ outputErrorAfter² over this kind's linears (whitened error the side path leaves). */
  residualSq: number;
  /** Σ outputErrorBefore² (before reconstruction; the same for both artifacts). */
  errorSq: number;
}

interface Variant {
  rule: 'uniform' | 'allocator' | 'allocator (relative)';
  flopsPct: number;
  meanSideRank: number;
  ppl: Record<string, number>;
  nll: Record<string, number>;
  tokens: Record<string, number>;
  residualSq: number;
  kinds: KindSummary[];
  artifactFlops?: ArtifactManifest['budget'];
}

function summarize(m: ArtifactManifest): { residualSq: number; kinds: KindSummary[] } {
  const kinds = new Map<string, KindSummary>();
  for (const [module, l] of Object.entries(m.layers)) {
    const kind = module.replace(/^model\.layers\.\d+\./, '');
    const k = kinds.get(kind) ?? { kind, ranks: [], residualSq: 0, errorSq: 0 };
    k.ranks.push(l.errorRank);
    k.residualSq += (l.diag?.outputErrorAfter ?? NaN) ** 2;
    k.errorSq += (l.diag?.outputErrorBefore ?? NaN) ** 2;
    kinds.set(kind, k);
  }
  const list = [...kinds.values()];
  return { residualSq: list.reduce((s, k) => s + k.residualSq, 0), kinds: list };
}

function variantOf(t: PplTable, rule: Variant['rule'], abits: number, datasets: string[]): Variant {
  const cells = datasets.map((d) => pplCell(t, 'aser', abits, d)!);
  const m = readArtifactManifest(cells[0]!.artifact!);
  return {
    rule, flopsPct: cells[0]!.flopsPct, meanSideRank: cells[0]!.meanSideRank,
    ppl: Object.fromEntries(cells.map((c) => [c.dataset, c.ppl])),
    nll: Object.fromEntries(cells.map((c) => [c.dataset, c.nll])),
    tokens: Object.fromEntries(cells.map((c) => [c.dataset, c.tokens])),
    ...summarize(m), ...(m.budget ? { artifactFlops: m.budget } : {}),
  };
}

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const { opt, list } = benchOptions(args);
  const model = opt('model', 'stories260k');
  const datasets = list(opt('datasets', 'tinystories,wikitext2'));
  const abitsList = list(opt('abits', '8,4')).map(Number);
  const rank = Number(opt('rank', '3'));
  const maxWindows = Number(opt('max-windows', '64'));
  const started = performance.now();
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const common = { model, datasets, maxWindows, onProgress: say };

  const fpTable = await runPplTable({ ...common, methods: ['fp'], abits: [abitsList[0]!] });
  const fp = Object.fromEntries(datasets.map((d) => [d, pplCell(fpTable, 'fp', abitsList[0]!, d)!.ppl]));
  const rows: Array<{ abits: number; budgetPct: number; uniform: Variant; allocator: Variant; relative: Variant }> = [];
  let caption = '';
  for (const abits of abitsList) {
    const uniformTable = await runPplTable({ ...common, methods: ['aser'], abits: [abits], rank, rankBudget: 'reconstruction' });
    const uniform = variantOf(uniformTable, 'uniform', abits, datasets);
    const budgetPct = uniform.flopsPct;
    const allocTable = await runPplTable({ ...common, methods: ['aser'], abits: [abits], budget: { unit: 'flops', percent: budgetPct } });
    const allocator = variantOf(allocTable, 'allocator', abits, datasets);
    const relTable = await runPplTable({ ...common, methods: ['aser'], abits: [abits], budget: { unit: 'flops', percent: budgetPct, objective: 'relative' } });
    const relative = variantOf(relTable, 'allocator (relative)', abits, datasets);
    rows.push({ abits, budgetPct, uniform, allocator, relative });
    caption = uniformTable.caption;
  }

  const head = ['W4A', 'rule', '+FLOPs %', 'mean side rank', ...datasets.map((d) => `${d} ppl`), 'whitened residual Σ‖·‖²'];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    for (const v of [r.uniform, r.allocator, r.relative]) {
      console.log(`| ${r.abits} | ${v.rule === 'uniform' ? `uniform r = ${rank}` : v.rule} | ${v.flopsPct.toFixed(3)} | ${v.meanSideRank.toFixed(2)} | ${datasets.map((d) => v.ppl[d]!.toFixed(4)).join(' | ')} | ${v.residualSq.toExponential(3)} |`);
    }
  }
  console.log('\nper kind of linear (first width): reconstruction ranks by layer, and the whitened residual each leaves');
  console.log('| linear | uniform ranks | allocator ranks | relative ranks | uniform residual | allocator residual | relative residual | error before |\n|---|---|---|---|---:|---:|---:|---:|');
  const first = rows[0]!;
  for (const k of first.uniform.kinds) {
    const a = first.allocator.kinds.find((x) => x.kind === k.kind)!;
    const r = first.relative.kinds.find((x) => x.kind === k.kind)!;
    console.log(`| ${k.kind} | ${k.ranks.join(' ')} | ${a.ranks.join(' ')} | ${r.ranks.join(' ')} | ${k.residualSq.toExponential(3)} | ${a.residualSq.toExponential(3)} | ${r.residualSq.toExponential(3)} | ${k.errorSq.toExponential(3)} |`);
  }
  console.log(`\n${caption}`);
  writeJsonReport(join(repoRoot(), 'bench', 'results', 'budget.json'), {
    model, datasets, abits: abitsList, rank, maxWindows, fp, rows, caption,
    command: `npm run bench -- budget${args.length ? ` ${args.join(' ')}` : ''}`,
    seconds: (performance.now() - started) / 1000,
  }, await probeAdapter());
  return 0;
}

runIfMain(import.meta.url, main);
