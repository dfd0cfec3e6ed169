// Continuous batching over real HTTP: stories260K on the test GPU behind a server whose engine decodes
// up to 8 sequences per step (serve/batching-engine.ts). Concurrent greedy streams must return what
// each request gets alone; cancellation frees a slot; /metrics shows the steps; the API key guards
// /v1/*; /tokenize and /detokenize round-trip; the llama-server sampling fields are honoured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postSse } from './sse-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const MODEL = 'stories260k';
let running: TestServer;
let url: string;

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** Prompts of different lengths (3..~40 tokens) and different answer lengths: the steps mix prefill and decode rows. */
const REQUESTS = [
  { prompt: 'Once upon a time', max_tokens: 40 },
  { prompt: 'The little dog', max_tokens: 12 },
  { prompt: 'Lily and Tom went to the park. They saw a big tree with red apples and a bird that sang a song. Tom said', max_tokens: 30 },
  { prompt: 'One day, a big bird', max_tokens: 25 },
  { prompt: 'Sam had a red ball', max_tokens: 8 },
  { prompt: 'There was a cat who liked to sleep in the sun all day long, and', max_tokens: 35 },
  { prompt: 'Mom said', max_tokens: 20 },
  { prompt: 'The sun was hot and', max_tokens: 200 }, // cancelled mid-stream
];
const CANCELLED = 7;

/** The streamed text and finish_reason of one greedy completion (text chunks concatenated). */
async function stream(req: { prompt: string; max_tokens: number }, signal?: AbortSignal, onText?: (n: number) => void) {
  let text = '';
  let finish: string | null = null;
  let chunks = 0;
  const logprobs: number[] = [];
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal,
    body: JSON.stringify({ model: MODEL, ...req, temperature: 0, stream: true, logprobs: 0 }),
  });
  expect(res.status).toBe(200);
  const { readSse } = await import('./sse-client.js');
  const { events } = await readSse(res, (data) => {
    if (data === '[DONE]') return;
    const c = JSON.parse(data) as { choices: Array<{ text: string; finish_reason: string | null; logprobs: { token_logprobs: number[] } | null }> };
    text += c.choices[0]!.text;
    logprobs.push(...(c.choices[0]!.logprobs?.token_logprobs ?? []));
    finish = c.choices[0]!.finish_reason ?? finish;
    if (c.choices[0]!.text) onText?.(++chunks);
  });
  return { text, finish, logprobs, done: events.at(-1) === '[DONE]' };
}

beforeAll(async () => {
  running = await startTestServer({ slots: 8, maxSeqLen: 128, requestTimeoutMs: 60_000, apiKey: undefined });
  url = running.server.url;
});

afterAll(async () => {
  await running?.close();
});

