// The GPU kit's job (scripts/gpu-kit.mjs builds the kit, its run.sh calls this): on whatever adapter
// Dawn offers, record the adapter and its limits, run the GPU-relevant test files, the kernel bench,
// `bench forward`, and an 8B-shaped decode (synthesized LLaMA-3-8B-shaped layers quantized RTN and
// ASER, profiled with bytes and dispatches per token and the fraction of the copy bandwidth). Ends with
// one JSON line on stdout and writes the same JSON to --out. Each step runs in its own process, so a
// crash or device loss in one is recorded and the others still run.
//
//   node dist/bench/gpu-check.js [--quick] [--out FILE] [--layers N] [--skip-tests] [--work DIR]
// --layers: 8B-shaped layers to synthesize (default 4; --quick 2, or 1 on a software adapter).
//   npm run bench -- gpu-check --quick        (the same from a checkout)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openNodeDevice } from '../node/gpu.js';
import { isCpuAdapter } from '../kernels/matmul_dense.js';
import { repoRoot } from '../loaders/datasets.js';
import { runIfMain, writeJsonReport } from './lib/report.js';

/** Test files that exercise the GPU: bring-up and limits, every kernel against its CPU reference, the executor and fused layers, fused vs --simulate. */
const QUICK_TESTS = ['test/gpu', 'test/kernels/w4a8_matmul.test.ts', 'test/kernels/w4a8_act_quant.test.ts', 'test/kernels/attention.test.ts', 'test/runtime/fused-layer.test.ts'];
const FULL_TESTS = ['test/gpu', 'test/kernels', 'test/runtime/executor.test.ts', 'test/runtime/fused-layer.test.ts', 'test/runtime/classifier.test.ts', 'test/runtime/plan-vs-executor.test.ts', 'test/runtime/traffic.test.ts', 'test/runtime/streamed-load.test.ts', 'test/quant/shared-smoothing.test.ts'];

interface Args {
  quick: boolean;
  out: string;
  layers: number;
  skipTests: boolean;
  work: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, out: resolve('gpu-check.json'), layers: 0, skipTests: false, work: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--out') args.out = resolve(value());
    else if (a === '--layers') {
      const v = value();
      args.layers = Number(v);
      if (!Number.isInteger(args.layers) || args.layers < 1 || args.layers > 32) throw new Error(`--layers ${v}: give a whole number of layers from 1 to 32`);
    } else if (a === '--skip-tests') args.skipTests = true;
    else if (a === '--work') args.work = resolve(value());
    else throw new Error(`unknown option ${a} (options: --quick, --out FILE, --layers N, --skip-tests, --work DIR)`);
  }
  return args;
}

const progress = (msg: string) => process.stderr.write(`gpu-check: ${msg}\n`);

interface StepResult {
  ok: boolean;
  seconds: number;
  exitCode: number | null;
  /** The last lines of its output when it failed. */
  tail?: string;
}

/** Runs `node <script> args` from the project root, its output passed through to stderr. */
function runNode(script: string, args: string[], timeoutS: number): Promise<StepResult & { stdout: string }> {
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    let stdout = '';
    let tail = '';
    const keep = (s: string) => { tail = (tail + s).slice(-4000); };
    child.stdout.on('data', (d: Buffer) => { const s = d.toString(); stdout += s; keep(s); process.stderr.write(s); });
    child.stderr.on('data', (d: Buffer) => { const s = d.toString(); keep(s); process.stderr.write(s); });
    const timer = setTimeout(() => { progress(`${script} ran past ${timeoutS} s: stopped`); child.kill('SIGKILL'); }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ok = code === 0;
      done({ ok, seconds: (performance.now() - t0) / 1000, exitCode: code, stdout, ...(ok ? {} : { tail: tail.split('\n').slice(-15).join('\n') }) });
    });
  });
}

