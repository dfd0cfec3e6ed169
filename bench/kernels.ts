// Matmul kernel benchmark: W4A8 fused (kernel A + kernel B) vs f32 and f16 dense, the side path off vs
// on at ranks 5/14/31/50/60, fused vs unfused, at stories260K and LLaMA-3-8B linear shapes, decode
// (1 token) and prefill (128, 512 tokens); at decode also kernel B's GEMV with each inner product
// (`w4a8 fused r0 gemv:<formulation>`, beside the adapter's default) and the W8 variant (per-channel int8
// weights, `w8a8 fused r0`) at gate/up and a classifier-like shape. Every number comes from the same
// run on the same adapter, beside this adapter's measured copy bandwidth and dot4I8Packed / f32-fma
// throughput. Prints a table and writes bench/results/kernels.json.
//
//   node dist/bench/kernels.js [--quick] [--only REGEX] [--out bench/results/kernels.json]
//
// --only keeps the cases whose "<shape> <tokens>tok <variant>" matches REGEX (e.g. --only '1tok
// (f32 dense|w4a8 fused r0|w8a8)' for the decode GEMVs); such a partial run writes JSON only with --out.
//
// Shapes are written in→out (a linear [out, in] reading `in` features). Times are medians of the
// samples (GPU timestamp queries when the device has them, else wall clock around submit→done); the
// minimum is recorded too. Memory traffic counted for GB/s: weights (incl. scales, L_A, L_B) read once,
// x read once, y written once; intermediates (packed activations, t) are not counted.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { openNodeDevice } from '../node/gpu.js';
import type { GpuContext } from '../core/gpu.js';
import type { LinearOp } from '../runtime/linear.js';
import { PipelineCache } from '../runtime/pipelines.js';
import { createBuffer, uniformBuffer } from '../runtime/buffers.js';
import { createDenseLinear } from '../runtime/dense-linear.js';
import { createQuantizedLinear, type QuantizedLinearOp } from '../runtime/quantized-linear.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { isCpuAdapter } from '../kernels/matmul_dense.js';
import { packW4, w4Blocks, W4_BLOCK_BYTES } from '../core/w4-layout.js';
import { packW8, W8_BLOCK_BYTES } from '../core/w8-layout.js';
import { w4MatmulTiling, type W4GemvInner } from '../kernels/w4a8_matmul.js';
import { BenchTimer } from './gpu-timer.js';
import { gitCommit, runIfMain, writeJsonReport } from './lib/report.js';

interface Shape {
  name: string;
  inF: number;
  outF: number;
  model: 'stories260k' | 'llama3-8b';
}

const SHAPES: Shape[] = [
  { name: 'attn 64→64', inF: 64, outF: 64, model: 'stories260k' },
  { name: 'w1/w3 64→172', inF: 64, outF: 172, model: 'stories260k' },
  { name: 'w2 172→64', inF: 172, outF: 64, model: 'stories260k' },
  { name: 'q/o 4096→4096', inF: 4096, outF: 4096, model: 'llama3-8b' },
  { name: 'gate/up 4096→14336', inF: 4096, outF: 14336, model: 'llama3-8b' },
  { name: 'down 14336→4096', inF: 14336, outF: 4096, model: 'llama3-8b' },
  { name: 'k/v 4096→1024', inF: 4096, outF: 1024, model: 'llama3-8b' },
];
/** A classifier-like W8 shape at decode (LLaMA-3's is 4096→128256; a quarter keeps the run short). */
const CLASSIFIER: Shape = { name: 'classifier 4096→32768', inF: 4096, outF: 32768, model: 'llama3-8b' };
/**
 * Kernel B GEMV formulations timed beside the adapter's default at decode: each inner product with the
 * adapter's tiling, and `dot4 rpt4` = dot4I8Packed with 4 rows per thread, the CPU-adapter GEMV before
 * the SWAR inner product (on CPUs: the "before" of the same run).
 */
