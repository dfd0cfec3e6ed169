// The side path in 8 bits: what int8 L_A / L_B (a scale per rank index, core/lowrank-int8.ts) cost in
// quality and buy in bytes and time, against f16 factors, in one run.
//
//   npm run bench -- lowrank [--part quality|kernels|all] [--model stories260k] [--rank 8]
//                            [--max-windows 48] [--ctx 256] [--rounds N] [--only SHAPE-REGEX] [--out FILE]
// (default FILE: bench/results/lowrank.json; bench/results/lowrank-kernels.json for --part kernels)
//
// quality: one calibration of the model, then ASER artifacts at A8 and A6 with f16 and with int8
//   factors (same statistics, same rank); perplexity on TinyStories and WikiText-2 (gptq protocol), the
//   KL divergence of the int8 artifact's next-token distribution from the f16 one's on the same windows,
//   and `aser flops` of each artifact (side-path share of the bytes over its share of the FLOPs).
// kernels: one decode token through kernels A + B at LLaMA-3-8B shapes (4096², 4096→14336,
//   14336→4096), rank 0 and r = 14, 31, 60 with f16 (or f32 without shader-f16) and int8 factors, fused,
//   and the unfused f16 baseline; every op timed once per round, round-robin, so load from other
//   processes hits all alike; a sample is --reps encodes in one pass. Latency overhead = the op's time
//   over rank 0's in the same round, minus 1; its median over rounds and the spread (min, max) are
//   reported, and the same from the minimum times (the least-disturbed samples), every sample in the JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrateModel, quantizeToArtifact } from '../node/quantize.js';
import { openSession } from '../node/session.js';
import { openNodeDevice } from '../node/gpu.js';
import { loadDatasetText } from '../loaders/datasets.js';
import { perplexityOfTokens } from '../eval/ppl.js';
import { compareToReference, computeKldReference, summarizeKld } from '../eval/kld.js';
import { runFlops } from '../eval/flops-run.js';
import { DEFAULT_LOW_RANK_DTYPE, LOW_RANK_DTYPES, type LowRankDtype, type QuantizedLinear } from '../core/quantized.js';
import { withInt8LowRank } from '../core/lowrank-int8.js';
import { packW4 } from '../core/w4-layout.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { createBuffer } from '../runtime/buffers.js';
import { createQuantizedLinear, type QuantizedLinearOp } from '../runtime/quantized-linear.js';
import { isCpuAdapter } from '../kernels/matmul_dense.js';
import { BenchTimer } from './gpu-timer.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

const DATASETS = ['tinystories', 'wikitext2'] as const;
const A_BITS = [8, 6] as const;

interface QualityRow {
  aBits: number;
  lowRankDtype: LowRankDtype;
  ppl: Record<string, number>;
  /** Relative perplexity change against the f16-factor artifact of the same aBits. */
  pplChange: Record<string, number>;
  /** KL divergence from the f16-factor artifact (absent on the f16 rows, the reference). */
  kld: Record<string, { mean: number; p99: number; sameTop: number }>;
  flopsPct: number;
  bytePct: number;
  bytesPerFlopsShare: number;
  sideBytes: number;
}

