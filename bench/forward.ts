// Forward-pass throughput of the executor: prefill and decode tokens/s, f32 vs f16 weights, on the
// embedded stories260K model (or --model <llama2.c .bin>). Warm-up first; GPU time from timestamp
// queries when the device offers them, wall time always. Prints a table and writes
// bench/results/forward.json.
//
//   node dist/bench/forward.js [--model file.bin] [--prefill 256] [--decode 128] [--repeats 5] [--dtype f32,f16] [--out file] [--profile] [--attention auto|keys|rows]
import { join, resolve } from 'node:path';
import { loadLlama2c } from '../loaders/llama2c.js';
import { openNodeDevice } from '../node/gpu.js';
import { Executor } from '../runtime/executor.js';
import type { ExecutorDType } from '../runtime/executor-options.js';
import { GpuTimer } from '../runtime/profiler.js';
import { argmax } from '../runtime/sampler.js';
import { repoRoot } from '../loaders/datasets.js';
import { opTimes } from '../eval/profile.js';
import { runIfMain, writeJsonReport, gitCommit } from './lib/report.js';

interface Args {
  model: string;
  prefill: number;
  decode: number;
  repeats: number;
  dtypes: ExecutorDType[];
  out: string;
  /** Also print a per-op GPU time breakdown (each op in its own timed pass). */
  profile: boolean;
  attention: 'auto' | 'keys' | 'rows';
}

export interface ForwardBenchRow {
  dtype: ExecutorDType;
  prefillTokens: number;
  /** Median over repeats of prefill tokens / wall seconds (submit to logits on the CPU). */
  prefillTokPerSec: number;
  /** Same, GPU pass time only (timestamp queries); null without them. */
  prefillGpuTokPerSec: number | null;
  decodeTokens: number;
  /** Greedy decode: forward(1 token) + logits readback + argmax per token, median over repeats. */
  decodeTokPerSec: number;
  decodeGpuTokPerSec: number | null;
  decodeMsPerToken: number;
}

function parseArgs(argv: string[]): Args {
  const root = repoRoot();
  const args: Args = {
    model: join(root, '..', 'shared', 'models', 'stories260K', 'model.bin'),
    prefill: 256,
    decode: 128,
    repeats: 5,
    dtypes: ['f32', 'f16'],
    out: join(root, 'bench', 'results', 'forward.json'),
    profile: false,
    attention: 'auto',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]!;
    if (key === '--profile') {
      args.profile = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`forward bench: ${key} needs a value`);
    i++;
    if (key === '--model') args.model = resolve(value);
    else if (key === '--prefill') args.prefill = Number(value);
    else if (key === '--decode') args.decode = Number(value);
    else if (key === '--repeats') args.repeats = Number(value);
    else if (key === '--dtype') args.dtypes = value.split(',') as ExecutorDType[];
    else if (key === '--out') args.out = resolve(value);
    else if (key === '--attention' && ['auto', 'keys', 'rows'].includes(value)) args.attention = value as Args['attention'];
    else throw new Error(`forward bench: unknown option ${key} (--model --prefill --decode --repeats --dtype --out --profile --attention auto|keys|rows)`);
  }
  for (const k of ['prefill', 'decode', 'repeats'] as const) {
    if (!Number.isInteger(args[k]) || args[k] < 1) throw new Error(`forward bench: --${k} must be a positive integer`);
  }
  return args;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** GPU time per op for one prefill and for 32 decode steps, each op timed in its own pass (eval/profile.ts). */
