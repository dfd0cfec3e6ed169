// `aser eval <what>`: evaluation suites whose results are cached and resumable (node/cache.ts). Each
// subcommand is one module in EVAL_SUBCOMMANDS; add new suites there.
import type { Argv, CommandModule } from 'yargs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeBytesAtomic } from '../../loaders/atomic.js';
import { formatPplTableCsv, formatPplTableMarkdown, runPplTable, TABLE_METHODS } from '../../eval/ppl-table.js';
import { budgetCurveChart, formatAlphaSweepMarkdown, formatBudgetCurveMarkdown, runAlphaSweep, alphaSweepChart } from '../../eval/alpha-sweep.js';
import { renderSvg } from '../../eval/plot.js';
import { diagnosisCharts, formatDiagnosisMarkdown, runDiagnose } from '../../eval/diagnose.js';
import { UsageError } from '../../core/errors.js';
import { kldCommand } from './eval-kld.js';
import { zeroshotCommand } from './eval-zeroshot.js';
import { reportCommand } from './eval-report.js';
import { PplTableError } from '../../eval/errors.js';
import type { OutlierColumns } from '../../quant/methods.js';
import {
  abitsListOption, alphaOption, cacheOption, calibrationOptions, ctxOption, modelOption, outlierColumnsOption, outliersOption,
  parseSmoothing, rankOptions, sidePathSize, wbitsOption,
} from '../options.js';

/** "a,b,c" -> ['a', 'b', 'c'] (empty items dropped). */
export function listOption(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

export function numberListOption(name: string, value: string | undefined): number[] {
  return listOption(value).map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`--${name}: "${s}" is not a number`);
    return n;
  });
}

/** Options every quantized evaluation shares (calibration and evaluation sizes). */
export function evalOptions<T>(y: Argv<T>) {
  return y
    .options({ ...modelOption, ...wbitsOption })
    .option('protocol', { type: 'string', choices: ['gptq', 'llamacpp'], default: 'gptq', describe: 'Perplexity protocol (see aser ppl)' })
    .options(ctxOption)
    .option('max-windows', { type: 'number', default: 64, describe: 'Windows scored per dataset' })
    .options({ ...calibrationOptions, ...cacheOption('Reuse cached perplexities (--no-cache recomputes)') })
    .option('out', { type: 'string', describe: 'Directory for the result files' });
}

interface EvalCommon {
  model: string; wbits: number; protocol: 'gptq' | 'llamacpp'; ctx: number; maxWindows: number;
  calib: string; calibSamples: number; calibLen: number; seed: number; cache: boolean; out?: string;
}

function writeOutputs(dir: string | undefined, files: Record<string, string>): void {
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeBytesAtomic(join(dir, name), text);
  process.stderr.write(`wrote ${Object.keys(files).map((f) => join(dir, f)).join(', ')}\n`);
}

const progress = (msg: string) => process.stderr.write(`${msg}\n`);

/** Bad option values found by the suites are the user's to fix: exit code 2. */
async function asUsage<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof PplTableError) throw new UsageError(err.message);
    throw err;
  }
}

interface EvalPplArgs extends EvalCommon { methods: string; datasets: string; abits: string; rank?: number; sideWidth?: number; alpha?: number; outliers?: string; smoothing: string; outlierColumns: string }

