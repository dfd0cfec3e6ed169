// Serving throughput: requests/s and generated tokens/s through the OpenAI-compatible server at 1, 4
// and 16 concurrent streaming clients, on loopback, against the same engine driven directly (no HTTP,
// one stream) as the baseline. Clients run in this process (fetch + SSE); the count of requests and
// the time per level are bounded. Prints a table and writes bench/results/serve.json.
//
//   node dist/bench/serve.js [--model stories260k] [--dtype f32] [--artifact DIR] [--clients 1,4,16]
//                            [--requests N (per level, default max(8, 2·clients))] [--max-tokens 48]
//                            [--time-limit 60 (s per level)] [--out file]
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../loaders/datasets.js';
import { openServing } from '../serve/open-serving.js';
import { startServer } from '../serve/server.js';
import { runIfMain, writeJsonReport, gitCommit } from './lib/report.js';

interface Args {
  model: string;
  dtype: 'f32' | 'f16';
  artifact?: string;
  clients: number[];
  requests?: number;
  maxTokens: number;
  timeLimitS: number;
  out: string;
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
  interChunkMs: { p50: number; p95: number };
  latencyMs: { p50: number; p95: number };
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park', 'One day, a big bird', 'The sun was hot and', 'Sam had a red ball', 'There was a cat who', 'Mom said'];

function parseArgs(argv: string[]): Args {
  const args: Args = { model: 'stories260k', dtype: 'f32', clients: [1, 4, 16], maxTokens: 48, timeLimitS: 60, out: join(repoRoot(), 'bench', 'results', 'serve.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`serve bench: ${key} needs a value`);
    if (key === '--model') args.model = value;
    else if (key === '--dtype' && (value === 'f32' || value === 'f16')) args.dtype = value;
    else if (key === '--artifact') args.artifact = resolve(value);
    else if (key === '--clients') args.clients = value.split(',').map(Number);
    else if (key === '--requests') args.requests = Number(value);
    else if (key === '--max-tokens') args.maxTokens = Number(value);
    else if (key === '--time-limit') args.timeLimitS = Number(value);
    else if (key === '--out') args.out = resolve(value);
    else throw new Error(`serve bench: unknown option ${key} (--model --dtype --artifact --clients --requests --max-tokens --time-limit --out)`);
  }
  if (!args.clients.every((c) => Number.isInteger(c) && c >= 1 && c <= 256)) throw new Error('serve bench: --clients must be integers in 1..256');
  if (!Number.isInteger(args.maxTokens) || args.maxTokens < 1) throw new Error('serve bench: --max-tokens must be a positive integer');
  if (args.requests !== undefined && (!Number.isInteger(args.requests) || args.requests < 1)) throw new Error('serve bench: --requests must be a positive integer');
  if (!(args.timeLimitS > 0)) throw new Error('serve bench: --time-limit must be positive');
  return args;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

interface StreamResult {
  ok: boolean;
  ttftMs: number;
  gapsMs: number[];
  latencyMs: number;
  completionTokens: number;
}

/** One streaming completion over fetch; reads SSE until [DONE]. */
async function streamCompletion(url: string, model: string, prompt: string, maxTokens: number, seed: number): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
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
  return { ok, ttftMs: first, gapsMs: gaps, latencyMs: performance.now() - t0, completionTokens: tokens };
}

async function runLevel(url: string, model: string, clients: number, requests: number, maxTokens: number, timeLimitS: number): Promise<ServeBenchRow> {
  let issued = 0;
  const results: StreamResult[] = [];
  const t0 = performance.now();
  const deadline = t0 + timeLimitS * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (issued < requests && performance.now() < deadline) {
        const n = issued++;
        results.push(await streamCompletion(url, model, PROMPTS[n % PROMPTS.length]!, maxTokens, 1000 + n));
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
    interChunkMs: pick(good.flatMap((r) => r.gapsMs)),
    latencyMs: pick(good.map((r) => r.latencyMs)),
  };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const serving = await openServing({ model: args.model, dtype: args.dtype, artifact: args.artifact });
  const { engine } = serving;
  const tok = engine.tokenizer;

  // Baseline: the same engine, no HTTP, one stream at a time; run before and after the HTTP levels
  // (averaged) so drift in machine load shows up in both.
  const direct = async (runs: number) => {
    let tokens = 0;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const r = await engine.generate(tok.encode(PROMPTS[i % PROMPTS.length]!, { bos: true }), {
        maxTokens: args.maxTokens, temperature: 0.8, topP: 0.95, seed: 1000 + i, logprobs: false, topLogprobs: 0, stopTokens: [tok.eosId],
      }, () => true);
      tokens += r.sampledTokens;
    }
    return { runs, tokens, seconds: (performance.now() - t0) / 1000 };
  };
  await direct(2); // warm-up
  const before = await direct(8);
  const loadBefore = loadavg()[0]!;

  const server = await startServer({ engine, chatTemplate: serving.chatTemplate, port: 0, maxQueue: 1024, requestTimeoutMs: (args.timeLimitS + 60) * 1000 });
  const rows: ServeBenchRow[] = [];
  try {
    await runLevel(server.url, engine.modelId, 2, 2, 8, args.timeLimitS); // warm-up: connections, JIT
    for (const clients of args.clients) {
      rows.push(await runLevel(server.url, engine.modelId, clients, args.requests ?? Math.max(8, 2 * clients), args.maxTokens, args.timeLimitS));
    }
  } finally {
    await server.close();
  }

  const after = await direct(8);
  const loadAfter = loadavg()[0]!;
  const baseline = {
    requests: before.runs + after.runs,
    generatedTokens: before.tokens + after.tokens,
    tokensPerSec: (before.tokens + after.tokens) / (before.seconds + after.seconds),
    requestsPerSec: (before.runs + after.runs) / (before.seconds + after.seconds),
    tokensPerSecBefore: before.tokens / before.seconds,
    tokensPerSecAfter: after.tokens / after.seconds,
  };
  const adapter = serving.session.gpu.describe();
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-').padStart(8);
  console.log(`serve ${engine.modelId} (${args.artifact ? 'artifact ' + args.artifact : args.dtype}), max_tokens ${args.maxTokens}, streaming completions over loopback HTTP`);
  console.log('clients  requests   req/s    tok/s  ttft p50  ttft p95  chunk p50  lat p95   vs direct');
  for (const r of rows) {
    console.log(
      `${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)}${f(r.requestsPerSec, 2)} ${f(r.tokensPerSec)}  ${f(r.ttftMs.p50)}  ${f(r.ttftMs.p95)}   ${f(r.interChunkMs.p50, 2)} ${f(r.latencyMs.p95)}   x${(r.tokensPerSec / baseline.tokensPerSec).toFixed(2)}` +
        (r.errors ? `  (${r.errors} errors)` : ''),
    );
  }
  console.log(`  direct engine (no HTTP, 1 stream): ${baseline.tokensPerSec.toFixed(1)} tok/s (${baseline.tokensPerSecBefore.toFixed(1)} before, ${baseline.tokensPerSecAfter.toFixed(1)} after the HTTP runs), ${baseline.requestsPerSec.toFixed(2)} req/s`);
  console.log(`  load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)} on ${cpus().length} CPUs (llvmpipe shares them)`);
  console.log(`  device ${adapter} | timer wall clock | commit ${gitCommit()}`);
  const report = {
    bench: 'serve',
    date: new Date().toISOString(),
    adapter,
    adapterInfo: serving.session.gpu.adapterInfo,
    commit: gitCommit(),
    timer: 'wall',
    loadAverage: { before: loadBefore, after: loadAfter, cpus: cpus().length },
    model: { id: engine.modelId, dtype: args.dtype, artifact: args.artifact ?? null, contextLength: engine.contextLength },
    settings: { clients: args.clients, requests: args.requests ?? 'max(8, 2*clients)', maxTokens: args.maxTokens, timeLimitS: args.timeLimitS, sampling: 'temperature 0.8, top_p 0.95, seeded', scheduler: 'FIFO, one executor (no batching)' },
    baseline,
    results: rows,
  };
  writeJsonReport(args.out, report, adapter);
  console.log(`  wrote ${args.out}`);
  serving.close();
  return rows.every((r) => r.errors === 0) ? 0 : 1;
}

runIfMain(import.meta.url, main);