async function printProfile(ex: Executor, timer: GpuTimer, prompt: number[], dtype: ExecutorDType): Promise<void> {
  const t = await opTimes(ex, timer, prompt, 32);
  ex.setTimer(timer);
  console.log(`profile ${dtype}: GPU ms per op (prefill of ${prompt.length} tokens | one decode step after it)`);
  const labels = [...new Set([...Object.keys(t.prefill), ...Object.keys(t.decode)])];
  labels.sort((a, b) => (t.prefill[b] ?? 0) - (t.prefill[a] ?? 0));
  for (const l of labels) console.log(`  ${l.padEnd(16)} ${(t.prefill[l] ?? 0).toFixed(3).padStart(9)} | ${(t.decode[l] ?? 0).toFixed(3).padStart(8)}`);
  console.log(`  ${'total'.padEnd(16)} ${t.prefillTotal.toFixed(3).padStart(9)} | ${t.decodeTotal.toFixed(3).padStart(8)}`);
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const gpu = await openNodeDevice();
  const model = loadLlama2c(args.model, 'stories260k');
  const c = model.config;
  const maxSeqLen = Math.min(c.maxSeqLen, Math.max(args.prefill + 32, args.decode + 1));
  if (args.prefill + 32 > c.maxSeqLen || args.decode + 1 > c.maxSeqLen) throw new Error(`forward bench: --prefill/--decode exceed the model context ${c.maxSeqLen}`);
  const prompt = Array.from({ length: args.prefill }, (_, i) => (i === 0 ? c.bosId : 3 + ((i * 7919) % (c.vocabSize - 3))));
  const timer = GpuTimer.create(gpu);
  const rows: ForwardBenchRow[] = [];
  try {
    for (const dtype of args.dtypes) {
      if (dtype === 'f16' && !gpu.features.shaderF16) {
        console.log(`skipping f16: the device lacks shader-f16`);
        continue;
      }
      const ex = await Executor.create(gpu, model, { dtype, maxSeqLen, maxBatchTokens: args.prefill, attention: args.attention });
      ex.setTimer(timer);
      const prefillWall: number[] = [], prefillGpu: number[] = [], decodeWall: number[] = [], decodeGpu: number[] = [];
      for (let r = -1; r < args.repeats; r++) { // r = -1: warm-up (pipeline compilation, bind groups)
        ex.reset();
        await timer?.read();
        let t0 = performance.now();
        await ex.forward(prompt);
        await ex.logits();
        const pw = (performance.now() - t0) / 1000;
        const pg = timer ? (await timer.read()).seconds : NaN;
        ex.reset();
        await ex.forward([c.bosId]);
        let next = argmax(await ex.logits());
        await timer?.read();
        t0 = performance.now();
        for (let i = 0; i < args.decode; i++) {
          await ex.forward([next]);
          next = argmax(await ex.logits());
        }
        const dw = (performance.now() - t0) / 1000;
        const dg = timer ? (await timer.read()).seconds : NaN;
        if (r < 0) continue;
        prefillWall.push(pw);
        prefillGpu.push(pg);
        decodeWall.push(dw);
        decodeGpu.push(dg);
      }
      if (args.profile && timer) await printProfile(ex, timer, prompt, dtype);
      ex.destroy();
      rows.push({
        dtype,
        prefillTokens: args.prefill,
        prefillTokPerSec: args.prefill / median(prefillWall),
        prefillGpuTokPerSec: timer ? args.prefill / median(prefillGpu) : null,
        decodeTokens: args.decode,
        decodeTokPerSec: args.decode / median(decodeWall),
        decodeGpuTokPerSec: timer ? args.decode / median(decodeGpu) : null,
        decodeMsPerToken: (median(decodeWall) * 1000) / args.decode,
      });
    }
  } finally {
    timer?.destroy();
    model.close();
  }

  const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(0).padStart(8));
  console.log(`forward  ${model.id} (dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize})  prefill ${args.prefill} tok, decode ${args.decode} tok, median of ${args.repeats}`);
  console.log('dtype   prefill tok/s  (gpu)     decode tok/s  (gpu)   ms/token');
  for (const r of rows) {
    console.log(`${r.dtype.padEnd(6)} ${fmt(r.prefillTokPerSec)}   ${fmt(r.prefillGpuTokPerSec)}   ${fmt(r.decodeTokPerSec)}   ${fmt(r.decodeGpuTokPerSec)}   ${r.decodeMsPerToken.toFixed(2).padStart(7)}`);
  }
  const base = rows.find((r) => r.dtype === 'f32');
  for (const r of rows.filter((x) => x !== base)) {
    if (base) console.log(`  ${r.dtype} vs f32: prefill x${(r.prefillTokPerSec / base.prefillTokPerSec).toFixed(2)}, decode x${(r.decodeTokPerSec / base.decodeTokPerSec).toFixed(2)}`);
  }
  console.log(`  device ${gpu.describe()} | timer ${timer ? 'timestamp-query + wall' : 'wall'} | commit ${gitCommit()}`);
  const report = {
    bench: 'forward',
    date: new Date().toISOString(),
    adapter: gpu.describe(),
    adapterInfo: gpu.adapterInfo,
    commit: gitCommit(),
    timer: timer ? 'timestamp-query' : 'wall',
    model: { id: model.id, file: args.model, dim: c.dim, layers: c.nLayers, vocab: c.vocabSize },
    settings: { prefill: args.prefill, decode: args.decode, repeats: args.repeats, attention: args.attention },
    results: rows,
  };
  writeJsonReport(args.out, report, gpu.describe());
  console.log(`  wrote ${args.out}`);
  gpu.device.destroy();
  return 0;
}

runIfMain(import.meta.url, main);
