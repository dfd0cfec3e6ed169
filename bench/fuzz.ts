// Fuzzing at scale: ≥ 10,000 generated/mutated cases per format through the real loaders
// (safetensors, llama2.c checkpoints, GGUF, llama2.c tokenizer.bin, artifact manifests, HF config.json
// checked against its weights, HF tokenizer.json) and through
// the real HTTP server over loopback. Every case must end in a consistent load or a typed error
// (HTTP: a well-formed answer or an OpenAI 4xx) within the per-case bound. Loader cases run in a
// worker thread watched by this one, so a hanging case is detected, recorded and skipped. Prints a
// table and writes bench/results/fuzz.json with the outcomes per format.
//
//   node dist/bench/fuzz.js [--cases 10000] [--formats safetensors,llama2c,gguf,llama2c-tokenizer,artifact-manifest,hf-config,hf-tokenizer,http]
//                           [--seed 8] [--hang-ms 10000] [--out bench/results/fuzz.json]
import { Worker } from 'node:worker_threads';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { repoRoot } from '../loaders/datasets.js';
import { progressBar } from '../node/progress.js';
import { CASE_BOUND_MS } from './lib/fuzz-targets.js';
import type { FuzzWorkerData, FuzzWorkerResult } from './lib/fuzz-worker.js';
import { httpCase, runHttpCase } from './lib/http-fuzz.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

const LOADER_FORMATS = ['safetensors', 'llama2c', 'gguf', 'llama2c-tokenizer', 'artifact-manifest', 'hf-config', 'hf-tokenizer'];

