// Load test: N concurrent streaming clients (default 32) against `aser serve` (a child process on
// loopback, default stories260k) for a fixed time (default 60 s). Each client loops: one streaming
// request (completions and chat alternately, sampled with its own seed), checked for well-formedness:
// HTTP 200, every SSE event JSON until a final [DONE], a finish_reason, usage. Reports errors, requests,
// tokens/s, latency and TTFT percentiles, and the server's RSS at start, end and peak (sampled from
// /proc every 250 ms). Bounded: clients stop sending at the deadline, in-flight requests get a grace
// period, then the server is stopped. Prints a table and writes bench/results/load.json.
//
//   node dist/bench/load.js [--clients 32] [--seconds 60] [--max-tokens 48] [--model stories260k] [--out file]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../loaders/datasets.js';
import { progressBar } from '../node/progress.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

interface Args {
  clients: number;
  seconds: number;
  maxTokens: number;
  model: string;
  out: string;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park', 'One day, a big bird', 'The sun was hot and', 'Sam had a red ball', 'There was a cat who', 'Mom said'];
const GRACE_MS = 60_000;

function parseArgs(argv: string[]): Args {
  const a: Args = { clients: 32, seconds: 60, maxTokens: 48, model: 'stories260k', out: join(repoRoot(), 'bench', 'results', 'load.json') };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i]!, argv[i + 1]];
    if (v === undefined) throw new Error(`load bench: ${k} needs a value`);
    if (k === '--clients') a.clients = Number(v);
    else if (k === '--seconds') a.seconds = Number(v);
    else if (k === '--max-tokens') a.maxTokens = Number(v);
    else if (k === '--model') a.model = v;
    else if (k === '--out') a.out = resolve(v);
    else throw new Error(`load bench: unknown option ${k} (--clients --seconds --max-tokens --model --out)`);
  }
  if (!Number.isInteger(a.clients) || a.clients < 1 || a.clients > 256) throw new Error('load bench: --clients must be an integer in 1..256');
  if (!(a.seconds > 0 && a.seconds <= 3600)) throw new Error('load bench: --seconds must be in (0, 3600]');
  if (!Number.isInteger(a.maxTokens) || a.maxTokens < 1) throw new Error('load bench: --max-tokens must be a positive integer');
  return a;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

interface StreamCheck {
  ok: boolean;
  problem?: string;
  ttftMs: number;
  latencyMs: number;
  completionTokens: number;
}