const readJson = (path: string): Record<string, any> | undefined => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined);
const aser = (args: string[], timeoutS: number) => runNode('dist/cli/aser.js', args, timeoutS);
const round = (x: number | undefined, digits = 3) => (x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

async function adapterReport() {
  const gpu = await openNodeDevice();
  try {
    const limits = gpu.device.limits as unknown as Record<string, number>;
    const allLimits: Record<string, number> = {};
    for (const k in limits) if (typeof limits[k] === 'number') allLimits[k] = limits[k];
    return { describe: gpu.describe(), info: gpu.adapterInfo, software: isCpuAdapter(gpu), features: gpu.features, limits: { ...allLimits, subgroupMinSize: gpu.limits.subgroupMinSize, subgroupMaxSize: gpu.limits.subgroupMaxSize } };
  } finally {
    gpu.device.destroy();
  }
}

async function runTests(files: string[], dir: string) {
  const report = join(dir, 'vitest.json');
  const step = await runNode('node_modules/vitest/vitest.mjs', ['run', ...files, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], 900);
  const r = readJson(report);
  const failedTests = r ? (r.testResults as Array<{ name: string; assertionResults: Array<{ status: string; fullName: string; failureMessages?: string[] }> }>).flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed').map((a) => ({ file: f.name.replace(repoRoot() + '/', ''), test: a.fullName, message: (a.failureMessages?.[0] ?? '').split('\n')[0] }))) : [];
  return {
    files, ok: step.ok, seconds: round(step.seconds, 1),
    passed: r?.numPassedTests ?? 0, failed: r ? r.numFailedTests + (r.numFailedTests === 0 ? r.numFailedTestSuites : 0) : 1, skipped: r?.numPendingTests ?? 0,
    failures: failedTests.slice(0, 20), ...(r ? {} : { error: step.tail }),
  };
}

/** The kernel bench's figures that say most about a GPU: peaks, the 8B decode GEMVs, fused vs unfused, side-path overhead. */
function kernelSummary(k: Record<string, any>) {
  const rows = k.rows as Array<Record<string, any>>;
  const decode8b = rows.filter((r) => r.model === 'llama3-8b' && r.tokens === 1 && /^(f32 dense|f16 dense|w4a8 fused r0|w4a8 fused r14|w4a8 unfused r14|w8a8 fused r0)$/.test(r.variant));
  return {
    peaks: k.peaks, timer: k.timer, targets: k.targets, sideRatios: k.sideRatios,
    bestGBs: round(Math.max(...rows.map((r) => r.gbPerS ?? 0)), 2),
    bestGOPs: round(Math.max(...rows.map((r) => r.gopPerS ?? 0)), 2),
    decode8b: decode8b.map((r) => ({ shape: r.shape, variant: r.variant, medianMs: round(r.medianMs, 4), gbPerS: round(r.gbPerS, 2), bwFraction: round(r.bwFraction, 3) })),
  };
}

/** One decode variant of `aser profile --json`: tok/s, dispatches and bytes per token, bandwidth fraction. */
function decodeVariant(p: Record<string, any>, key: 'fp' | 'on' | 'off', profile: Record<string, any> | undefined) {
  const t = p.decodeTraffic?.[key];
  return {
    prefillTokPerSec: round(profile?.prefill?.tokPerSec, 2), decodeTokPerSec: round(profile?.decode?.tokPerSec, 2),
    dispatchesPerToken: t?.dispatchesPerToken ?? null, mbPerToken: round(t ? t.bytesPerToken / 1e6 : undefined, 1), idealMbPerToken: round(t ? t.idealBytesPerToken / 1e6 : undefined, 1),
    achievedGBs: round(t?.achievedGBs, 2), copyPeakFraction: round(t?.copyPeakFraction, 3),
  };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const started = performance.now();
  const kitInfo = readJson(join(repoRoot(), '..', 'kit-info.json'));
  const work = args.work ?? mkdtempSync(join(tmpdir(), 'aser-gpu-check-'));
  mkdirSync(work, { recursive: true });
  const kitDir = process.env.ASER_KIT_DIR;
  const kitBytes = kitDir && existsSync(kitDir) ? readdirSync(kitDir).filter((f) => /^(run\.sh|node\.xz|kit\.tar\.xz|kit\.sha256)$/.test(f)).reduce((n, f) => n + statSync(join(kitDir, f)).size, 0) : null;
  const result: Record<string, any> = { bench: 'gpu-check', quick: args.quick, kit: kitInfo ? { ...kitInfo, bytes: kitBytes } : null };

  progress('adapter');
  try {
    result.adapter = await adapterReport();
  } catch (err) {
    result.adapter = { error: (err as Error).message.split('\n')[0] };
  }
  progress(`adapter: ${result.adapter.describe ?? result.adapter.error}`);
  console.error(JSON.stringify(result.adapter, null, 2));

  // On a software adapter the host does the GPU's work too: --quick decodes one 8B-shaped layer there.
  args.layers ||= args.quick ? (result.adapter.software ? 1 : 2) : 4;

  if (!args.skipTests) {
    progress('tests');
    result.tests = await runTests(args.quick ? QUICK_TESTS : FULL_TESTS, work);
  }

  progress('kernel bench');
  const kernelsJson = join(work, 'kernels.json');
  const kernels = await runNode('dist/bench/kernels.js', ['--quick', '--out', kernelsJson], args.quick ? 240 : 420);
  const k = readJson(kernelsJson);
  result.kernels = { ok: kernels.ok, seconds: round(kernels.seconds, 1), ...(k ? kernelSummary(k) : { error: kernels.tail }) };

  progress('bench forward (stories260K)');
  const forwardJson = join(work, 'forward.json');
  const fwd = args.quick ? ['--prefill', '64', '--decode', '32', '--repeats', '3'] : ['--prefill', '256', '--decode', '128', '--repeats', '5'];
  const forward = await runNode('dist/bench/forward.js', [...fwd, '--out', forwardJson], 300);
  const f = readJson(forwardJson);
  result.forward = { ok: forward.ok, seconds: round(forward.seconds, 1), ...(f ? { rows: f.rows ?? f.results } : { error: forward.tail }) };

  // 8B-shaped decode: synthesized weights with LLaMA-3-8B's dimensions and vocabulary.
  const model = join(work, `llama3-8b-l${args.layers}`);
  progress(`8B-shaped decode: aser synth --shape llama3-8b --layers ${args.layers}`);
  const synth: { ok: boolean; seconds: number; tail?: string } = existsSync(join(model, 'config.json')) ? { ok: true, seconds: 0 } : await aser(['synth', '--shape', 'llama3-8b', '--layers', String(args.layers), '--out', model], 600);
  const decode: Record<string, any> = { layers: args.layers, synthSeconds: round(synth.seconds, 1), variants: {} };
  result.decode8b = decode;
  // ASER's SVDs run on the host's LAPACK, not the GPU: minutes per 8B-shaped layer on a small host, so
  // --quick quantizes RTN only (no calibration statistics, no SVD); the full run adds ASER at rank 32.
  const calib = args.quick ? ['--calib-samples', '1', '--calib-len', '64'] : ['--calib-samples', '4', '--calib-len', '128'];
  const methods: Array<{ name: string; flags: string[] }> = [
    { name: 'rtn', flags: ['--method', 'rtn', ...calib] },
    ...(args.quick ? [] : [{ name: 'aser', flags: ['--method', 'aser', '--rank', '32', ...calib] }]),
  ];
  if (!synth.ok) decode.error = `synth failed: ${synth.tail}`;
  else {
    for (const m of methods) {
      const art = join(work, `${m.name}-l${args.layers}`);
      progress(`8B-shaped decode: aser quantize ${m.flags.join(' ')}`);
      const q = await aser(['quantize', '--model', model, ...m.flags, '--out', art, '--json'], 900);
      if (!q.ok) { decode.variants[m.name] = { error: `quantize failed: ${q.tail}` }; continue; }
      progress(`8B-shaped decode: aser profile --artifact ${m.name}`);
      const profJson = join(work, `profile-${m.name}.json`);
      const prof = await aser(['profile', '--model', model, '--artifact', art, '--prefill', args.quick ? '16' : '64', '--decode', args.quick ? '8' : '32', '--repeats', args.quick ? '1' : '3', '--json', '--out', profJson], 900);
      const p = readJson(profJson);
      if (!prof.ok || !p) { decode.variants[m.name] = { quantizeSeconds: round(q.seconds, 1), error: `profile failed: ${prof.tail}` }; continue; }
      decode.copyPeakGBs = round(p.copyPeak?.gbPerSec, 2);
      decode.variants.fp32 ??= decodeVariant(p, 'fp', p.fp);
      decode.variants[m.name] = { quantizeSeconds: round(q.seconds, 1), sideOn: decodeVariant(p, 'on', p.quantized?.on), sideOff: decodeVariant(p, 'off', p.quantized?.off), sideShare: p.sideShare ?? null };
    }
  }
  if (!args.work) rmSync(work, { recursive: true, force: true });

  result.seconds = round((performance.now() - started) / 1000, 1);
  // The headline decode figures: ASER's (side path on) when it ran, else RTN's.
  const aserOn = (decode.variants.aser ?? decode.variants.rtn)?.sideOn;
  result.summary = {
    adapter: result.adapter.describe ?? null,
    software: result.adapter.software ?? null,
    testsPassed: result.tests?.passed ?? null,
    testsFailed: result.tests?.failed ?? null,
    copyPeakGBs: result.kernels.peaks?.copyGBs ?? null,
    dot4PeakGOPs: result.kernels.peaks?.dot4GOPs ?? null,
    kernelBestGBs: result.kernels.bestGBs ?? null,
    kernelBestGOPs: result.kernels.bestGOPs ?? null,
    decode8bLayers: args.layers,
    decode8bMethod: decode.variants.aser?.sideOn ? 'aser' : decode.variants.rtn?.sideOn ? 'rtn' : null,
    decode8bTokPerSec: aserOn?.decodeTokPerSec ?? null,
    decode8bMbPerToken: aserOn?.mbPerToken ?? null,
    decode8bDispatchesPerToken: aserOn?.dispatchesPerToken ?? null,
    decode8bBandwidthFraction: aserOn?.copyPeakFraction ?? null,
    seconds: result.seconds,
  };
  writeJsonReport(args.out, result, result.adapter.describe ?? 'no adapter');
  console.log(JSON.stringify({ run: 'gpu-check', ...result.summary, out: args.out }));
  const failed = (result.tests && result.tests.failed > 0) || !result.kernels.ok || !forward.ok || decode.error || Object.values(decode.variants).some((v: any) => v.error);
  return failed ? 1 : 0;
}

runIfMain(import.meta.url, main);