interface FormatReport {
  format: string;
  cases: number;
  /** Process RSS (MiB) when this format finished (workers included while they ran). */
  rssAfterMiB?: number;
  outcomes: Record<string, number>;
  failures: Array<{ index: number; failure: string; input: string }>;
  hangs: number[];
  maxCaseMs: number;
  meanCaseMs: number;
  wallSeconds: number;
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Runs one loader format in workers, restarting after a case that exceeds `hangMs`. */
async function fuzzLoaderFormat(format: string, cases: number, seed: number, hangMs: number, tokenizerBin: string): Promise<FormatReport> {
  const t0 = performance.now();
  const report: FormatReport = { format, cases, outcomes: {}, failures: [], hangs: [], maxCaseMs: 0, meanCaseMs: 0, wallSeconds: 0 };
  const bar = progressBar(`fuzz ${format}`, cases, 'cases');
  let start = 0;
  let totalMs = 0;
  const merge = (r: FuzzWorkerResult) => {
    for (const [k, v] of Object.entries(r.outcomes)) report.outcomes[k] = (report.outcomes[k] ?? 0) + v;
    report.failures.push(...r.failures.slice(0, Math.max(0, 10 - report.failures.length)));
    report.maxCaseMs = Math.max(report.maxCaseMs, r.maxMs);
    totalMs += r.totalMs;
  };
  while (start < cases) {
    const progress = new SharedArrayBuffer(4);
    const view = new Int32Array(progress);
    let partial: FuzzWorkerResult | undefined;
    view[0] = start;
    const data: FuzzWorkerData = { format, start, count: cases - start, seed, tokenizerBin, progress };
    // A heap cap turns an unbounded allocation into a worker crash here instead of a machine out of memory.
    const worker = new Worker(new URL('./lib/fuzz-worker.js', import.meta.url), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
    const outcome = await new Promise<{ result?: FuzzWorkerResult; hungAt?: number; crashedAt?: number; error?: Error }>((done) => {
      let lastIndex = -1;
      let lastMove = performance.now();
      const watch = setInterval(() => {
        const at = Atomics.load(view, 0);
        if (at !== lastIndex) {
          lastIndex = at;
          lastMove = performance.now();
        } else if (performance.now() - lastMove > hangMs) {
          clearInterval(watch);
          void worker.terminate();
          done({ hungAt: at });
        }
      }, 100);
      worker.on('message', (m: { kind: string; done?: number; result?: FuzzWorkerResult }) => {
        if (m.kind === 'progress') {
          bar.update(start + m.done!);
          partial = m.result;
        }
        if (m.kind === 'result') {
          clearInterval(watch);
          done({ result: m.result });
        }
      });
      worker.on('error', (error) => {
        clearInterval(watch);
        done({ crashedAt: Atomics.load(view, 0), error });
      });
    });
    const stoppedAt = outcome.crashedAt ?? outcome.hungAt;
    if (stoppedAt !== undefined) {
      // Keep what the worker last reported; cases after that report and before the stop are counted as unreported.
      if (partial) merge(partial);
      const lost = stoppedAt - start - (partial?.done ?? 0);
      if (lost > 0) report.outcomes.unreported = (report.outcomes.unreported ?? 0) + lost;
    }
    if (outcome.crashedAt !== undefined) {
      report.outcomes.crash = (report.outcomes.crash ?? 0) + 1;
      report.failures.push({ index: outcome.crashedAt, failure: `worker crashed: ${outcome.error?.message}`, input: '(see the case index and seed)' });
      start = outcome.crashedAt + 1;
      continue;
    }
    if (outcome.hungAt !== undefined) {
      report.hangs.push(outcome.hungAt);
      report.outcomes.hang = (report.outcomes.hang ?? 0) + 1;
      start = outcome.hungAt + 1;
      continue;
    }
    merge(outcome.result!);
    start = cases;
  }
  bar.finish();
  const counted = Object.values(report.outcomes).reduce((a, b) => a + b, 0);
  report.meanCaseMs = totalMs / Math.max(1, counted);
  report.wallSeconds = (performance.now() - t0) / 1000;
  return report;
}

async function fuzzHttp(cases: number, seed: number, boundMs: number): Promise<FormatReport> {
  const t0 = performance.now();
  const { openServing } = await import('../serve/open-serving.js');
  const { startServer } = await import('../serve/server.js');
  const serving = await openServing({ model: 'stories260k', dtype: 'f32', ctx: 64 });
  const server = await startServer({ engine: serving.engine, chatTemplate: serving.chatTemplate, port: 0, maxQueue: 4, maxBodyBytes: 4 << 10, requestTimeoutMs: 20_000, defaultMaxTokens: 4 });
  const report: FormatReport = { format: 'http', cases, outcomes: {}, failures: [], hangs: [], maxCaseMs: 0, meanCaseMs: 0, wallSeconds: 0 };
  const bar = progressBar('fuzz http', cases, 'requests');
  let totalMs = 0;
  try {
    const inputs = fc.sample(httpCase, { numRuns: cases, seed });
    for (let i = 0; i < inputs.length; i++) {
      const r = await runHttpCase(server.url, serving.engine.modelId, inputs[i]!, boundMs);
      const key = r.failure ? `failure:${r.outcome}` : r.outcome;
      report.outcomes[key] = (report.outcomes[key] ?? 0) + 1;
      if (r.outcome === 'no-answer') report.hangs.push(i);
      if (r.failure && report.failures.length < 10) report.failures.push({ index: i, failure: r.failure, input: JSON.stringify(inputs[i], (_, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)).slice(0, 400) });
      report.maxCaseMs = Math.max(report.maxCaseMs, r.ms);
      totalMs += r.ms;
      bar.update(i + 1);
    }
    // The server must still answer normally after everything.
    const after = await runHttpCase(server.url, serving.engine.modelId, { method: 'POST', path: '/v1/completions', contentType: 'application/json', body: { kind: 'json', value: { model: '$MODEL', prompt: 'Once upon a time', max_tokens: 4 } } });
    report.outcomes[`after:${after.outcome}`] = 1;
    if (after.failure) report.failures.push({ index: -1, failure: `after the run: ${after.failure}`, input: 'plain completion' });
  } finally {
    bar.finish();
    await server.close();
    serving.close();
  }
  report.meanCaseMs = totalMs / cases;
  report.wallSeconds = (performance.now() - t0) / 1000;
  return report;
}

export async function main(argv: string[]): Promise<number> {
  const cases = Number(arg(argv, 'cases') ?? 10_000);
  const seed = Number(arg(argv, 'seed') ?? 8);
  const hangMs = Number(arg(argv, 'hang-ms') ?? 10_000);
  const formats = (arg(argv, 'formats') ?? [...LOADER_FORMATS, 'http'].join(',')).split(',');
  const out = resolve(arg(argv, 'out') ?? join(repoRoot(), 'bench', 'results', 'fuzz.json'));
  const tokenizerBin = join(repoRoot(), 'models', 'stories260k', 'tokenizer.bin');
  let peakRss = process.memoryUsage().rss;
  const rssStart = peakRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  const reports: FormatReport[] = [];
  try {
    for (const f of formats) {
      reports.push(f === 'http' ? await fuzzHttp(cases, seed, 15_000) : await fuzzLoaderFormat(f, cases, seed, hangMs, tokenizerBin));
      reports.at(-1)!.rssAfterMiB = +(process.memoryUsage().rss / 2 ** 20).toFixed(1);
    }
  } finally {
    clearInterval(sampler);
  }
  const failed = (r: FormatReport) => Object.entries(r.outcomes).filter(([k]) => k.startsWith('failure') || k === 'hang' || k === 'crash').reduce((a, [, v]) => a + v, 0);
  console.log('\n| format | cases | loaded / 2xx | typed errors / 4xx | failures | hangs | max ms/case | mean ms/case |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of reports) {
    const ok = Object.entries(r.outcomes).filter(([k]) => k === 'loaded' || k.startsWith('200')).reduce((a, [, v]) => a + v, 0);
    const typed = Object.entries(r.outcomes).filter(([k]) => /Error$/.test(k) || /^4\d\d/.test(k)).reduce((a, [, v]) => a + v, 0);
    console.log(`| ${r.format} | ${r.cases} | ${ok} | ${typed} | ${failed(r)} | ${r.hangs.length} | ${r.maxCaseMs.toFixed(1)} | ${r.meanCaseMs.toFixed(2)} |`);
    for (const f of r.failures) console.log(`    failure #${f.index}: ${f.failure}\n      input ${f.input}`);
  }
  const mib = (b: number) => +(b / 2 ** 20).toFixed(1);
  writeJsonReport(out, {
    bench: 'fuzz', date: new Date().toISOString(), seed, casesPerFormat: cases, caseBoundMs: CASE_BOUND_MS, hangMs,
    rssMiB: { start: mib(rssStart), end: mib(process.memoryUsage().rss), peak: mib(peakRss) },
    formats: reports,
  }, await probeAdapter());
  console.log(`RSS start ${mib(rssStart)} MiB, end ${mib(process.memoryUsage().rss)} MiB, peak ${mib(peakRss)} MiB\nwrote ${out}`);
  return reports.some((r) => failed(r) > 0) ? 1 : 0;
}

runIfMain(import.meta.url, main);