interface GemvAlternative {
  name: string;
  inner: W4GemvInner;
  rowsPerThread?: number;
}
const GEMV_ALTERNATIVES: GemvAlternative[] = [
  { name: 'dot4 rpt4', inner: 'dot4', rowsPerThread: 4 },
  { name: 'dot4', inner: 'dot4' },
  { name: 'swar', inner: 'swar' },
  { name: 'imad', inner: 'imad' },
  { name: 'f32', inner: 'f32' },
];
/** W8 GEMV formulations timed beside the adapter's W8 default (SWAR needs 4-bit weights). */
const W8_GEMV_ALTERNATIVES: GemvAlternative[] = [
  { name: 'dot4', inner: 'dot4' },
  { name: 'imad', inner: 'imad' },
  { name: 'f32', inner: 'f32' },
  { name: 'f32 rpt8', inner: 'f32', rowsPerThread: 8 },
];
const RANKS = [5, 14, 31, 50, 60];

type Variant =
  | { kind: 'dense'; dtype: 'f32' | 'f16' }
  /** gemv: kernel B's GEMV formulation forced (default: what w4MatmulTiling picks for the adapter). */
  | { kind: 'w4a8'; rank: number; fused: boolean; gemv?: GemvAlternative }
  | { kind: 'w8a8'; rank: 0; fused: true; gemv?: GemvAlternative };

function variantName(v: Variant): string {
  if (v.kind === 'dense') return `${v.dtype} dense`;
  return `${v.kind} ${v.fused ? 'fused' : 'unfused'} r${v.rank}${v.gemv ? ` gemv:${v.gemv.name}` : ''}`;
}

export interface KernelBenchRow {
  shape: string;
  inF: number;
  outF: number;
  model: string;
  tokens: number;
  variant: string;
  medianMs: number;
  minMs: number;
  samples: number;
  reps: number;
  gbPerS: number;
  gopPerS: number;
  /**
   * Packed weight bytes (w4a8/w8a8) or weight bytes (dense) over the min time, and its fraction of the
   * copy bandwidth (min time too): at LLaMA-shaped decode the copy probe timed round-robin in the same
   * group (`groupCopyGBs`: the same load from other processes), elsewhere the run's copy peak.
   */
  weightGbPerS: number;
  weightBwFraction: number;
  groupCopyGBs?: number;
  /** Fractions of this adapter's measured peaks (copy bandwidth; dot4 throughput for w4a8, fma for dense). */
  bwFraction: number;
  opsFraction: number;
  /** Side path: r·(in+out)/(in·out) and the measured latency over the same layer at rank 0. */
  flopsOverheadPct?: number;
  latencyOverheadPct?: number;
}

interface Peaks {
  copyGBs: number;
  dot4GOPs: number;
  fmaGFLOPs: number;
  /** One empty-ish dispatch (1 workgroup), ms. */
  dispatchMs: number;
}

interface Budget {
  /** Time spent per case (after one warm-up run), ms. */
  caseMs: number;
  maxSamples: number;
}

function seeded(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 2 ** 24 * 2 - 1) * scale;
  }
  return out;
}

function syntheticLayer(inF: number, outF: number, rank: number, wBits: 4 | 8 = 4): QuantizedLinear {
  const q = new Int8Array(inF * outF);
  const levels = wBits === 8 ? 255 : 15;
  let s = 12345;
  for (let i = 0; i < q.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    q[i] = (s >>> 16) % levels - (levels - 1) / 2;
  }
  return {
    inFeatures: inF, outFeatures: outF, wBits, aBits: 8,
    qweight: wBits === 8 ? packW8(q, outF, inF) : packW4(q, outF, inF),
    wScale: seeded(outF, 2, 0.01).map((v) => Math.abs(v) + 1e-3),
    rank,
    la: rank ? seeded(inF * rank, 3, 0.05) : undefined,
    lb: rank ? seeded(rank * outF, 4, 0.05) : undefined,
  };
}