async function quality(model: string, rank: number, maxWindows: number, ctx: number, root: string): Promise<QualityRow[]> {
  const req = { model, method: 'aser' as const, wbits: 4, rank, calib: 'tinystories', seed: 0 };
  const stats = await calibrateModel(req);
  const rows: QualityRow[] = [];
  for (const aBits of A_BITS) {
    const refs = new Map<string, Awaited<ReturnType<typeof computeKldReference>>>();
    for (const lowRankDtype of LOW_RANK_DTYPES) {
      const dir = join(root, `a${aBits}-${lowRankDtype}`);
      await quantizeToArtifact({ ...req, abits: aBits, out: dir, lowRankDtype }, { stats });
      const f = runFlops({ artifact: dir }).accounting.total;
      const row: QualityRow = {
        aBits, lowRankDtype, ppl: {}, pplChange: {}, kld: {},
        flopsPct: f.flopsPct, bytePct: f.bytePct, bytesPerFlopsShare: f.bytesPerFlopsShare, sideBytes: f.sideBytes,
      };
      const session = await openSession({ model, artifact: dir });
      try {
        for (const dataset of DATASETS) {
          const ids = session.tokenizer.encode(loadDatasetText(dataset).text, { bos: true });
          row.ppl[dataset] = (await perplexityOfTokens(session.executor, ids, session.tokenizer.bosId, { ctx, protocol: 'gptq', maxWindows })).ppl;
          const spec = { ctx, protocol: 'gptq' as const, maxWindows: Math.min(maxWindows, 40) };
          if (lowRankDtype === 'f16') refs.set(dataset, await computeKldReference(session.executor, ids, session.tokenizer.bosId, spec));
          else {
            const k = summarizeKld(await compareToReference(session.executor, refs.get(dataset)!));
            row.kld[dataset] = { mean: k.kldMean, p99: k.kldP99, sameTop: k.sameTopPct / 100 };
          }
        }
      } finally {
        session.close();
      }
      const base = rows.find((r) => r.aBits === aBits && r.lowRankDtype === 'f16');
      for (const d of DATASETS) row.pplChange[d] = base ? row.ppl[d]! / base.ppl[d]! - 1 : 0;
      rows.push(row);
      console.error(`A${aBits} ${lowRankDtype}: ${DATASETS.map((d) => `${d} ppl ${row.ppl[d]!.toFixed(4)} (${(row.pplChange[d]! * 100).toFixed(3)} %)`).join(', ')}; side bytes / FLOPs share ${row.bytesPerFlopsShare.toFixed(2)}×`);
    }
  }
  return rows;
}

// ---------------------------------------------------------------- kernels
interface Shape { name: string; inF: number; outF: number }
const SHAPES: Shape[] = [
  { name: 'q/o 4096→4096', inF: 4096, outF: 4096 },
  { name: 'gate/up 4096→14336', inF: 4096, outF: 14336 },
  { name: 'down 14336→4096', inF: 14336, outF: 4096 },
];
const RANKS = [14, 31, 60];

interface KernelVariant { name: string; rank: number; factors: 'int8' | 'float'; fused: boolean }

function variants(): KernelVariant[] {
  const v: KernelVariant[] = [{ name: 'r0', rank: 0, factors: 'float', fused: true }];
  for (const rank of RANKS) {
    v.push({ name: `fused float r${rank}`, rank, factors: 'float', fused: true });
    v.push({ name: `fused int8 r${rank}`, rank, factors: 'int8', fused: true });
    v.push({ name: `unfused float r${rank}`, rank, factors: 'float', fused: false });
  }
  return v;
}

function seeded(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 2 * scale;
  }
  return out;
}

/** The shape's layer at each variant's rank and factor storage; one packed weight shared by all of them. */
function syntheticLayers(s: Shape, vs: KernelVariant[]): QuantizedLinear[] {
  const q = new Int8Array(s.inF * s.outF);
  let r = 12345;
  for (let i = 0; i < q.length; i++) {
    r = (Math.imul(r, 1664525) + 1013904223) >>> 0;
    q[i] = ((r >>> 16) % 15) - 7;
  }
  const base = { inFeatures: s.inF, outFeatures: s.outF, wBits: 4, aBits: 8, qweight: packW4(q, s.outF, s.inF), wScale: seeded(s.outF, 2, 0.01).map((v) => Math.abs(v) + 1e-3) };
  const byRank = new Map<number, QuantizedLinear>();
  return vs.map((v) => {
    let layer = byRank.get(v.rank);
    if (!layer) {
      layer = { ...base, rank: v.rank, la: v.rank ? seeded(s.inF * v.rank, 3, 0.05) : undefined, lb: v.rank ? seeded(v.rank * s.outF, 4, 0.05) : undefined };
      byRank.set(v.rank, layer);
    }
    return v.factors === 'int8' ? withInt8LowRank(layer) : layer;
  });
}

