// `aser eval report`: the standard evaluation set in one run, every part cached (node/cache.ts) so an
// interrupted report resumes, then results.json and a self-contained index.html (inline SVG plots):
//   1. perplexity table (eval/ppl-table.ts): fp32 and the quantization methods, W4A8/W4A6
//   2. α sweep (eval/alpha-sweep.ts): ASER's mean rank, +FLOPs and perplexity per α
//   3. KL divergence of RTN and ASER W4A8 to fp32 (eval/kld-run.ts)
//   4. zero-shot (eval/zeroshot-run.ts): fp32 on every task, RTN and ASER on the tasks fp32 does above chance
//   5. FLOPs and memory of the ASER artifact (eval/flops.ts)
//   6. latency profile, side path on vs off (eval/profile-run.ts)
//   7. error spectra: ASER's (eval/spectra.ts; the ranks the α rule takes from them) and the quantizer
//      diagnostics of eval/diagnose.ts (E vs E·S spectra, effective rank, output error per method)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readArtifactManifest } from '../loaders/artifact-manifest.js';
import { writeBytesAtomic } from '../loaders/atomic.js';
import { formatPplTableMarkdown, runPplTable, pplCell, type PplTable } from './ppl-table.js';
import { runAlphaSweep, type AlphaSweep } from './alpha-sweep.js';
import { formatKldMarkdown, runKld, type KldRunResult } from './kld-run.js';
import { formatZeroshotMarkdown, runZeroshot, type ZeroshotTaskResult } from './zeroshot-run.js';
import { renderReportHtml } from './report-html.js';
import { flopsAccounting, manifestLinears, type FlopsAccounting } from './flops.js';
import { runProfile, type ProfileRunResult } from './profile-run.js';
import { computeSpectra, type SpectraResult } from './spectra.js';
import { runDiagnose, type Diagnosis } from './diagnose.js';
import { modelHash } from '../node/artifact-cache.js';
import { openResultCache } from '../node/cache.js';
import type { PplProtocol } from './ppl.js';

export interface ReportOptions {
  model: string;
  /** ppl table */
  methods: string[];
  datasets: string[];
  abits: number[];
  ctx: number;
  maxWindows: number;
  protocol: PplProtocol;
  /** α sweep (empty: skipped) on the first dataset */
  alphas: number[];
  /** KL divergence windows (llama.cpp protocol, first dataset) */
  kldWindows: number;
  /** zero-shot */
  tasks: string[];
  zeroshotLimit: number;
  /** profile */
  prefill: number;
  decode: number;
  repeats: number;
  cache: boolean;
  calib?: string;
  calibSamples?: number;
  calibLen?: number;
  seed?: number;
  /** One line per stage and sub-step. */
  onProgress?: (msg: string) => void;
  /** Per-window / per-document progress of long stages. */
  onWindow?: (phase: string, done: number, total: number) => void;
}

export interface ReportResults {
  model: string;
  createdAt: string;
  settings: Omit<ReportOptions, 'onProgress' | 'onWindow'>;
  ppl: PplTable;
  alpha: AlphaSweep | null;
  kld: KldRunResult[];
  zeroshot: { model: string; tasks: ZeroshotTaskResult[] }[];
  flops: { method: string; accounting: FlopsAccounting };
  profile: ProfileRunResult;
  spectra: SpectraResult;
  diagnose: Diagnosis;
  /** Seconds per stage in this run (cached stages take almost none). */
  timings: Record<string, number>;
  seconds: number;
}