/** Bytes of the weight matrix alone as stored (packed for w4a8/w8a8). */
function weightBytes(v: Variant, s: Shape): number {
  if (v.kind === 'dense') return s.outF * Math.ceil(s.inF / 4) * 4 * (v.dtype === 'f32' ? 4 : 2);
  return s.outF * w4Blocks(s.inF) * (v.kind === 'w8a8' ? W8_BLOCK_BYTES : W4_BLOCK_BYTES);
}

/** Bytes of weights (+ scales and side path) read, x read, y written. */
function bytesMoved(v: Variant, s: Shape, tokens: number, lrBytes: number): number {
  const act = tokens * (s.inF + s.outF) * 4;
  if (v.kind === 'dense') return weightBytes(v, s) + act;
  return weightBytes(v, s) + s.outF * 4 + v.rank * (s.inF + s.outF) * lrBytes + act;
}

function opsDone(v: Variant, s: Shape, tokens: number): number {
  const side = v.kind !== 'dense' ? v.rank * (s.inF + s.outF) : 0;
  return 2 * tokens * (s.inF * s.outF + side);
}

// ---------------------------------------------------------------- peaks
interface CopyProbe {
  /** Bytes read plus written by one encode. */
  bytes: number;
  encode(pass: GPUComputePassEncoder): void;
  destroy(): void;
}

/** The copy probe (bench_probes.wgsl `copy`) with its own buffers: timed inside the decode groups too. */
async function createCopyProbe(gpu: GpuContext, cache: PipelineCache): Promise<CopyProbe> {
  const { device } = gpu;
  const wg = Math.min(256, gpu.limits.maxComputeInvocationsPerWorkgroup);
  const copyBytes = (isCpuAdapter(gpu) ? 64 : 512) * 2 ** 20;
  const copy = await cache.getChecked({ shader: 'bench_probes.wgsl', entryPoint: 'copy', defines: { WG: wg, DOT_CHAINS: 8 }, label: 'bench_probe_copy' });
  const src = createBuffer(device, copyBytes, 'bench/copy-src');
  const dst = createBuffer(device, copyBytes, 'bench/copy-dst');
  const bg = device.createBindGroup({ layout: copy.getBindGroupLayout(0), entries: [
    { binding: 1, resource: { buffer: src } }, { binding: 2, resource: { buffer: dst } }] });
  const groups = Math.ceil(copyBytes / 16 / wg);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  const [cx, cy] = groups <= max ? [groups, 1] : [max, Math.ceil(groups / max)];
  return {
    bytes: 2 * copyBytes,
    encode: (p) => { p.setPipeline(copy); p.setBindGroup(0, bg); p.dispatchWorkgroups(cx, cy); },
    destroy: () => { src.destroy(); dst.destroy(); },
  };
}

async function measurePeaks(gpu: GpuContext, cache: PipelineCache, timer: BenchTimer, copy: CopyProbe, quick: boolean): Promise<Peaks> {
  const { device } = gpu;
  const cpu = isCpuAdapter(gpu);
  const wg = Math.min(256, gpu.limits.maxComputeInvocationsPerWorkgroup);
  const chains = 8;
  const defines = { WG: wg, DOT_CHAINS: chains };
  const spec = (entryPoint: string) => ({ shader: 'bench_probes.wgsl', entryPoint, defines, label: `bench_probe_${entryPoint}` });
  const sink = createBuffer(device, 16, 'bench/sink');
  const tinySrc = createBuffer(device, 16, 'bench/tiny-src');
  const tinyDst = createBuffer(device, 16, 'bench/tiny-dst');
  const iters = cpu ? (quick ? 256 : 1024) : 4096;
  const params = uniformBuffer(device, [iters, 0, 0, 0], 'uuuu', 'bench/probe-params');
  try {
    const tc = await timer.measure((p) => copy.encode(p), { samples: quick ? 3 : 7 });

    const computeGroups = cpu ? 16 : 2048;
    const threads = computeGroups * wg;
    const run = async (entry: string) => {
      const pipe = await cache.getChecked(spec(entry));
      const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [
        { binding: 0, resource: { buffer: params } }, { binding: 3, resource: { buffer: sink } }] });
      return timer.measure((p) => { p.setPipeline(pipe); p.setBindGroup(0, bg); p.dispatchWorkgroups(computeGroups); }, { samples: quick ? 3 : 5 });
    };
    const td = await run('dot4');
    const tf = await run('fma_peak');

    const tiny = await cache.getChecked(spec('copy'));
    const tinyBg = device.createBindGroup({ layout: tiny.getBindGroupLayout(0), entries: [
      { binding: 1, resource: { buffer: tinySrc } }, { binding: 2, resource: { buffer: tinyDst } }] });
    const n = 100;
    const tt = await timer.measure((p) => { p.setPipeline(tiny); p.setBindGroup(0, tinyBg); for (let i = 0; i < n; i++) p.dispatchWorkgroups(1); }, { samples: 5 });
    return {
      copyGBs: copy.bytes / (tc.minMs * 1e6),
      dot4GOPs: (threads * iters * chains * 8) / (td.minMs * 1e6),
      fmaGFLOPs: (threads * iters * chains * 2) / (tf.minMs * 1e6),
      dispatchMs: tt.medianMs / n,
    };
  } finally {
    sink.destroy();
    tinySrc.destroy();
    tinyDst.destroy();
    params.destroy();
  }
}

