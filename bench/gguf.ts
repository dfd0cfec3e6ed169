// GGUF round trip at the LLaMA-3-8B shape: a Hugging Face directory (by default a synthetic 1-layer
// LLaMA-3-8B-shaped model from `aser synth`, byte-level BPE vocabulary and all) is exported with
// `aser export --dtype f16|q8_0|q4_0`, and `aser ppl` runs the HF directory and every export on the
// same windows with the same runtime dtype. Each step is the CLI command a user would type, run as its
// own process (so each load starts cold and its memory is its own); the commands are in the report.
// The bar: the f16 export's perplexity within 1e-4 relative of the HF directory's, Q8_0 within
// 1 %; Q4_0 is reported beside them. Prints a table and writes bench/results/gguf.json.
//
//   npm run bench -- gguf [--model DIR|PRESET] [--layers 1] [--dtypes f16,q8_0,q4_0] [--ctx 128] [--windows 2]
//        [--dataset wikitext2] [--runtime-dtype f16] [--work DIR] [--keep] [--out file]
//
// Without --model, the synthetic model is written to --work (default: a directory in the OS temp dir)
// first; its exports go there too (model-<dtype>.gguf) and are deleted at the end unless --keep. With
// --keep, an export already in --work that is newer than the model's config.json is reused (its
// export command and time are those of the run that wrote it, not repeated).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../loaders/datasets.js';
import { GGUF_EXPORT_DTYPES, type GgufExportDType } from '../loaders/gguf-writer.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

interface Args {
  model?: string;
  layers: number;
  dtypes: GgufExportDType[];
  ctx: number;
  windows: number;
  dataset: string;
  runtimeDtype: 'f32' | 'f16';
  work?: string;
  keep: boolean;
  out: string;
}

/** The bars: relative perplexity difference to the HF directory allowed per export dtype. */
const BAR: Partial<Record<GgufExportDType, number>> = { f32: 1e-4, f16: 1e-4, q8_0: 0.01 };

function parseArgs(argv: string[]): Args {
  const a: Args = { layers: 1, dtypes: ['f16', 'q8_0', 'q4_0'], ctx: 128, windows: 2, dataset: 'wikitext2', runtimeDtype: 'f16', keep: false, out: join(repoRoot(), 'bench', 'results', 'gguf.json') };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--keep') {
      a.keep = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`gguf bench: ${k} needs a value`);
    if (k === '--model') a.model = existsSync(v) ? resolve(v) : v; // a path, or a preset name (e.g. stories260k)
    else if (k === '--layers') a.layers = Number(v);
    else if (k === '--dtypes') a.dtypes = v.split(',').filter(Boolean) as GgufExportDType[];
    else if (k === '--ctx') a.ctx = Number(v);
    else if (k === '--windows') a.windows = Number(v);
    else if (k === '--dataset') a.dataset = v;
    else if (k === '--runtime-dtype') a.runtimeDtype = v as Args['runtimeDtype'];
    else if (k === '--work') a.work = resolve(v);
    else if (k === '--out') a.out = resolve(v);
    else throw new Error(`gguf bench: unknown option ${k} (--model --layers --dtypes --ctx --windows --dataset --runtime-dtype --work --keep --out)`);
  }
  for (const key of ['layers', 'ctx', 'windows'] as const) if (!Number.isInteger(a[key]) || a[key] < 1) throw new Error(`gguf bench: --${key} must be a positive integer`);
  if (a.dtypes.length === 0 || a.dtypes.some((d) => !GGUF_EXPORT_DTYPES.includes(d))) throw new Error(`gguf bench: --dtypes takes ${GGUF_EXPORT_DTYPES.join(',')}`);
  if (a.runtimeDtype !== 'f32' && a.runtimeDtype !== 'f16') throw new Error('gguf bench: --runtime-dtype is f32 or f16');
  return a;
}