describe('continuous batching over HTTP (8 slots)', () => {
  it('8 concurrent greedy streams of mixed lengths, one cancelled: each equals the same request alone', async () => {
    // Alone: one request at a time, each the only sequence in its steps.
    const alone: Array<{ text: string; finish: string | null; logprobs: number[] }> = [];
    for (const r of REQUESTS.slice(0, CANCELLED)) alone.push(await stream(r));
    const before = await (await fetch(`${url}/metrics`)).text();
    const stepsBefore = Number(/^aser_step_rows_count (\d+)/m.exec(before)![1]);

    const cancel = new AbortController();
    const together = await Promise.all(
      REQUESTS.map((r, i) =>
        i === CANCELLED
          ? stream(r, cancel.signal, (n) => n === 5 && cancel.abort()).catch(() => ({ text: '', finish: 'cancelled', logprobs: [], done: false }))
          : stream(r),
      ),
    );
    for (let i = 0; i < CANCELLED; i++) {
      expect(together[i]!.done).toBe(true);
      // Same tokens. Not bit-identical logits: a step of ≤ 2 rows runs the dense GEMV, a larger one the
      // tiled GEMM, whose f32 sums round in another order (~1e-6 relative; the executor's forwardBatch
      // test bounds logits within 1e-4 of the float64 reference). Greedy picks could only differ where
      // two top logits lie that close; the logprobs of the chosen tokens agree within 1e-3.
      expect({ i, text: together[i]!.text, finish: together[i]!.finish }).toEqual({ i, text: alone[i]!.text, finish: alone[i]!.finish });
      expect(together[i]!.logprobs.length).toBe(alone[i]!.logprobs.length);
      const worst = together[i]!.logprobs.reduce((w, lp, k) => Math.max(w, Math.abs(lp - alone[i]!.logprobs[k]!)), 0);
      expect(worst).toBeLessThan(1e-3);
    }
    expect(together[CANCELLED]!.finish).toBe('cancelled');

    // The batch really shared steps: more rows per step than one sequence alone would give.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const steps = Number(/^aser_step_rows_count (\d+)/m.exec(metrics)![1]) - stepsBefore;
    const rows = Number(/^aser_step_rows_sum (\d+)/m.exec(metrics)![1]) - Number(/^aser_step_rows_sum (\d+)/m.exec(before)![1]);
    const generated = REQUESTS.slice(0, CANCELLED).reduce((n, r) => n + r.max_tokens, 0);
    expect(steps).toBeLessThan(generated / 2);
    expect(rows / steps).toBeGreaterThan(2);
    expect(metrics).toMatch(/^aser_slots 8$/m);
    expect(metrics).toMatch(/^aser_queue_time_seconds_count \d+$/m);

    // The cancelled sequence's slot is free again: all 8 can run at once, and the server is idle after.
    const again = await Promise.all(REQUESTS.slice(0, 8).map((r) => stream({ ...r, max_tokens: 3 })));
    expect(again.every((r) => r.done)).toBe(true);
    const health = (await (await fetch(`${url}/health`)).json()) as { running: number; slots: number; queue_depth: number };
    expect(health).toMatchObject({ running: 0, slots: 8, queue_depth: 0 });
  }, 120_000);

  it('a prompt that extends what a slot holds prefills only its new tokens', async () => {
    const tok = running.tokenizer;
    const params = { maxTokens: 4, temperature: 0, topP: 1, logprobs: false, topLogprobs: 0, stopTokens: [tok.eosId] };
    const first = tok.encode('Once upon a time, there was a girl named Lily', { bos: true });
    const ids: number[] = [];
    const a = await running.engine.generate(first, params, (t) => void ids.push(t.id));
    const next = [...first, ...ids, ...tok.encode(' She liked', { bos: false })];
    const b = await running.engine.generate(next, params, () => true);
    expect(a.sampledTokens).toBe(4);
    // The slot holds the first prompt and three of its four answer tokens (the last one never ran).
    expect(b.reusedPromptTokens).toBe(first.length + 3);
    // A prompt longer than one step's prompt rows (64) prefills over several steps, some with no logits.
    const long = tok.encode('Once upon a time, there was a little girl named Lily. '.repeat(6), { bos: true });
    expect(long.length).toBeGreaterThan(64);
    const c = await running.engine.generate(long, params, () => true);
    expect(c).toMatchObject({ finish: 'length', sampledTokens: 4, promptTokens: long.length });
  });

  it('tokenizes and detokenizes (llama-server shapes)', async () => {
    const t = (await (await post('/tokenize', { content: 'Once upon a time', add_special: true, with_pieces: true })).json()) as { tokens: Array<{ id: number; piece: string }> };
    const ids = t.tokens.map((x) => x.id);
    expect(ids).toEqual(running.tokenizer.encode('Once upon a time', { bos: true }));
    expect(t.tokens.slice(1).map((x) => x.piece).join('')).toContain('upon');
    const plain = (await (await post('/tokenize', { content: 'Once upon a time' })).json()) as { tokens: number[] };
    expect(plain.tokens).toEqual(ids.slice(1));
    const d = (await (await post('/detokenize', { tokens: plain.tokens })).json()) as { content: string };
    expect(d.content.trim()).toBe('Once upon a time');
    const bad = await post('/detokenize', { tokens: [1, -4] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('tokens');
  });

  it('takes top_k, min_p and penalties; a repeat penalty changes a greedy answer that repeats', async () => {
    const base = { model: MODEL, prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
    const plain = (await (await post('/v1/completions', base)).json()) as { choices: Array<{ text: string }> };
    const penalized = (await (await post('/v1/completions', { ...base, repeat_penalty: 1.5, frequency_penalty: 1, presence_penalty: 0.5 })).json()) as { choices: Array<{ text: string }> };
    expect(penalized.choices[0]!.text).not.toBe(plain.choices[0]!.text);
    // top_k 1 and min_p 1 both keep only the most likely token: the greedy answer, even at temperature 1.
    for (const extra of [{ top_k: 1 }, { min_p: 1 }]) {
      const r = (await (await post('/v1/completions', { ...base, temperature: 1, seed: 5, ...extra })).json()) as { choices: Array<{ text: string }> };
      expect(r.choices[0]!.text).toBe(plain.choices[0]!.text);
    }
    const bad = await post('/v1/completions', { ...base, min_p: 2 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('min_p');
  });
});

describe('API key', () => {
  let keyed: TestServer;
  beforeAll(async () => {
    keyed = await startTestServer({ slots: 2, maxSeqLen: 64, apiKey: 'sk-test-123' });
  });
  afterAll(async () => {
    await keyed?.close();
  });

  it('answers 401 in OpenAI\'s shape without the key or with a wrong one; /health stays open', async () => {
    const u = keyed.server.url;
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic sk-test-123' }]) {
      for (const [method, path] of [['GET', '/v1/models'], ['POST', '/v1/completions'], ['POST', '/tokenize']] as const) {
        const res = await fetch(`${u}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'POST' ? '{}' : undefined });
        expect(res.status).toBe(401);
        const body = (await res.json()) as { error: { message: string; type: string; param: null; code: string } };
        expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key', param: null });
      }
    }
    expect((await fetch(`${u}/health`)).status).toBe(200);
    const ok = await fetch(`${u}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test-123' },
      body: JSON.stringify({ model: MODEL, prompt: 'Once', max_tokens: 3 }),
    });
    expect(ok.status).toBe(200);
  });
});

describe('graceful shutdown in process', () => {
  it('lets short requests finish and ends a long stream with a final chunk and [DONE] after the grace period', async () => {
    const s = await startTestServer({ slots: 4, maxSeqLen: 256 });
    const u = s.server.url;
    const body = (max: number) => ({ model: MODEL, prompt: 'Once upon a time', max_tokens: max, temperature: 0.8, seed: 1, stream: true });
    let started!: () => void;
    const firstToken = new Promise<void>((r) => (started = r));
    const long = fetch(`${u}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(240)) }).then(async (res) => {
      const { readSse } = await import('./sse-client.js');
      return readSse(res, () => started());
    });
    const short = postSse(`${u}/v1/completions`, body(4));
    await firstToken;
    const t0 = performance.now();
    await s.server.shutdown(300);
    expect(performance.now() - t0).toBeLessThan(10_000);
    const [l, sh] = await Promise.all([long, short]);
    for (const r of [l, sh]) {
      expect(r.events.at(-1)).toBe('[DONE]');
      const last = JSON.parse(r.events.at(-2)!) as { choices: Array<{ finish_reason: string }> };
      expect(last.choices[0]!.finish_reason).toBe('length');
    }
    // After the shutdown nothing is accepted.
    await expect(fetch(`${u}/health`)).rejects.toThrow();
    s.engine.close();
  }, 60_000);
});
