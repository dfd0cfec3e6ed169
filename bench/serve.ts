// Serving throughput with and without continuous batching: streaming completions over loopback HTTP at
// 1, 4 and 16 concurrent clients, against servers of the same model that differ only in --parallel
// (1: one request at a time through the FIFO queue; N: N slots decoded together, serve/batching-engine.ts).
// All variants of a model are open at once and each client level runs on every variant back to back
// (the order alternating by level), so machine load drifts into both. Generated tok/s, time to first
// token and inter-token latency p50/p95 (client side: gaps between text chunks of one stream), every
// request's sample kept; prompts are unique per request (no prefix reuse). Models: stories260K, and a 1-layer LLaMA-3-8B-shaped artifact (the one
// `npm run bench -- decode-speedup` caches, else synthesized and quantized here) with short answers.
//
//   npm run bench -- serve [--clients 1,4,16] [--parallel 1,16] [--max-tokens 48] [--requests N]
//                          [--time-limit 90] [--ctx 256] [--no-8b] [--8b-model DIR --8b-artifact DIR]
//                          [--8b-max-tokens 4] [--out bench/results/serve.json]
import { cpus, loadavg } from 'node:os';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from '../loaders/datasets.js';
import { openServing, type Serving } from '../serve/open-serving.js';
import { startServer, type RunningServer } from '../serve/server.js';
import { aser } from './lib/checkout.js';
import { runIfMain, writeJsonReport, gitCommit } from './lib/report.js';

interface ModelSpec {
  label: string;
  model: string;
  artifact?: string;
  dtype: 'f32' | 'f16';
  maxTokens: number;
  /** Requests per level: (clients) → count. */
  requests: (clients: number) => number;
  ctx: number;
}

interface Args {
  clients: number[];
  parallel: number[];
  maxTokens: number;
  requests?: number;
  timeLimitS: number;
  ctx: number;
  with8b: boolean;
  model8b?: string;
  artifact8b?: string;
  maxTokens8b: number;
  out: string;
}

interface StreamSample {
  ok: boolean;
  ttftMs: number;
  latencyMs: number;
  completionTokens: number;
  gapsMs: number[];
}

export interface ServeBenchRow {
  clients: number;
  requests: number;
  errors: number;
  wallSeconds: number;
  requestsPerSec: number;
  generatedTokens: number;
  tokensPerSec: number;
  /** Client-side, from sending the request to the first text chunk (queue wait included). */
  ttftMs: { p50: number; p95: number };
  /** Client-side gap between consecutive text chunks of one stream. */
  itlMs: { p50: number; p95: number };
  latencyMs: { p50: number; p95: number };
  samples: StreamSample[];
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park', 'One day, a big bird', 'The sun was hot and', 'Sam had a red ball', 'There was a cat who', 'Mom said'];

function parseArgs(argv: string[]): Args {
  const args: Args = { clients: [1, 4, 16], parallel: [1, 16], maxTokens: 48, timeLimitS: 90, ctx: 256, with8b: true, maxTokens8b: 4, out: join(repoRoot(), 'bench', 'results', 'serve.json') };
  const list = (v: string) => v.split(',').map(Number);
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]!;
    if (key === '--no-8b') {
      args.with8b = false;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`serve bench: ${key} needs a value`);
    if (key === '--clients') args.clients = list(value);
    else if (key === '--parallel') args.parallel = list(value);
    else if (key === '--requests') args.requests = Number(value);
    else if (key === '--max-tokens') args.maxTokens = Number(value);
    else if (key === '--time-limit') args.timeLimitS = Number(value);
    else if (key === '--ctx') args.ctx = Number(value);
    else if (key === '--8b-model') args.model8b = resolve(value);
    else if (key === '--8b-artifact') args.artifact8b = resolve(value);
    else if (key === '--8b-max-tokens') args.maxTokens8b = Number(value);
    else if (key === '--out') args.out = resolve(value);
    else throw new Error(`serve bench: unknown option ${key} (--clients --parallel --max-tokens --requests --time-limit --ctx --no-8b --8b-model --8b-artifact --8b-max-tokens --out)`);
  }
  if (!args.clients.every((c) => Number.isInteger(c) && c >= 1 && c <= 256)) throw new Error('serve bench: --clients must be integers in 1..256');
  if (!args.parallel.every((c) => Number.isInteger(c) && c >= 1 && c <= 256)) throw new Error('serve bench: --parallel must be integers in 1..256');
  for (const [k, v] of [['--max-tokens', args.maxTokens], ['--ctx', args.ctx], ['--8b-max-tokens', args.maxTokens8b]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`serve bench: ${k} must be a positive integer`);
  }
  if (args.requests !== undefined && (!Number.isInteger(args.requests) || args.requests < 1)) throw new Error('serve bench: --requests must be a positive integer');
  if (!(args.timeLimitS > 0)) throw new Error('serve bench: --time-limit must be positive');
  return args;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/** One streaming completion over fetch; reads SSE until [DONE]. */
