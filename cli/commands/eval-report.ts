// `aser eval report`: the standard evaluation set, cached and resumable, written as results.json,
// summary.md and a self-contained index.html with inline SVG plots (eval/report.ts, eval/report-html.ts).
import type { CommandModule } from 'yargs';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { reportSummaryMarkdown, runReport, writeReport, type ReportResults } from '../../eval/report.js';
import { TABLE_METHODS } from '../../eval/ppl-table.js';
import { UsageError } from '../../core/errors.js';
import { phaseProgress } from './eval-kld.js';
import { parseTasks } from './eval-zeroshot.js';
import { cacheOption, ctxOption, modelOption } from '../options.js';

interface ReportArgs {
  model: string; out: string; methods: string; datasets: string; abits: string; ctx: number; maxWindows: number; protocol: 'gptq' | 'llamacpp';
  alphas: string; kldWindows: number; tasks: string; zeroshotLimit: number; prefill: number; decode: number; repeats: number; cache: boolean; fromJson?: string;
}

const listOption = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);
function numberListOption(name: string, v: string): number[] {
  return listOption(v).map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n)) throw new UsageError(`--${name}: "${x}" is not a number`);
    return n;
  });
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report',
  describe: 'The standard evaluation set (ppl table, α sweep, KLD, zero-shot, FLOPs, profile, spectra) → report/index.html',
  builder: (y) =>
    y
      .options(modelOption)
      .option('out', { type: 'string', default: 'report', describe: 'Output directory (index.html, results.json, summary.md)' })
      .option('methods', { type: 'string', default: TABLE_METHODS.join(','), describe: 'ppl table methods (must include fp, rtn, aser)' })
      .option('datasets', { type: 'string', default: 'tinystories,wikitext2', describe: 'ppl table datasets (the first also gets the α sweep and KLD)' })
      .option('abits', { type: 'string', default: '8,6', describe: 'Activation widths (must include 8)' })
      .options(ctxOption)
      .option('max-windows', { type: 'number', default: 32, describe: 'Perplexity windows per dataset and cell' })
      .option('protocol', { type: 'string', choices: ['gptq', 'llamacpp'], default: 'gptq', describe: 'Perplexity protocol of the table' })
      .option('alphas', { type: 'string', default: '0.1,0.075,0.05,0.03,0.015', describe: "α sweep values ('' skips the sweep)" })
      .option('kld-windows', { type: 'number', default: 64, describe: 'KL-divergence windows (llama.cpp protocol)' })
      .option('tasks', { type: 'string', default: 'standard,copa', describe: "Zero-shot tasks ('standard' = the issue's set)" })
      .option('zeroshot-limit', { type: 'number', default: 100, describe: 'Documents per zero-shot task' })
      .option('prefill', { type: 'number', default: 128, describe: 'Profile: prompt tokens' })
      .option('decode', { type: 'number', default: 32, describe: 'Profile: decode steps' })
      .option('repeats', { type: 'number', default: 5, describe: 'Profile: repeats (medians)' })
      .options(cacheOption('Reuse cached results (--no-cache recomputes everything)'))
      .option('from-json', { type: 'string', describe: 'Render the page from an existing results.json instead of running' })
      .example('$0 eval report', 'the default model, about 10 minutes on llvmpipe the first time, seconds when cached')
      .example('$0 eval report --methods fp,rtn,aser --datasets tinystories --abits 8 --max-windows 4 --alphas 0.05 --kld-windows 4 --tasks copa --zeroshot-limit 20', 'a quick bounded run') as never,
  handler: async (args) => {
    const out = resolve(args.out);
    if (args.fromJson) {
      const r = JSON.parse(readFileSync(args.fromJson, 'utf8')) as ReportResults;
      await writeReport(out, r);
      console.log(`wrote ${join(out, 'index.html')} from ${args.fromJson}`);
      return;
    }
    for (const k of ['ctx', 'maxWindows', 'kldWindows', 'zeroshotLimit', 'prefill', 'decode', 'repeats'] as const) {
      if (!Number.isInteger(args[k]) || args[k] < 1) throw new UsageError(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} ${args[k]} must be a positive integer`);
    }
    const tasks = args.tasks.split(',').flatMap((t) => parseTasks(t.trim()));
    let r: ReportResults;
    try {
      r = await runReport({
        model: args.model, methods: listOption(args.methods), datasets: listOption(args.datasets), abits: numberListOption('abits', args.abits),
        ctx: args.ctx, maxWindows: args.maxWindows, protocol: args.protocol, alphas: numberListOption('alphas', args.alphas), kldWindows: args.kldWindows,
        tasks: [...new Set(tasks)], zeroshotLimit: args.zeroshotLimit, prefill: args.prefill, decode: args.decode, repeats: args.repeats, cache: args.cache,
        onProgress: (m) => process.stderr.write(`${m}\n`), onWindow: phaseProgress('report', 'items'),
      });
    } catch (err) {
      if (err instanceof RangeError || (err as Error).name === 'PplTableError') throw new UsageError((err as Error).message);
      throw err;
    }
    await writeReport(out, r);
    console.log(reportSummaryMarkdown(r));
    console.log(`wrote ${join(out, 'index.html')}, results.json, summary.md (${r.seconds.toFixed(0)} s)`);
  },
};