export async function runReport(o: ReportOptions): Promise<ReportResults> {
  const t0 = performance.now();
  const say = o.onProgress ?? (() => {});
  const timings: Record<string, number> = {};
  const stages = 7;
  let stage = 0;
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    say(`report [${++stage}/${stages}] ${name}`);
    const s = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = (performance.now() - s) / 1000;
    }
  };
  const cache = openResultCache({ enabled: o.cache });
  const calibration = { calib: o.calib ?? 'tinystories', calibSamples: o.calibSamples ?? 64, calibLen: o.calibLen ?? 256, seed: o.seed ?? 0 };
  const common = { model: o.model, protocol: o.protocol, ctx: o.ctx, maxWindows: o.maxWindows, cache: o.cache, onProgress: say, ...calibration };
  for (const m of ['fp', 'rtn', 'aser']) if (!o.methods.includes(m)) throw new RangeError(`the report needs fp, rtn and aser among the methods (got ${o.methods.join(', ')})`);
  if (!o.abits.includes(8)) throw new RangeError('the report needs W4A8 among the activation widths (abits 8)');

  const ppl = await timed('perplexity table', () => runPplTable({ ...common, methods: o.methods, datasets: o.datasets, abits: o.abits }));
  const alpha = o.alphas.length ? await timed('α sweep', () => runAlphaSweep({ ...common, alphas: o.alphas, datasets: [o.datasets[0]!] })) : null;
  const artifactOf = (method: 'rtn' | 'aser') => pplCell(ppl, method, 8, o.datasets[0]!)!.artifact!;
  const kldData = o.datasets.includes('tinystories') ? 'tinystories' : o.datasets[0]!;
  const kld = await timed('KL divergence', async () => {
    const out: KldRunResult[] = [];
    for (const method of ['rtn', 'aser'] as const) {
      out.push(await runKld({ model: o.model, artifact: artifactOf(method), dataset: kldData, ctx: o.ctx, protocol: 'llamacpp', maxWindows: o.kldWindows, cache, onWindow: o.onWindow }));
    }
    return out;
  });
  const zeroshot = await timed('zero-shot', async () => {
    const fp = await runZeroshot({ model: o.model, tasks: o.tasks, limit: o.zeroshotLimit, cache, onDoc: o.onWindow });
    const meaningful = fp.filter((t) => t.aboveChance && !t.fixture).map((t) => t.task);
    const rows = [{ model: 'fp32', tasks: fp }];
    if (meaningful.length) {
      for (const method of ['rtn', 'aser'] as const) {
        rows.push({ model: `${method === 'rtn' ? 'RTN' : 'ASER'} W4A8`, tasks: await runZeroshot({ model: o.model, artifact: artifactOf(method), tasks: meaningful, limit: o.zeroshotLimit, cache, onDoc: o.onWindow }) });
      }
    }
    return rows;
  });
  const flops = await timed('FLOPs and memory', async () => {
    const manifest = readArtifactManifest(artifactOf('aser'));
    return { method: `ASER W${manifest.wBits}A${manifest.aBits}`, accounting: flopsAccounting(manifestLinears(manifest.layers), { wBits: manifest.wBits }) };
  });
  const profile = await timed('latency profile', () => runProfile({ model: o.model, artifact: artifactOf('aser'), prefill: o.prefill, decode: o.decode, repeats: o.repeats, onStep: (w) => say(`profile: ${w}`) }));
  const { spectra, diagnose } = await timed('singular spectra', async () => ({
    spectra: await computeSpectra({ model: o.model, ...calibration, cache }),
    diagnose: await cache.getOrCompute('diagnose', { modelHash: modelHash(o.model), ...calibration }, () => runDiagnose({ model: o.model, ...calibration, onProgress: say })),
  }));
  const { onProgress: _p, onWindow: _w, ...settings } = o;
  return { model: o.model, createdAt: new Date().toISOString(), settings, ppl, alpha, kld, zeroshot, flops, profile, spectra, diagnose, timings, seconds: (performance.now() - t0) / 1000 };
}

/** The report's main tables as markdown (what a closing note quotes). */
export function reportSummaryMarkdown(r: ReportResults): string {
  return [
    `# ${r.model}: evaluation summary`, '', '## Perplexity', '', formatPplTableMarkdown(r.ppl),
    '## KL divergence to fp32', '', formatKldMarkdown(r.kld), '',
    ...r.zeroshot.flatMap((z) => [`## Zero-shot: ${z.model}`, '', formatZeroshotMarkdown(z.tasks), '']),
  ].join('\n');
}

/** results.json, summary.md and the self-contained index.html, each written atomically into `dir`. */
export async function writeReport(dir: string, r: ReportResults): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeBytesAtomic(join(dir, 'results.json'), JSON.stringify(r, null, 2) + '\n');
  writeBytesAtomic(join(dir, 'summary.md'), reportSummaryMarkdown(r));
  writeBytesAtomic(join(dir, 'index.html'), await renderReportHtml(r));
}