/** --outliers N | auto. */
function parseOutliers(v: string | undefined): number | 'auto' | undefined {
  if (v === undefined || v === 'auto') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--outliers ${v} must be a non-negative integer or auto`);
  return n;
}

export const evalPplCommand: CommandModule<object, EvalPplArgs> = {
  command: 'ppl',
  describe: 'Perplexity table: fp32 and every quantization method × activation bits × dataset',
  builder: (y) =>
    evalOptions(y)
      .option('methods', { type: 'string', default: TABLE_METHODS.join(','), describe: `Comma list of ${TABLE_METHODS.join(', ')}` })
      .option('datasets', { type: 'string', default: 'wikitext2,tinystories', describe: 'Comma list of datasets' })
      .options(abitsListOption)
      .options({ ...rankOptions, 'side-width': { ...rankOptions['side-width'], describe: `${rankOptions['side-width'].describe} (default 8: every low-rank method gets the same budget)` } })
      .options({ ...alphaOption, ...outliersOption, ...outlierColumnsOption })
      .option('smoothing', { type: 'string', default: 'shared', describe: 'Comma list of smoothing scopes, shared and/or per-linear: the first for every method, a second adds rows for SmoothQuant, SmoothQuant+ and ASER' })
      .example('$0 eval ppl --methods fp,rtn,aser --datasets tinystories --abits 8 --out /tmp/table', 'a small table')
      .example('$0 eval ppl --methods fp,smoothquant,aser --datasets tinystories --smoothing shared,per-linear', 'one smoothing vector per shared input vs one per linear') as never,
  handler: async (args) => {
    const size = sidePathSize(args);
    const smoothing = listOption(args.smoothing).map((s) => parseSmoothing(s));
    if (smoothing.length === 0) throw new UsageError('--smoothing: give shared, per-linear or both');
    const table = await asUsage(() =>
      runPplTable({
        smoothing,
        model: args.model, methods: listOption(args.methods), datasets: listOption(args.datasets), abits: numberListOption('abits', args.abits),
        wbits: args.wbits, rank: size.rank, alpha: args.alpha, rankBudget: size.countsOutliers || size.rank === undefined ? 'side' : 'reconstruction', outliers: parseOutliers(args.outliers), outlierColumns: args.outlierColumns as OutlierColumns, protocol: args.protocol, ctx: args.ctx,
        maxWindows: args.maxWindows, calib: args.calib, calibSamples: args.calibSamples, calibLen: args.calibLen, seed: args.seed,
        cache: args.cache, onProgress: progress,
      }),
    );
    const md = formatPplTableMarkdown(table);
    console.log(md);
    writeOutputs(args.out, { 'table.md': md, 'table.json': JSON.stringify(table, null, 2) + '\n', 'table.csv': formatPplTableCsv(table) });
  },
};

interface EvalAlphaArgs extends EvalCommon { alphas: string; method: string; abits: number; dataset: string; budgetCurve: boolean; uniformRanks: string }

export const evalAlphaCommand: CommandModule<object, EvalAlphaArgs> = {
  command: 'alpha',
  describe: 'α sweep (paper Table 4): mean rank, +FLOPs % and perplexity per rank threshold α',
  builder: (y) =>
    evalOptions(y)
      .option('alphas', { type: 'string', default: '0.1,0.075,0.05,0.03,0.015', describe: 'Comma list of α' })
      .option('method', { type: 'string', default: 'aser', describe: 'Low-rank method to sweep' })
      .option('abits', { type: 'number', default: 8, describe: 'Activation bits' })
      .option('dataset', { type: 'string', default: 'wikitext2,tinystories', describe: 'Comma list of datasets' })
      .option('budget-curve', { type: 'boolean', default: false, describe: 'Also uniform ranks and the budget allocator at every point\'s +FLOPs: a Pareto plot of the three rank rules (budget.md, budget.svg)' })
      .option('uniform-ranks', { type: 'string', default: '1,2,3,4,6,8', describe: 'Reconstruction ranks of the budget curve\'s uniform-rank points' })
      .example('$0 eval alpha --out /tmp/alpha', 'the default sweep, with alpha.md, alpha.json and alpha.svg')
      .example('$0 eval alpha --budget-curve --abits 4 --max-windows 32 --out /tmp/alpha-a4', 'α rule vs uniform rank vs the budget allocator at A4') as never,
  handler: async (args) => {
    const sweep = await asUsage(() =>
      runAlphaSweep({
        model: args.model, method: args.method, alphas: numberListOption('alphas', args.alphas), abits: args.abits,
        datasets: listOption(args.dataset), wbits: args.wbits, protocol: args.protocol, ctx: args.ctx, maxWindows: args.maxWindows,
        calib: args.calib, calibSamples: args.calibSamples, calibLen: args.calibLen, seed: args.seed, cache: args.cache, onProgress: progress,
        ...(args.budgetCurve ? { curve: { uniformRanks: numberListOption('uniform-ranks', args.uniformRanks) } } : {}),
      }),
    );
    const md = formatAlphaSweepMarkdown(sweep);
    console.log(md);
    const files: Record<string, string> = { 'alpha.md': md, 'alpha.json': JSON.stringify(sweep, null, 2) + '\n', 'alpha.svg': await renderSvg(alphaSweepChart(sweep)) };
    if (sweep.curve) {
      const curve = formatBudgetCurveMarkdown(sweep);
      console.log(curve);
      files['budget.md'] = curve;
      files['budget.svg'] = await renderSvg(budgetCurveChart(sweep));
    }
    writeOutputs(args.out, files);
  },
};

interface EvalDiagnoseArgs { model: string; layers?: string; wbits: number; abits: number; rank?: number; sideWidth?: number; outliers?: string; calib: string; calibSamples: number; calibLen: number; seed: number; out?: string }

export const evalDiagnoseCommand: CommandModule<object, EvalDiagnoseArgs> = {
  command: 'diagnose',
  describe: 'Per-linear diagnostics (paper Figs. 2–4, 6): spectra of E and E·S, effective rank, output errors per method, outlier channels',
  builder: (y) =>
    y
      .options(modelOption)
      .option('layers', { type: 'string', describe: 'Comma list of layer indices (default all)' })
      .options(wbitsOption)
      .option('abits', { type: 'number', default: 8, describe: 'Activation bits (for the sampled whole-layer error)' })
      .options({ ...rankOptions, 'side-width': { ...rankOptions['side-width'], describe: `${rankOptions['side-width'].describe} (default 8, for every low-rank method)` } })
      .options({ ...calibrationOptions, ...outliersOption })
      .option('out', { type: 'string', describe: 'Directory for diagnose.json, diagnose.md and the SVG plots' })
      .example('$0 eval diagnose --out /tmp/diag', 'every layer of the default model') as never,
  handler: async (args) => {
    const layers = args.layers === undefined ? undefined : numberListOption('layers', args.layers);
    const size = sidePathSize(args);
    const rank = size.rank ?? 8;
    const rankBudget = size.countsOutliers || size.rank === undefined ? 'side' : 'reconstruction';
    const d = await asUsage(() => runDiagnose({ ...args, layers, rank, rankBudget, outliers: parseOutliers(args.outliers), onProgress: progress }));
    const md = formatDiagnosisMarkdown(d);
    console.log(md);
    if (args.out) {
      const files: Record<string, string> = { 'diagnose.json': JSON.stringify(d) + '\n', 'diagnose.md': md };
      for (const [name, spec] of Object.entries(diagnosisCharts(d))) files[name] = await renderSvg(spec);
      writeOutputs(args.out, files);
    }
  },
};

/** Every `aser eval` subcommand, in the order `aser eval --help` lists them. */
export const EVAL_SUBCOMMANDS: CommandModule<object, never>[] = [evalPplCommand, evalAlphaCommand, evalDiagnoseCommand, kldCommand, zeroshotCommand, reportCommand] as never[];

export const evalCommand: CommandModule = {
  command: 'eval',
  describe: 'Evaluation suites (cached, resumable): ppl table, α sweep, quantizer diagnostics, KL divergence, zero-shot, report',
  builder: (y) => {
    let parser = y;
    for (const c of EVAL_SUBCOMMANDS) parser = parser.command(c as never);
    return parser.demandCommand(1, 'Name an evaluation suite (see the list above).');
  },
  handler: () => {},
};