/** Runs `aser <args>` (the built CLI) and returns the JSON object on its last stdout line, and the wall time. */
function aser(args: string[]): { json: Record<string, unknown>; seconds: number; command: string } {
  const cli = join(repoRoot(), 'dist', 'cli', 'aser.js');
  const command = `aser ${args.join(' ')}`;
  process.stderr.write(`gguf bench: ${command}\n`);
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [cli, ...args, '--json'], { cwd: repoRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  const last = out.trim().split('\n').pop() ?? '';
  return { json: JSON.parse(last) as Record<string, unknown>, seconds, command };
}

interface Row {
  source: string;
  /** hf: the source model as given (an HF directory, or a preset); gguf: one of its exports. */
  format: 'hf' | 'gguf';
  exportDtype?: GgufExportDType;
  fileBytes?: number;
  /** Absent when the file was reused from an earlier run. */
  exportSeconds?: number;
  exportCommand?: string;
  pplCommand: string;
  ppl: number;
  nll: number;
  tokens: number;
  /** ppl evaluation time inside the process (from aser ppl), and the whole process (load included). */
  evalSeconds: number;
  processSeconds: number;
  /** |ppl − ppl(HF)| / ppl(HF). */
  relDiff?: number;
  bar?: number;
  withinBar?: boolean;
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const work = args.work ?? mkdtempSync(join(tmpdir(), 'aser-gguf-bench-'));
  mkdirSync(work, { recursive: true });
  let model = args.model;
  let synthCommand: string | undefined;
  if (!model) {
    model = join(work, `llama3-8b-l${args.layers}`);
    if (!existsSync(join(model, 'config.json'))) synthCommand = aser(['synth', '--shape', 'llama3-8b', '--layers', String(args.layers), '--out', model]).command;
  }
  const ppl = (m: string) => aser(['ppl', '--model', m, '--dtype', args.runtimeDtype, '--dataset', args.dataset, '--ctx', String(args.ctx), '--max-windows', String(args.windows)]);
  const rows: Row[] = [];
  const pplRow = (r: ReturnType<typeof ppl>) => ({
    pplCommand: r.command, ppl: r.json.ppl as number, nll: r.json.nll as number, tokens: r.json.tokens as number,
    evalSeconds: r.json.seconds as number, processSeconds: r.seconds,
  });
  const hf = ppl(model);
  rows.push({ source: model, format: 'hf', ...pplRow(hf) });
  const written: string[] = [];
  try {
    for (const dtype of args.dtypes) {
      const file = join(work, `model-${dtype}.gguf`);
      const config = join(model, 'config.json');
      const reuse = args.keep && existsSync(file) && existsSync(config) && statSync(file).mtimeMs > statSync(config).mtimeMs;
      const exportArgs = ['export', '--model', model, '--dtype', dtype, '--out', file, '--overwrite'];
      const ex = reuse ? { seconds: undefined, command: `aser ${exportArgs.join(' ')} (reused from an earlier run)` } : aser(exportArgs);
      written.push(file);
      const r = ppl(file);
      const relDiff = Math.abs(r.json.ppl as number - rows[0]!.ppl) / rows[0]!.ppl;
      const bar = BAR[dtype];
      rows.push({
        source: file, format: 'gguf', exportDtype: dtype, fileBytes: statSync(file).size, exportSeconds: ex.seconds, exportCommand: ex.command,
        ...pplRow(r), relDiff, bar, withinBar: bar === undefined ? undefined : relDiff <= bar,
      });
    }
  } finally {
    if (!args.keep) for (const f of written) rmSync(f, { force: true });
    if (!args.keep && !args.model && !args.work) rmSync(work, { recursive: true, force: true });
  }

  console.log(`\nGGUF round trip: ${model} (${args.dataset}, ctx ${args.ctx}, ${args.windows} windows, runtime --dtype ${args.runtimeDtype})\n`);
  console.log('| weights | file MB | export s | ppl | rel. diff to HF | bar | eval s | process s |');
  console.log('|---|---:|---:|---:|---:|---|---:|---:|');
  for (const r of rows) {
    const name = r.format === 'hf' ? 'source model' : `GGUF ${r.exportDtype}`;
    const bar = r.bar === undefined ? '—' : `${r.bar} ${r.withinBar ? 'ok' : 'FAILED'}`;
    console.log(`| ${name} | ${r.fileBytes ? (r.fileBytes / 1e6).toFixed(0) : '—'} | ${r.exportSeconds?.toFixed(1) ?? '—'} | ${r.ppl.toFixed(4)} | ${r.relDiff === undefined ? '—' : r.relDiff.toExponential(2)} | ${bar} | ${r.evalSeconds.toFixed(1)} | ${r.processSeconds.toFixed(1)} |`);
  }
  writeJsonReport(args.out, {
    bench: 'gguf',
    note: 'Each row is one CLI process (commands below). The machine is shared with other engineers\' jobs (see run.loadavg): times are indicative, perplexities are not affected.',
    model, synthCommand, dataset: args.dataset, ctx: args.ctx, windows: args.windows, runtimeDtype: args.runtimeDtype, rows,
  }, await probeAdapter());
  console.log(`\nwrote ${args.out}`);
  return rows.every((r) => r.withinBar !== false) ? 0 : 1;
}

runIfMain(import.meta.url, main);
