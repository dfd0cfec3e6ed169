// The OpenAI-compatible server end to end: real HTTP on 127.0.0.1 (a free port), the real stories260K
// model on the real WebGPU device, requests through raw fetch and through the official `openai` client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI, { APIError } from 'openai';
import { testGpu } from '../helpers/gpu.js';
import { resolveModel } from '../../loaders/registry.js';
import { Executor } from '../../runtime/executor.js';
import type { TextTokenizer } from '../../core/model.js';
import { ExecutorEngine, logprobsOf } from '../../serve/executor-engine.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { fallbackChatTemplate } from '../../serve/chat-template.js';
import { postSse, readSse } from './sse-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const MODEL = 'stories260k';
const PROMPT = 'Once upon a time';
let server: RunningServer;
let engine: ExecutorEngine;
let tokenizer: TextTokenizer;
let client: OpenAI;
let running: TestServer;

const post = (path: string, body: unknown, init: RequestInit = {}) =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });

/** A greedy completion through raw fetch, the baseline other tests compare with. */
async function greedy(prompt: string, maxTokens: number, extra: Record<string, unknown> = {}) {
  const res = await post('/v1/completions', { model: MODEL, prompt, max_tokens: maxTokens, temperature: 0, ...extra });
  expect(res.status).toBe(200);
  return (await res.json()) as { choices: Array<{ text: string; finish_reason: string; logprobs: any }>; usage: any; id: string; object: string };
}

async function expectError(res: Response, status: number, code?: string, param?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.message.length).toBeGreaterThan(10);
  if (code) expect(body.error.code).toBe(code);
  if (param) expect(body.error.param).toBe(param);
  return body.error;
}

beforeAll(async () => {
  running = await startTestServer({ maxQueue: 8, maxBodyBytes: 16 << 10, requestTimeoutMs: 30_000 });
  ({ server, engine, tokenizer } = running);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await running?.close();
});