interface KernelRow {
  shape: string;
  inF: number;
  outF: number;
  variant: string;
  /** What the op's factors are on this device: int8, f16, f32, or none. */
  lowRank: string;
  rank: number;
  fused: boolean;
  /** Every sample, ms, in round order (sample i of every variant of a shape is from round i). */
  samplesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** r·(in+out)/(in·out), %. */
  flopsPct: number;
  /** Per round: time / rank 0's time − 1, %; its median, min and max. */
  latencyOverheadPct?: { median: number; min: number; max: number; perRound: number[] };
  /** median latency overhead / FLOPs overhead. */
  overheadPerFlopsShare?: number;
  /** From the least-disturbed samples: min time / rank 0's min time − 1, %, and that over the FLOPs overhead. */
  minOverheadPct?: number;
  minOverheadPerFlopsShare?: number;
}

const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function kernels(rounds: number, reps: number, only?: RegExp): Promise<{ rows: KernelRow[]; adapter: string; timer: string; loadavgBefore: number[] }> {
  const loadavgBefore = loadavg().map((x) => +x.toFixed(2));
  const gpu = await openNodeDevice();
  const cache = new PipelineCache(gpu.device);
  const timer = new BenchTimer(gpu);
  const rows: KernelRow[] = [];
  try {
    for (const s of SHAPES.filter((x) => !only || only.test(x.name))) {
      const vs = variants();
      const layers = syntheticLayers(s, vs);
      const ops: QuantizedLinearOp[] = vs.map((v, i) => createQuantizedLinear(gpu, cache, layers[i]!, { label: `${s.name} ${v.name}`, maxTokens: 1, fused: v.fused }));
      const x = createBuffer(gpu.device, s.inF * 4, 'bench/x');
      gpu.device.queue.writeBuffer(x, 0, seeded(s.inF, 7, 1));
      const y = createBuffer(gpu.device, s.outF * 4, 'bench/y');
      try {
        const enc = ops.map((op) => (p: GPUComputePassEncoder) => op.encode(p, x, y, 1));
        for (const e of enc) await timer.sample(e, 1); // compile and warm up
        // A sample is `reps` encodes in one pass (ms per encode): fewer samples that one descheduling spoils.
        const samples = vs.map(() => [] as number[]);
        for (let r = 0; r < rounds; r++) {
          for (const [i, e] of enc.entries()) samples[i]!.push(await timer.sample(e, reps));
          process.stderr.write(`\r${s.name}: round ${r + 1}/${rounds}`);
        }
        process.stderr.write('\n');
        const base = samples[0]!;
        vs.forEach((v, i) => {
          const xs = samples[i]!;
          const flopsPct = (100 * v.rank * (s.inF + s.outF)) / (s.inF * s.outF);
          const row: KernelRow = {
            shape: s.name, inF: s.inF, outF: s.outF, variant: v.name, lowRank: ops[i]!.lowRank, rank: v.rank, fused: v.fused,
            samplesMs: xs, medianMs: med(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), flopsPct,
          };
          if (v.rank > 0) {
            const perRound = xs.map((t, r) => 100 * (t / base[r]! - 1));
            row.latencyOverheadPct = { median: med(perRound), min: Math.min(...perRound), max: Math.max(...perRound), perRound };
            row.overheadPerFlopsShare = row.latencyOverheadPct.median / flopsPct;
            row.minOverheadPct = 100 * (row.minMs / Math.min(...base) - 1);
            row.minOverheadPerFlopsShare = row.minOverheadPct / flopsPct;
          }
          rows.push(row);
        });
      } finally {
        for (const op of ops) op.destroy();
        x.destroy();
        y.destroy();
      }
    }
    return { rows, adapter: `${gpu.describe()}${isCpuAdapter(gpu) ? ' (CPU adapter)' : ''}`, timer: timer.kind, loadavgBefore };
  } finally {
    gpu.device.destroy();
  }
}