/** One streaming request, fully validated. */
async function oneStream(url: string, model: string, chat: boolean, prompt: string, maxTokens: number, seed: number): Promise<StreamCheck> {
  const t0 = performance.now();
  const body = chat
    ? { model, messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens, temperature: 0.8, seed, stream: true, stream_options: { include_usage: true } }
    : { model, prompt, max_tokens: maxTokens, temperature: 0.8, seed, stream: true, stream_options: { include_usage: true } };
  const fail = (problem: string): StreamCheck => ({ ok: false, problem, ttftMs: NaN, latencyMs: performance.now() - t0, completionTokens: 0 });
  let res: Response;
  try {
    res = await fetch(`${url}/v1/${chat ? 'chat/completions' : 'completions'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(GRACE_MS) });
  } catch (err) {
    return fail(`fetch: ${(err as Error).message}`);
  }
  if (res.status !== 200) return fail(`HTTP ${res.status}: ${(await res.text()).slice(0, 120)}`);
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) return fail(`content-type ${res.headers.get('content-type')}`);
  let text = '';
  let ttft = NaN;
  try {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (Number.isNaN(ttft)) ttft = performance.now() - t0;
      text += decoder.decode(value, { stream: true });
    }
  } catch (err) {
    return fail(`stream read: ${(err as Error).message}`);
  }
  if (!text.endsWith('\n\n')) return fail('stream does not end with a blank line');
  const events = text.slice(0, -2).split('\n\n');
  if (events.at(-1) !== 'data: [DONE]') return fail('stream does not end with data: [DONE]');
  let finish = false;
  let tokens = -1;
  for (const ev of events.slice(0, -1)) {
    if (!ev.startsWith('data: ')) return fail(`event without data: ${ev.slice(0, 60)}`);
    let obj: { error?: unknown; choices?: Array<{ finish_reason?: string | null }>; usage?: { completion_tokens: number } };
    try {
      obj = JSON.parse(ev.slice(6));
    } catch {
      return fail(`event is not JSON: ${ev.slice(0, 60)}`);
    }
    if (obj.error) return fail(`error event: ${JSON.stringify(obj.error).slice(0, 120)}`);
    if (obj.choices?.some((c) => typeof c.finish_reason === 'string')) finish = true;
    if (obj.usage) tokens = obj.usage.completion_tokens;
  }
  if (!finish) return fail('no finish_reason');
  if (tokens < 0) return fail('no usage chunk');
  return { ok: true, ttftMs: ttft, latencyMs: performance.now() - t0, completionTokens: tokens };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const cli = join(repoRoot(), 'dist', 'cli', 'aser.js');
  const server = spawn(process.execPath, [cli, 'serve', '--model', args.model, '--port', '0', '--quiet', '--max-queue', String(args.clients + 8), '--max-tokens', String(args.maxTokens)], {
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let serverErr = '';
  server.stderr.on('data', (d: Buffer) => (serverErr += d.toString()).length > 20_000 && (serverErr = serverErr.slice(-10_000)));
  const stopServer = () => {
    if (server.exitCode === null) server.kill('SIGTERM');
  };
  try {
    const url = await new Promise<string>((ok, bad) => {
      let out = '';
      const timer = setTimeout(() => bad(new Error(`server did not start within 60 s:\n${serverErr}`)), 60_000);
      server.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^listening (\S+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          ok(m[1]!);
        }
      });
      server.on('exit', (code) => bad(new Error(`server exited (${code}) before listening:\n${serverErr}`)));
    });
    const pid = server.pid!;
    const rssStart = rssOf(pid);
    let rssPeak = rssStart;
    const timeline: Array<{ s: number; rssMiB: number }> = [];
    const t0 = performance.now();
    const sampler = setInterval(() => {
      const r = rssOf(pid);
      rssPeak = Math.max(rssPeak, r);
      const s = (performance.now() - t0) / 1000;
      if (timeline.length === 0 || s - timeline.at(-1)!.s >= 5) timeline.push({ s: +s.toFixed(1), rssMiB: +(r / 2 ** 20).toFixed(1) });
    }, 250);

    const deadline = t0 + args.seconds * 1000;
    const results: StreamCheck[] = [];
    const problems: string[] = [];
    const bar = progressBar(`load ${args.clients} clients`, args.seconds, 's');
    const ticker = setInterval(() => bar.update(Math.min(args.seconds, Math.round((performance.now() - t0) / 1000)), `${results.length} requests, ${problems.length} errors`), 1000);
    const client = async (c: number) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const r = await oneStream(url, args.model, (c + i) % 2 === 1, PROMPTS[(c * 7 + i) % PROMPTS.length]!, args.maxTokens, c * 100_000 + i);
        results.push(r);
        if (!r.ok) problems.push(r.problem!);
      }
    };
    await Promise.all(Array.from({ length: args.clients }, (_, c) => client(c)));
    clearInterval(ticker);
    bar.finish(`${results.length} requests, ${problems.length} errors`);
    const wall = (performance.now() - t0) / 1000;
    const rssEnd = rssOf(pid);
    clearInterval(sampler);

    const ok = results.filter((r) => r.ok);
    const tokens = ok.reduce((n, r) => n + r.completionTokens, 0);
    const mib = (b: number) => +(b / 2 ** 20).toFixed(1);
    const report = {
      bench: 'load', date: new Date().toISOString(), model: args.model, clients: args.clients, seconds: args.seconds, maxTokens: args.maxTokens,
      host: { cpus: cpus().length, loadavg: loadavg().map((x) => +x.toFixed(2)) },
      requests: results.length, errors: problems.length, wellFormedStreams: ok.length, firstErrors: problems.slice(0, 10),
      wallSeconds: +wall.toFixed(1), requestsPerSec: +(results.length / wall).toFixed(2), completionTokens: tokens, tokensPerSec: +(tokens / wall).toFixed(1),
      latencyMs: { p50: +percentile(ok.map((r) => r.latencyMs), 0.5).toFixed(0), p95: +percentile(ok.map((r) => r.latencyMs), 0.95).toFixed(0), max: +Math.max(...ok.map((r) => r.latencyMs)).toFixed(0) },
      // First byte = the stream opening (sent as soon as the request is queued), not the first token.
      firstByteMs: { p50: +percentile(ok.map((r) => r.ttftMs), 0.5).toFixed(0), p95: +percentile(ok.map((r) => r.ttftMs), 0.95).toFixed(0) },
      serverRssMiB: { start: mib(rssStart), end: mib(rssEnd), peak: mib(rssPeak), timeline },
    };
    console.log(`\n| clients | s | requests | errors | well-formed | tok/s | p50 / p95 latency ms | p50 first byte ms | RSS start / end / peak MiB |`);
    console.log('|---:|---:|---:|---:|---:|---:|---|---:|---|');
    console.log(`| ${args.clients} | ${report.wallSeconds} | ${report.requests} | ${report.errors} | ${report.wellFormedStreams} | ${report.tokensPerSec} | ${report.latencyMs.p50} / ${report.latencyMs.p95} | ${report.firstByteMs.p50} | ${report.serverRssMiB.start} / ${report.serverRssMiB.end} / ${report.serverRssMiB.peak} |`);
    for (const p of problems.slice(0, 5)) console.log(`  error: ${p}`);
    writeJsonReport(args.out, report, await probeAdapter());
    console.log(`wrote ${args.out}`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    stopServer();
    await new Promise<void>((r) => (server.exitCode !== null ? r() : server.once('exit', () => r())));
  }
}

runIfMain(import.meta.url, main);