describe('serving stories260K over HTTP', () => {
  it('binds loopback and lists the one configured model', async () => {
    expect(server.host).toBe('127.0.0.1');
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', model: MODEL, queue_depth: 0, running: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
  });

  it('completes greedily and deterministically, with usage counts, through fetch and the openai client', async () => {
    const a = await greedy(PROMPT, 24);
    expect(a.object).toBe('text_completion');
    expect(a.id).toMatch(/^cmpl-/);
    const text = a.choices[0]!.text;
    expect(text.length).toBeGreaterThan(20);
    const promptTokens = tokenizer.encode(PROMPT, { bos: true }).length;
    expect(a.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 24, total_tokens: promptTokens + 24 });
    expect(a.choices[0]!.finish_reason).toBe('length');

    const b = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0 });
    expect(b.choices[0]!.text).toBe(text);
    expect(b.usage?.completion_tokens).toBe(24);
  });

  it('samples reproducibly with a seed (temperature, top_p)', async () => {
    const req = { model: MODEL, prompt: PROMPT, max_tokens: 20, temperature: 1, top_p: 0.9, seed: 1234 };
    const [x, y] = [await client.completions.create(req), await client.completions.create(req)];
    expect(x.choices[0]!.text).toBe(y.choices[0]!.text);
    const other = await client.completions.create({ ...req, seed: 99 });
    const another = await client.completions.create({ ...req, seed: 7 });
    expect(new Set([x.choices[0]!.text, other.choices[0]!.text, another.choices[0]!.text]).size).toBeGreaterThan(1);
  });

  it('samples the same text on the GPU as on the host (a logprobs request reads the logits back)', async () => {
    const req = { model: MODEL, prompt: PROMPT, max_tokens: 30, temperature: 0.8, top_p: 0.9, seed: 4321 };
    const onGpu = await client.completions.create(req);
    const onHost = await client.completions.create({ ...req, logprobs: 1 });
    expect(onHost.choices[0]!.logprobs).toBeTruthy();
    expect(onGpu.choices[0]!.text).toBe(onHost.choices[0]!.text);
  });

  it('stops at stop sequences, streamed or not, and never sends them', async () => {
    const full = (await greedy(PROMPT, 40)).choices[0]!.text;
    const words = full.split(' ').filter((w) => /^[a-z]{3,}$/.test(w));
    const stopWord = words[2]!;
    const expected = full.slice(0, full.indexOf(stopWord));
    const cut = await greedy(PROMPT, 40, { stop: ['zzz-never', stopWord] });
    expect(cut.choices[0]!.text).toBe(expected);
    expect(cut.choices[0]!.finish_reason).toBe('stop');
    expect(cut.usage.completion_tokens).toBeLessThan(40);

    const streamed = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0, stop: stopWord, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of streamed) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(expected);
    expect(finish).toBe('stop');
  });

  it('streams completions as SSE whose deltas add up to the non-streamed text, with a usage chunk and [DONE]', async () => {
    const full = (await greedy(PROMPT, 30)).choices[0]!.text;
    const sse = await postSse(`${server.url}/v1/completions`, { model: MODEL, prompt: PROMPT, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    expect(sse.status).toBe(200);
    expect(sse.contentType).toMatch(/text\/event-stream/);
    expect(sse.events.at(-1)).toBe('[DONE]');
    const chunks = sse.events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) expect(c.object).toBe('text_completion');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBe(30);
    expect(chunks.slice(0, -1).map((c) => c.choices[0].text).join('')).toBe(full);
    expect(chunks.at(-2).choices[0].finish_reason).toBe('length');
  });

  it('answers chat completions through the fallback template, streamed and not', async () => {
    const messages = [{ role: 'system' as const, content: 'You tell short stories.' }, { role: 'user' as const, content: 'Tell me about a cat.' }];
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 24, temperature: 0 });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.role).toBe('assistant');
    const content = r.choices[0]!.message.content!;
    expect(content.length).toBeGreaterThan(0);
    expect(content).not.toContain('\nUser:');
    const rendered = fallbackChatTemplate().render(messages);
    expect(r.usage?.prompt_tokens).toBe(tokenizer.encode(rendered, { bos: true }).length);

    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 24, temperature: 0, stream: true });
    let text = '';
    let role: string | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(content);
    expect(finish).toBe(r.choices[0]!.finish_reason);

    const raw = await post('/v1/chat/completions', { model: MODEL, messages, max_tokens: 24, temperature: 0 });
    expect(((await raw.json()) as any).choices[0].message.content).toBe(content);
  });

  it('reports logprobs that match the model (completions through fetch, chat through the openai client)', async () => {
    const prompt = tokenizer.encode(PROMPT, { bos: true });
    const r = await greedy(PROMPT, 12, { logprobs: 3 });
    const lp = r.choices[0]!.logprobs;
    expect(lp.tokens.join('')).toBe(r.choices[0]!.text);
    expect(lp.tokens).toHaveLength(12);
    expect(lp.text_offset[0]).toBe(0);
    for (let i = 0; i < 12; i++) {
      const top = Object.entries(lp.top_logprobs[i] as Record<string, number>);
      expect(top.length).toBeGreaterThanOrEqual(1);
      expect(top.length).toBeLessThanOrEqual(3);
      // Greedy: the chosen token is the most likely one.
      expect(lp.token_logprobs[i]).toBeCloseTo(Math.max(...top.map(([, v]) => v)), 6);
      expect(lp.token_logprobs[i]).toBeLessThanOrEqual(0);
    }
    // Cross-check the first logprob against the executor directly (same model, same prompt).
    const ex = await Executor.create(await testGpu(), resolveModel(MODEL).source, { dtype: 'f32' });
    await ex.forward(prompt);
    const logits = await ex.logits();
    ex.destroy();
    const first = logprobsOf(logits, 0, 3);
    expect(lp.token_logprobs[0]).toBeCloseTo(first.top[0]!.logprob, 4);
    expect(Object.values(lp.top_logprobs[0]).sort((a, b) => (b as number) - (a as number))).toEqual(first.top.map((t) => expect.closeTo(t.logprob, 4)));
    // Alternatives are spelled as they would read in place (leading space kept).
    expect(Object.keys(lp.top_logprobs[0])).toContain(lp.tokens[0]);

    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0]!.logprobs!.content!;
    expect(content.map((c) => c.token).join('')).toBe(chat.choices[0]!.message.content);
    for (const c of content) {
      expect(c.top_logprobs).toHaveLength(2);
      expect(c.logprob).toBeCloseTo(c.top_logprobs[0]!.logprob, 6);
      expect(c.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(c.top_logprobs[1]!.logprob);
      expect(Buffer.from(c.bytes!).toString('utf8')).toBe(c.token);
    }

    const streamed = await postSse(`${server.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, logprobs: true, stream: true });
    const entries = streamed.events.slice(0, -1).flatMap((e) => JSON.parse(e).choices[0]?.logprobs?.content ?? []);
    expect(entries.map((e: { token: string }) => e.token)).toEqual(content.map((c) => c.token));
  });

  it('serves 8 concurrent streaming clients in FIFO order, every stream well-formed and equal to its sequential answer', async () => {
    const prompts = ['Once upon a time', 'The cat', 'Lily saw a', 'One day, a big', 'Tom and Sue', 'The sun was', 'A little bird', 'There was a dog'];
    const sequential: string[] = [];
    for (const p of prompts) sequential.push((await greedy(p, 16)).choices[0]!.text);
    const results = await Promise.all(
      prompts.map(async (p, i) => {
        // Half through the openai client, half through raw fetch.
        if (i % 2 === 0) {
          const stream = await client.completions.create({ model: MODEL, prompt: p, max_tokens: 16, temperature: 0, stream: true });
          let text = '';
          let finish: string | null = null;
          for await (const c of stream) {
            text += c.choices[0]?.text ?? '';
            finish = c.choices[0]?.finish_reason ?? finish;
          }
          return { text, finish, done: true };
        }
        const sse = await postSse(`${server.url}/v1/completions`, { model: MODEL, prompt: p, max_tokens: 16, temperature: 0, stream: true });
        const chunks = sse.events.slice(0, -1).map((e) => JSON.parse(e));
        return { text: chunks.map((c) => c.choices[0].text).join(''), finish: chunks.at(-1).choices[0].finish_reason, done: sse.events.at(-1) === '[DONE]' };
      }),
    );
    results.forEach((r, i) => {
      expect(r.done).toBe(true);
      expect(r.finish).toBe('length');
      expect(r.text).toBe(sequential[i]);
    });
  });

  it('refuses with 429 when the queue is full, and serves the accepted requests', async () => {
    // A long stream occupies the executor; then 10 short requests arrive: 8 may wait (maxQueue 8), 2 are refused.
    const controller = new AbortController();
    const long = await post('/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 400, temperature: 0, stream: true }, { signal: controller.signal });
    const reader = long.body!.getReader();
    await reader.read();
    const pending = Array.from({ length: 10 }, () => post('/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 2, temperature: 0 }));
    // Refusals come back at once, while the long stream still runs.
    const first = await Promise.race(pending);
    expect(first.status).toBe(429);
    expect((await (await fetch(`${server.url}/health`)).json()).queue_depth).toBe(8);
    controller.abort(); // the waiting requests then run
    const responses = await Promise.all(pending);
    const statuses = await Promise.all(responses.map(async (r) => {
      if (r.status === 429) {
        expect(r.headers.get('retry-after')).toBe('1');
        expect((await expectError(r, 429, 'queue_full')).type).toBe('rate_limit_error');
      } else expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(2);
      return r.status;
    }));
    expect(statuses.filter((x) => x === 429)).toHaveLength(2);
    expect(statuses.filter((x) => x === 200)).toHaveLength(8);
  });

  it('stops generating when a streaming client disconnects', async () => {
    const before = server.metrics.cancelled.get({ reason: 'disconnect' });
    const controller = new AbortController();
    const started = performance.now();
    const res = await post('/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 400, temperature: 0, stream: true }, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read(); // at least one chunk has arrived: generation is under way
    controller.abort();
    // 400 tokens take seconds; the server must notice the disconnect and free the executor quickly.
    for (let i = 0; i < 100 && server.metrics.cancelled.get({ reason: 'disconnect' }) === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.metrics.cancelled.get({ reason: 'disconnect' })).toBe(before + 1);
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health.running).toBe(0);
    const generated = server.metrics.generatedTokens.get();
    await new Promise((r) => setTimeout(r, 100));
    expect(server.metrics.generatedTokens.get()).toBe(generated);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('answers bad requests with OpenAI-style 4xx errors and keeps serving', async () => {
    await expectError(await post('/v1/completions', '{"model": "stories260k", "prompt": '), 400, 'invalid_json');
    await expectError(await post('/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 'many' }), 400, 'invalid_type', 'max_tokens');
    await expectError(await post('/v1/completions', { model: MODEL, prompt: PROMPT, temperature: -1 }), 400, 'invalid_value', 'temperature');
    await expectError(await post('/v1/chat/completions', { model: MODEL, messages: 'hello' }), 400, 'invalid_type', 'messages');
    await expectError(await post('/v1/completions', { model: '../../etc/passwd', prompt: PROMPT }), 404, 'model_not_found', 'model');
    await expectError(await post('/v1/completions', { model: MODEL, prompt: 'the cat sat on the mat. '.repeat(120) }), 400, 'context_length_exceeded', 'prompt');
    await expectError(await post('/v1/completions', { model: MODEL, prompt: [1, 99999] }), 400, 'invalid_value', 'prompt');
    await expectError(await post('/v1/completions', { model: MODEL, prompt: 'x'.repeat(20 << 10) }), 413, 'request_too_large');
    // Without Content-Length (chunked), the limit is enforced while reading.
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(`{"model":"${MODEL}","prompt":"${'y'.repeat(20 << 10)}"}`));
        c.close();
      },
    });
    await expectError(await fetch(`${server.url}/v1/completions`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit), 413, 'request_too_large');
    await expectError(await fetch(`${server.url}/v1/completions`), 405, 'method_not_allowed');
    await expectError(await fetch(`${server.url}/v1/nothing`), 404, 'unknown_route');
    await expectError(await fetch(`${server.url}/v1/models/other`), 404, 'model_not_found');

    // The official client sees the same errors as typed APIErrors.
    const err = await client.completions.create({ model: 'gpt-4', prompt: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(404);
    expect((err as APIError).code).toBe('model_not_found');
    const long = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(600) }] }).catch((e: unknown) => e);
    expect((long as APIError).status).toBe(400);

    // Still serving.
    expect((await greedy(PROMPT, 4)).choices[0]!.text.length).toBeGreaterThan(0);
  });

  it('clamps max_tokens to the context and says so with finish_reason length', async () => {
    const prompt = 'the cat sat on the mat. '.repeat(45);
    const n = tokenizer.encode(prompt, { bos: true }).length;
    expect(n).toBeLessThan(engine.contextLength);
    const r = await greedy(prompt, 100000);
    const total = r.usage.prompt_tokens + r.usage.completion_tokens;
    expect(total).toBeLessThanOrEqual(engine.contextLength);
    if (r.choices[0]!.finish_reason === 'length') expect(total).toBe(engine.contextLength);
  });

  it('exposes Prometheus metrics: counters, queue depth, TTFT and per-token latency histograms', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    const value = (re: RegExp) => Number(text.match(re)?.[1]);
    expect(value(/^aser_generated_tokens_total (\d+)$/m)).toBeGreaterThan(100);
    expect(value(/^aser_time_to_first_token_seconds_count (\d+)$/m)).toBeGreaterThan(10);
    expect(value(/^aser_inter_token_latency_seconds_count (\d+)$/m)).toBeGreaterThan(100);
    expect(value(/^aser_queue_depth (\d+)$/m)).toBe(0);
    expect(value(/^aser_generation_tokens_per_second ([\d.]+)$/m)).toBeGreaterThan(0);
    expect(value(/^aser_http_requests_total\{route="\/v1\/completions",code="429"\} (\d+)$/m)).toBe(2);
    expect(value(/^aser_generations_cancelled_total\{reason="disconnect"\} (\d+)$/m)).toBe(2);
    // Every sample line is "name{labels} value".
    for (const line of text.trim().split('\n')) if (!line.startsWith('#')) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [-+\d.eE]+|\+Inf|NaN$/);
  });

  it('times a request out with 504 (queued or running), and the server stays usable', async () => {
    // A second server on the same (idle) engine, with a timeout far below 400 tokens' worth of decode.
    const short = await startServer({ engine, port: 0, requestTimeoutMs: 150 });
    try {
      const res = await fetch(`${short.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: 400, temperature: 0 }) });
      const error = await expectError(res, 504, 'request_timeout');
      expect(error.type).toBe('timeout_error');
      const sse = await postSse(`${short.url}/v1/completions`, { model: MODEL, prompt: PROMPT, max_tokens: 400, temperature: 0, stream: true });
      expect(sse.status).toBe(200);
      expect(JSON.parse(sse.events.at(-2)!).error.code).toBe('request_timeout');
      expect(sse.events.at(-1)).toBe('[DONE]');
      expect(short.metrics.cancelled.get({ reason: 'timeout' })).toBe(2);
    } finally {
      await short.close();
    }
    expect((await greedy(PROMPT, 3)).choices[0]!.text.length).toBeGreaterThan(0);
  });
});