async function streamCompletion(url: string, model: string, prompt: string, maxTokens: number, seed: number): Promise<StreamSample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // ignore_eos is not an OpenAI field: a fixed answer length comes from a seed and max_tokens instead.
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0.8, top_p: 0.95, seed, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) {
    await res.text();
    return { ok: false, ttftMs: NaN, gapsMs: [], latencyMs: performance.now() - t0, completionTokens: 0 };
  }
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  let buffer = '';
  let first = NaN;
  let last = NaN;
  const gaps: number[] = [];
  let tokens = 0;
  let ok = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer.slice(0, end).replace(/^data: /, '');
      buffer = buffer.slice(end + 2);
      if (data === '[DONE]') {
        ok = true;
        continue;
      }
      const chunk = JSON.parse(data) as { choices: Array<{ text: string }>; usage?: { completion_tokens: number }; error?: unknown };
      if (chunk.error) continue;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      if (chunk.choices[0]?.text) {
        const now = performance.now();
        if (Number.isNaN(first)) first = now - t0;
        else gaps.push(now - last);
        last = now;
      }
    }
  }
  return { ok, ttftMs: first, gapsMs: gaps.map((g) => Math.round(g * 100) / 100), latencyMs: performance.now() - t0, completionTokens: tokens };
}

async function runLevel(url: string, model: string, clients: number, requests: number, maxTokens: number, timeLimitS: number): Promise<ServeBenchRow> {
  let issued = 0;
  const results: StreamSample[] = [];
  const t0 = performance.now();
  const deadline = t0 + timeLimitS * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (issued < requests && performance.now() < deadline) {
        const n = issued++;
        // A request number first makes every prompt unique past BOS: no engine reuses a cached prefix
        // (the batching engine keeps one per slot), so the variants differ by batching alone.
        results.push(await streamCompletion(url, model, `${n + 1}. ${PROMPTS[n % PROMPTS.length]!}`, maxTokens, 1000 + n));
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const good = results.filter((r) => r.ok);
  const tokens = good.reduce((n, r) => n + r.completionTokens, 0);
  const pick = (xs: number[]) => ({ p50: percentile(xs, 0.5), p95: percentile(xs, 0.95) });
  return {
    clients,
    requests: good.length,
    errors: results.length - good.length,
    wallSeconds: wall,
    requestsPerSec: good.length / wall,
    generatedTokens: tokens,
    tokensPerSec: tokens / wall,
    ttftMs: pick(good.map((r) => r.ttftMs)),
    itlMs: pick(good.flatMap((r) => r.gapsMs)),
    latencyMs: pick(good.map((r) => r.latencyMs)),
    samples: results,
  };
}

/** The 1-layer 8B-shaped model and an artifact: given, cached by decode-speedup, or made here. */
function model8b(args: Args, progress: (m: string) => void): { model: string; artifact: string } {
  const cache = '/tmp/aser-decode-speedup';
  const model = args.model8b ?? join(cache, 'llama3-8b-l1');
  if (!existsSync(join(model, 'config.json'))) {
    mkdirSync(cache, { recursive: true });
    progress(`aser synth --shape llama3-8b --layers 1 --out ${model}`);
    aser(repoRoot(), ['synth', '--shape', 'llama3-8b', '--layers', '1', '--out', model, '--json'], { stderr: 'inherit' });
  }
  if (args.artifact8b) return { model, artifact: args.artifact8b };
  // This checkout's quantizer writes the artifacts keyed q<hash> there; the newest one that loads is used.
  const candidates = existsSync(cache)
    ? readdirSync(cache).filter((d) => d.startsWith('llama3-8b-l1-q') && existsSync(join(cache, d, 'manifest.json'))).map((d) => join(cache, d))
    : [];
  candidates.sort((a, b) => statSync(join(b, 'manifest.json')).mtimeMs - statSync(join(a, 'manifest.json')).mtimeMs);
  if (candidates[0]) return { model, artifact: candidates[0] };
  const artifact = join('/tmp', 'aser-serve-bench', 'llama3-8b-l1-artifact');
  if (!existsSync(join(artifact, 'manifest.json'))) {
    progress(`aser quantize --model ${model} --out ${artifact}`);
    aser(repoRoot(), ['quantize', '--model', model, '--out', artifact, '--json'], { stderr: 'inherit' });
  }
  return { model, artifact };
}

interface Variant {
  parallel: number;
  serving: Serving;
  server: RunningServer;
  levels: ServeBenchRow[];
}

async function benchModel(spec: ModelSpec, args: Args, progress: (m: string) => void) {
  const variants: Variant[] = [];
  try {
    for (const parallel of args.parallel) {
      progress(`${spec.label}: opening with --parallel ${parallel}`);
      const serving = await openServing({ model: spec.model, artifact: spec.artifact, dtype: spec.dtype, ctx: spec.ctx, parallel });
      const server = await startServer({ engine: serving.engine, chatTemplate: serving.chatTemplate, port: 0, maxQueue: 1024, requestTimeoutMs: (args.timeLimitS + 600) * 1000 });
      variants.push({ parallel, serving, server, levels: [] });
      await runLevel(server.url, serving.engine.modelId, 2, 2, Math.min(4, spec.maxTokens), args.timeLimitS); // warm-up: connections, pipelines, JIT
    }
    for (const [i, clients] of args.clients.entries()) {
      const order = i % 2 ? [...variants].reverse() : variants;
      for (const v of order) {
        const row = await runLevel(v.server.url, v.serving.engine.modelId, clients, args.requests ?? spec.requests(clients), spec.maxTokens, args.timeLimitS);
        v.levels.push(row);
        progress(`${spec.label}: --parallel ${v.parallel}, ${clients} clients: ${row.tokensPerSec.toFixed(1)} tok/s, TTFT p50 ${row.ttftMs.p50.toFixed(0)} ms, ITL p50 ${row.itlMs.p50.toFixed(1)} ms (${row.requests} requests${row.errors ? `, ${row.errors} errors` : ''})`);
      }
    }
  } finally {
    for (const v of variants) {
      await v.server.close();
      v.serving.close();
    }
  }
  const first = variants[0]!.serving;
  const levelOf = (v: Variant, clients: number) => v.levels.find((r) => r.clients === clients);
  const batching = variants.filter((v) => v.parallel > 1).at(-1);
  const single = variants.find((v) => v.parallel === 1);
  const lo = Math.min(...args.clients);
  const hi = Math.max(...args.clients);
  return {
    label: spec.label,
    model: { id: first.engine.modelId, path: spec.model, dtype: spec.dtype, artifact: spec.artifact ?? null, contextLength: first.engine.contextLength },
    maxTokens: spec.maxTokens,
    variants: variants.map((v) => ({ parallel: v.parallel, engine: v.parallel > 1 ? 'continuous batching' : 'FIFO, one request at a time', levels: v.levels })),
    summary: {
      /** Aggregate tok/s of the batching server at the most clients over its tok/s at the fewest. */
      batchingScaling: batching ? levelOf(batching, hi)!.tokensPerSec / levelOf(batching, lo)!.tokensPerSec : null,
      /** Batching over --parallel 1 at the most clients. */
      batchingVsParallel1: batching && single ? levelOf(batching, hi)!.tokensPerSec / levelOf(single, hi)!.tokensPerSec : null,
      fewestClients: lo,
      mostClients: hi,
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const t00 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[${((performance.now() - t00) / 1000).toFixed(0)} s] ${msg}\n`);
  const specs: ModelSpec[] = [
    { label: 'stories260k', model: 'stories260k', dtype: 'f32', maxTokens: args.maxTokens, requests: (c) => Math.max(8, 2 * c), ctx: args.ctx },
  ];
  if (args.with8b) {
    const m = model8b(args, progress);
    // Short answers and one request per client: an 8B-shaped step takes ~0.2 s on llvmpipe.
    specs.push({ label: 'llama3-8b-l1 (W4A8 artifact)', model: m.model, artifact: m.artifact, dtype: 'f32', maxTokens: args.maxTokens8b, requests: (c) => Math.max(2, c), ctx: 32 });
  }
  const loadBefore = loadavg()[0]!;
  const models: Array<Awaited<ReturnType<typeof benchModel>>> = [];
  const probe = await openServing({ model: 'stories260k', dtype: 'f32', ctx: 16, parallel: 1 });
  const adapter = probe.session.gpu.describe();
  const adapterInfo = probe.session.gpu.adapterInfo;
  probe.close();
  const report = (complete: boolean) => ({
    bench: 'serve',
    date: new Date().toISOString(),
    adapter,
    adapterInfo,
    commit: gitCommit(),
    timer: 'wall',
    complete,
    loadAverage: { before: loadBefore, after: loadavg()[0]!, cpus: cpus().length },
    settings: { clients: args.clients, parallel: args.parallel, requests: args.requests ?? 'stories260k max(8, 2*clients); 8B max(2, clients)', sampling: 'temperature 0.8, top_p 0.95, seeded', timeLimitS: args.timeLimitS },
    models,
  });
  for (const spec of specs) {
    models.push(await benchModel(spec, args, progress));
    // Written after each model, so a long 8B part cut short keeps what finished.
    if (models.length < specs.length) writeJsonReport(args.out, report(false), adapter);
  }
  const loadAfter = loadavg()[0]!;

  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-').padStart(8);
  for (const m of models) {
    console.log(`\nserve ${m.label}, max_tokens ${m.maxTokens}, streaming completions over loopback HTTP (temperature 0.8, top_p 0.95, seeded)`);
    console.log('parallel  clients  requests    tok/s  ttft p50  ttft p95   itl p50   itl p95   lat p95');
    for (const v of m.variants) {
      for (const r of v.levels) {
        console.log(`${String(v.parallel).padStart(8)}  ${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)} ${f(r.tokensPerSec)}  ${f(r.ttftMs.p50, 0)}  ${f(r.ttftMs.p95, 0)}  ${f(r.itlMs.p50)}  ${f(r.itlMs.p95)}  ${f(r.latencyMs.p95, 0)}` + (r.errors ? `  (${r.errors} errors)` : ''));
      }
    }
    const s = m.summary;
    if (s.batchingScaling !== null) console.log(`  batching: ${s.mostClients} clients get ${s.batchingScaling.toFixed(2)}× the aggregate tok/s of ${s.fewestClients}`);
    if (s.batchingVsParallel1 !== null) console.log(`  at ${s.mostClients} clients, batching gives ${s.batchingVsParallel1.toFixed(2)}× the tok/s of --parallel 1`);
  }
  console.log(`  load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)} on ${cpus().length} CPUs (llvmpipe shares them)`);
  console.log(`  device ${adapter} | timer wall clock | commit ${gitCommit()}`);
  writeJsonReport(args.out, report(true), adapter);
  console.log(`  wrote ${args.out}`);
  return models.every((m) => m.variants.every((v) => v.levels.every((r) => r.errors === 0))) ? 0 : 1;
}

runIfMain(import.meta.url, main);