// ---------------------------------------------------------------- cases
interface OpTiming {
  samples: number[];
  reps: number;
}

/**
 * Times a group of ops (the variants of one shape and token count) round-robin: one sample of each op
 * per round, so a burst of load from other processes hits every variant alike. One warm-up sample each
 * first; an op whose warm-up took more than half the budget keeps that single sample.
 */
async function timeGroup(timer: BenchTimer, encoders: Array<(p: GPUComputePassEncoder) => void>, budget: Budget, ops?: number[]): Promise<OpTiming[]> {
  const out: OpTiming[] = [];
  for (const [i, enc] of encoders.entries()) {
    let first = await timer.sample(enc, 1);
    // A small op that looks slow was most likely descheduled (shared machine) or paid for its pipeline's
    // compilation (the first op of a group): look again. (1e9 ops: the W8 classifier-like GEMV, 2.7e8,
    // kept its compile-laden warm-up as its only sample under 1e8.)
    if (first > budget.caseMs / 2 && (ops?.[i] ?? Infinity) < 1e9) first = Math.min(first, await timer.sample(enc, 1));
    const slow = first > budget.caseMs / 2;
    out.push({ samples: slow ? [first] : [], reps: slow ? 0 : Math.max(1, Math.min(20, Math.ceil(2 / Math.max(first, 1e-3)))) });
  }
  const live = out.map((o, i) => [o, i] as const).filter(([o]) => o.reps > 0);
  if (live.length === 0) return out;
  // Estimate one round from the warm-ups, then fill the group's budget.
  let round = 0;
  for (const [o, i] of live) round += (await timer.sample(encoders[i]!, o.reps)) * o.reps;
  const rounds = Math.max(1, Math.min(budget.maxSamples, Math.floor((budget.caseMs * live.length) / Math.max(round, 1e-3))));
  for (let r = 0; r < rounds; r++) for (const [o, i] of live) o.samples.push(await timer.sample(encoders[i]!, o.reps));
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Plan {
  tokens: number;
  shapes: Shape[];
  variants: Variant[];
}

function plans(quick: boolean, defaultInner: W4GemvInner, defaultInnerW8: W4GemvInner): Plan[] {
  const stories = SHAPES.filter((s) => s.model === 'stories260k');
  const llama = SHAPES.filter((s) => s.model === 'llama3-8b');
  const square = llama.filter((s) => s.inF === 4096 && s.outF === 4096);
  const all: Variant[] = [
    { kind: 'dense', dtype: 'f32' },
    { kind: 'dense', dtype: 'f16' },
    { kind: 'w4a8', rank: 0, fused: true },
    ...RANKS.map((rank) => ({ kind: 'w4a8' as const, rank, fused: true })),
    { kind: 'w4a8', rank: 0, fused: false },
    { kind: 'w4a8', rank: 14, fused: false },
  ];
  const headline: Variant[] = [
    { kind: 'dense', dtype: 'f32' },
    { kind: 'dense', dtype: 'f16' },
    { kind: 'w4a8', rank: 0, fused: true },
    { kind: 'w4a8', rank: 14, fused: true },
    { kind: 'w4a8', rank: 14, fused: false },
  ];
  // Decode GEMV formulations beside the adapter's default, and the W8 variant.
  const inners: Variant[] = GEMV_ALTERNATIVES.filter((g) => g.inner !== defaultInner || g.rowsPerThread !== undefined).map((gemv) => ({ kind: 'w4a8', rank: 0, fused: true, gemv }));
  const w8: Variant = { kind: 'w8a8', rank: 0, fused: true };
  const w8Inners: Variant[] = W8_GEMV_ALTERNATIVES.filter((g) => g.inner !== defaultInnerW8 || g.rowsPerThread !== undefined).map((gemv) => ({ kind: 'w8a8', rank: 0, fused: true, gemv }));
  const gateUp = llama.filter((s) => s.outF === 14336);
  if (quick) {
    return [
      { tokens: 1, shapes: stories, variants: all },
      { tokens: 1, shapes: square, variants: [...all, ...inners] },
      { tokens: 1, shapes: gateUp, variants: [{ kind: 'w4a8', rank: 0, fused: true }, w8] },
      { tokens: 128, shapes: [...stories, ...square], variants: headline },
      { tokens: 512, shapes: stories, variants: headline },
    ];
  }
  return [
    // Variants of one shape are timed round-robin in one group: the formulations and W8 beside the default.
    { tokens: 1, shapes: stories, variants: all },
    { tokens: 1, shapes: llama.filter((s) => s.outF !== 14336), variants: [...all, ...inners] },
    { tokens: 1, shapes: gateUp, variants: [...all, ...inners, w8, ...w8Inners] },
    { tokens: 1, shapes: [CLASSIFIER], variants: [{ kind: 'w4a8', rank: 0, fused: true }, w8, ...w8Inners] },
    { tokens: 128, shapes: stories, variants: all },
    { tokens: 128, shapes: square, variants: all },
    { tokens: 128, shapes: llama.filter((s) => s !== square[0]), variants: headline },
    { tokens: 512, shapes: stories, variants: headline },
    // The full-size prefill at 512 tokens is the slowest part on CPU adapters: the headline three only.
    { tokens: 512, shapes: llama, variants: headline.slice(0, 4).filter((v) => v.kind === 'dense' || v.rank === 14) },
  ];
}

/** 1-minute load average (other processes on a shared machine skew CPU-adapter timings). */
function loadAverage(): number | undefined {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

export async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const outIdx = argv.indexOf('--out');
  const onlyIdx = argv.indexOf('--only');
  const only = onlyIdx >= 0 ? new RegExp(argv[onlyIdx + 1] ?? '') : undefined;
  // A partial run must not replace the full results docs/numbers.md is rendered from.
  const outPath = outIdx >= 0 ? resolve(argv[outIdx + 1]!) : only ? undefined : resolve('bench/results/kernels.json');
  const started = performance.now();

  const gpu = await openNodeDevice();
  const cache = new PipelineCache(gpu.device);
  const timer = new BenchTimer(gpu);
  const { device } = gpu;
  const cpu = isCpuAdapter(gpu);
  const budget: Budget = quick ? { caseMs: cpu ? 250 : 200, maxSamples: 7 } : { caseMs: cpu ? 500 : 500, maxSamples: 11 };

  console.log(`device  ${gpu.describe()}  (${gpu.adapterInfo.description || gpu.adapterInfo.vendor})`);
  console.log(`timer   ${timer.kind}${quick ? '   [--quick]' : ''}   load average ${loadAverage() ?? '?'}`);
  const copyProbe = await createCopyProbe(gpu, cache);
  const peaks = await measurePeaks(gpu, cache, timer, copyProbe, quick);
  console.log(`peaks   copy ${fmt(peaks.copyGBs)} GB/s | dot4I8Packed ${fmt(peaks.dot4GOPs)} GOP/s (8 ops per dot4) | f32 fma ${fmt(peaks.fmaGFLOPs)} GFLOP/s | one dispatch ${fmt(peaks.dispatchMs * 1000, 1)} µs\n`);

  const maxTokens = 512;
  const maxIn = Math.max(...SHAPES.map((s) => s.inF));
  const maxOut = Math.max(...SHAPES.map((s) => s.outF));
  const x = createBuffer(device, maxTokens * maxIn * 4, 'bench/x');
  device.queue.writeBuffer(x, 0, seeded(maxTokens * maxIn, 9, 2));
  const y = createBuffer(device, maxTokens * maxOut * 4, 'bench/y');

  const rows: KernelBenchRow[] = [];
  const breakdown: Record<string, number> = {};
  const header = `${'shape (in→out)'.padEnd(20)} ${'tok'.padStart(4)} ${'variant'.padEnd(20)} ${'median ms'.padStart(10)} ${'min ms'.padStart(9)} ${'GB/s'.padStart(7)} ${'%bw'.padStart(5)} ${'GOP/s'.padStart(7)} ${'%ops'.padStart(5)} ${'W GB/s'.padStart(7)} ${'%copy'.padStart(5)}  side path: latency% (min) / FLOPs%`;
  console.log(header);
  console.log('-'.repeat(header.length));
  const deadline = started + (quick ? 60 : 300) * 1000;
  const rate = new Map<string, number>(); // best ops/ms seen per variant at prefill, to skip what cannot finish
  const skipped: string[] = [];
  const defaultInner = w4MatmulTiling(gpu).gemvInner;
  const defaultInnerW8 = w4MatmulTiling(gpu, 8).gemvInner;
  console.log(`kernel B GEMV inner product on this adapter: ${defaultInner} (W8: ${defaultInnerW8})`);
  for (const plan of plans(quick, defaultInner, defaultInnerW8)) {
    for (const shape of plan.shapes) {
      const variants = plan.variants.filter((v) => {
        if (only && !only.test(`${shape.name} ${plan.tokens}tok ${variantName(v)}`)) return false;
        const known = plan.tokens > 1 ? rate.get(variantName(v)) : undefined;
        const estimate = known ? opsDone(v, shape, plan.tokens) / known : 0;
        if (performance.now() + estimate > deadline) {
          skipped.push(`${shape.name} ${plan.tokens} tok ${variantName(v)} (≈${fmt(estimate / 1000, 0)} s left out to stay in the time budget)`);
          return false;
        }
        return true;
      });
      if (variants.length === 0) continue;
      const weight = variants.some((v) => v.kind === 'dense') ? seeded(shape.inF * shape.outF, 1, 0.05) : undefined;
      const ops: LinearOp[] = variants.map((v) =>
        v.kind === 'dense'
          ? createDenseLinear(gpu, cache, { inFeatures: shape.inF, outFeatures: shape.outF, weight: weight! }, { label: `${shape.name}/${v.dtype}`, dtype: v.dtype, maxTokens: plan.tokens })
          : createQuantizedLinear(gpu, cache, syntheticLayer(shape.inF, shape.outF, v.rank, v.kind === 'w8a8' ? 8 : 4), {
              label: `${shape.name}/${variantName(v)}`, maxTokens: plan.tokens, fused: v.fused,
              matmulTiling: v.gemv
                ? { gemvInner: v.gemv.inner, ...(v.gemv.rowsPerThread ? { gemvRowsPerThread: v.gemv.rowsPerThread } : {}) }
                : undefined,
            }),
      );
      try {
        const encoders = ops.map((op) => (p: GPUComputePassEncoder) => op.encode(p, x, y, plan.tokens));
        // Decode at LLaMA shapes: the copy probe joins the group, so the fractions compare like with like.
        const withCopy = plan.tokens === 1 && shape.model === 'llama3-8b';
        const timings = await timeGroup(timer, withCopy ? [...encoders, copyProbe.encode] : encoders, budget, variants.map((v) => opsDone(v, shape, plan.tokens)));
        const groupCopyGBs = withCopy ? copyProbe.bytes / (Math.min(...timings[encoders.length]!.samples) * 1e6) : undefined;
        const rank0 = variants.findIndex((v) => v.kind === 'w4a8' && v.fused && v.rank === 0);
        variants.forEach((v, i) => {
          const t = timings[i]!;
          const med = median(t.samples), min = Math.min(...t.samples);
          const lrBytes = v.kind !== 'dense' && (ops[i] as QuantizedLinearOp).lowRank === 'f16' ? 2 : 4;
          const bytes = bytesMoved(v, shape, plan.tokens, lrBytes);
          const ops_ = opsDone(v, shape, plan.tokens);
          if (plan.tokens > 1) rate.set(variantName(v), Math.max(rate.get(variantName(v)) ?? 0, ops_ / min));
          const row: KernelBenchRow = {
            shape: shape.name, inF: shape.inF, outF: shape.outF, model: shape.model, tokens: plan.tokens, variant: variantName(v),
            medianMs: med, minMs: min, samples: t.samples.length, reps: Math.max(1, t.reps),
            gbPerS: bytes / (med * 1e6), gopPerS: ops_ / (med * 1e6),
            weightGbPerS: weightBytes(v, shape) / (min * 1e6),
            weightBwFraction: weightBytes(v, shape) / (min * 1e6) / (groupCopyGBs ?? peaks.copyGBs),
            groupCopyGBs,
            bwFraction: bytes / (med * 1e6) / peaks.copyGBs,
            opsFraction: ops_ / (med * 1e6) / (v.kind === 'dense' ? peaks.fmaGFLOPs : peaks.dot4GOPs),
          };
          if (v.kind === 'w4a8' && v.fused && v.rank > 0 && rank0 >= 0) {
            const base = Math.min(...timings[rank0]!.samples);
            row.flopsOverheadPct = (100 * v.rank * (shape.inF + shape.outF)) / (shape.inF * shape.outF);
            row.latencyOverheadPct = (100 * (min - base)) / base;
          }
          rows.push(row);
          const side = row.flopsOverheadPct !== undefined ? `${fmt(row.latencyOverheadPct!, 1).padStart(7)} / ${fmt(row.flopsOverheadPct, 2)}` : '';
          console.log(
            `${shape.name.padEnd(20)} ${String(plan.tokens).padStart(4)} ${variantName(v).padEnd(20)} ${fmt(med, 3).padStart(10)} ${fmt(min, 3).padStart(9)} ` +
              `${fmt(row.gbPerS).padStart(7)} ${fmt(100 * row.bwFraction, 0).padStart(5)} ${fmt(row.gopPerS).padStart(7)} ${fmt(100 * row.opsFraction, 0).padStart(5)} ` +
              `${fmt(row.weightGbPerS).padStart(7)} ${fmt(100 * row.weightBwFraction, 0).padStart(5)}${groupCopyGBs ? ` (copy ${fmt(groupCopyGBs)})` : ''}  ${side}`,
          );
        });
        // What bounds the decode layer: each stage alone (4096→4096, rank 0 and 14, fused and unfused).
        if (plan.tokens === 1 && shape.inF === 4096 && shape.outF === 4096) {
          const stages: Array<{ name: string; enc: (p: GPUComputePassEncoder) => void }> = [];
          variants.forEach((v, i) => {
            if (v.kind !== 'w4a8' || (v.rank !== 0 && v.rank !== 14)) return;
            const qop = ops[i] as QuantizedLinearOp;
            for (const stage of (v.fused ? ['act_quant', 'matmul'] : ['act_quant', 'matmul', 'side']) as Array<'act_quant' | 'matmul' | 'side'>) {
              stages.push({ name: `${variantName(v)}/${stage}`, enc: (p) => qop.encodeStage(p, x, y, 1, stage) });
            }
          });
          const ts = await timeGroup(timer, stages.map((s) => s.enc), budget);
          stages.forEach((s, i) => (breakdown[s.name] = Math.min(...ts[i]!.samples)));
        }
      } finally {
        for (const op of ops) op.destroy();
      }
    }
  }
  x.destroy();
  copyProbe.destroy();
  y.destroy();

  // Targets (decode 4096→4096).
  const find = (variant: string, shape = 'q/o 4096→4096', tokens = 1) => rows.find((r) => r.variant === variant && r.shape === shape && r.tokens === tokens);
  const f32 = find('f32 dense'), f16 = find('f16 dense'), fused0 = find('w4a8 fused r0'), fused14 = find('w4a8 fused r14'), unfused14 = find('w4a8 unfused r14');
  const ratio = (a?: KernelBenchRow, b?: KernelBenchRow) => (a && b ? { min: a.minMs / b.minMs, median: a.medianMs / b.medianMs } : { min: NaN, median: NaN });
  const targets = {
    'decode 4096² fused W4A8 r0 vs f32 dense (≥ 4×)': ratio(f32, fused0),
    'decode 4096² fused W4A8 r0 vs f16 dense (≥ 2×)': ratio(f16, fused0),
    'decode 4096² fused W4A8 r14 vs f32 dense': ratio(f32, fused14),
    'decode 4096² fused W4A8 r14 vs f16 dense': ratio(f16, fused14),
    'decode 4096² fused vs unfused at r14 (≥ 1.3×)': ratio(unfused14, fused14),
  };
  const sideRatios = rows
    .filter((r) => r.tokens === 1 && r.flopsOverheadPct !== undefined && r.variant !== 'w4a8 fused r5' && r.model === 'llama3-8b')
    .map((r) => ({ shape: r.shape, variant: r.variant, latencyPerFlops: r.latencyOverheadPct! / r.flopsOverheadPct! }));

  console.log('\ntargets (decode, q/o 4096→4096; ratio of min times, of medians in brackets)');
  for (const [k, v] of Object.entries(targets)) console.log(`  ${k.padEnd(48)} ${fmt(v.min)}×  (${fmt(v.median)}×)`);
  console.log('  side path r ≥ 14, decode, LLaMA shapes: latency overhead / FLOPs overhead (min times; target ≤ 1.5)');
  for (const s of sideRatios) console.log(`    ${s.shape.padEnd(20)} ${s.variant.padEnd(18)} ${fmt(s.latencyPerFlops)}`);
  console.log('  decode 4096→4096 stages alone (median ms):');
  for (const [k, v] of Object.entries(breakdown)) console.log(`    ${k.padEnd(32)} ${fmt(v, 3)}`);
  console.log(`  one dispatch ≈ ${fmt(peaks.dispatchMs, 4)} ms`);
  if (skipped.length) {
    console.log(`  left out to stay in the time budget (${quick ? 60 : 300} s):`);
    for (const s of skipped) console.log(`    ${s}`);
  }

  const commit = gitCommit();
  const result = {
    bench: 'kernels',
    date: new Date().toISOString(),
    adapter: { ...gpu.adapterInfo, describe: gpu.describe(), features: gpu.features },
    timer: timer.kind,
    quick,
    only: only?.source ?? null,
    commit,
    shapeConvention: 'in→out: a linear layer [out, in] reading in features and writing out',
    peaks,
    targets,
    sideRatios,
    decodeStagesMs: breakdown,
    skipped,
    load: loadAverage(),
    rows,
    seconds: (performance.now() - started) / 1000,
  };
  if (outPath) {
    writeJsonReport(outPath, result, gpu.describe());
    console.log(`\nwrote ${outPath} (${fmt(result.seconds, 0)} s)`);
  } else {
    console.log(`\npartial run (--only): nothing written; pass --out FILE to keep it (${fmt(result.seconds, 0)} s)`);
  }
  timer.destroy();
  device.destroy();
  return 0;
}

runIfMain(import.meta.url, main);