export async function main(argv: string[]): Promise<number> {
  const get = (name: string, def: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1]! : def;
  };
  const part = get('part', 'all');
  if (!['quality', 'kernels', 'all'].includes(part)) {
    console.error(`--part ${part}: expected quality, kernels or all`);
    return 2;
  }
  const model = get('model', 'stories260k');
  const rank = Number(get('rank', '8'));
  const maxWindows = Number(get('max-windows', '48'));
  const ctx = Number(get('ctx', '256'));
  // Each part alone writes its own file, so running one never drops the other's samples.
  const out = get('out', part === 'kernels' ? 'bench/results/lowrank-kernels.json' : 'bench/results/lowrank.json');
  const adapter = await probeAdapter();
  const root = mkdtempSync(join(tmpdir(), 'aser-lowrank-'));
  try {
    const report: Record<string, unknown> = {
      note: 'shared 2-core machine loaded by other sessions: absolute times vary between runs; ratios within one run (same rounds) hold',
      defaultLowRankDtype: DEFAULT_LOW_RANK_DTYPE,
    };
    if (part !== 'kernels') {
      const rows = await quality(model, rank, maxWindows, ctx, root);
      report.quality = { model, method: 'aser', rank, ctx, maxWindows, datasets: DATASETS, rows };
      console.log(`\n${model}, ASER W4 rank ${rank}: L_A/L_B f16 vs int8 (ctx ${ctx}, ≤ ${maxWindows} windows; KLD of int8 from f16 factors)\n`);
      console.log(`| A | L_A/L_B | ${DATASETS.map((d) => `${d} ppl | Δ %`).join(' | ')} | ${DATASETS.map((d) => `${d} KLD`).join(' | ')} | +FLOPs % | side bytes % | bytes/FLOPs share |`);
      console.log(`|---|---|${DATASETS.map(() => '---|---|').join('')}${DATASETS.map(() => '---|').join('')}---|---|---|`);
      for (const r of rows) {
        console.log(`| ${r.aBits} | ${r.lowRankDtype} | ${DATASETS.map((d) => `${r.ppl[d]!.toFixed(4)} | ${(r.pplChange[d]! * 100).toFixed(3)}`).join(' | ')} | ` +
          `${DATASETS.map((d) => (r.kld[d] ? r.kld[d]!.mean.toExponential(2) : '—')).join(' | ')} | ${r.flopsPct.toFixed(2)} | ${r.bytePct.toFixed(2)} | ${r.bytesPerFlopsShare.toFixed(2)}× |`);
      }
    }
    if (part !== 'quality') {
      const rounds = Number(get('rounds', '15'));
      const only = argv.includes('--only') ? new RegExp(get('only', '')) : undefined;
      const reps = Number(get('reps', '3'));
      const k = await kernels(rounds, reps, only);
      report.kernels = { tokens: 1, rounds, repsPerSample: reps, ranks: RANKS, timer: k.timer, adapter: k.adapter, loadavgBefore: k.loadavgBefore, rows: k.rows };
      console.log(`\ndecode (1 token), kernels A + B, ${k.adapter}, ${k.timer}, ${rounds} rounds round-robin\n`);
      console.log('| shape | variant | factors | median ms | min–max ms | +FLOPs % | latency overhead % (median, min–max) | overhead / FLOPs share | from min times: overhead %, / FLOPs share |');
      console.log('|---|---|---|---|---|---|---|---|---|');
      for (const r of k.rows) {
        const o = r.latencyOverheadPct;
        console.log(`| ${r.shape} | ${r.variant} | ${r.lowRank} | ${r.medianMs.toFixed(3)} | ${r.minMs.toFixed(3)}–${r.maxMs.toFixed(3)} | ${r.flopsPct.toFixed(2)} | ` +
          `${o ? `${o.median.toFixed(1)} (${o.min.toFixed(1)}–${o.max.toFixed(1)})` : '—'} | ${r.overheadPerFlopsShare !== undefined ? r.overheadPerFlopsShare.toFixed(2) : '—'} | ` +
          `${r.minOverheadPct !== undefined ? `${r.minOverheadPct.toFixed(1)}, ${r.minOverheadPerFlopsShare!.toFixed(2)}` : '—'} |`);
      }
    }
    writeJsonReport(out, report, adapter);
    console.log(`\nwrote ${out}`);
    return 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
