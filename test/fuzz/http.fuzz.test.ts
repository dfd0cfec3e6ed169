// Fuzzed HTTP requests against the real server (stories260K on the real WebGPU device, loopback):
// every answer is a well-formed success or an OpenAI-style 4xx, never a 5xx, a hang or a dropped
// connection, and the server still serves a normal request afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RunningServer } from '../../serve/server.js';
import { httpCase, runHttpCase } from '../../bench/lib/http-fuzz.js';
import { startTestServer, TEST_MODEL as MODEL, type TestServer } from '../helpers/test-server.js';

const RUNS = Number(process.env.ASER_FUZZ_RUNS ?? 150);
let running: TestServer;
let server: RunningServer;

beforeAll(async () => {
  running = await startTestServer({ maxSeqLen: 64, maxQueue: 4, maxBodyBytes: 4 << 10, requestTimeoutMs: 20_000, defaultMaxTokens: 4 });
  server = running.server;
});

afterAll(async () => {
  await running?.close();
});

describe('fuzzed HTTP requests', () => {
  it(`${RUNS} generated and mutated requests: well-formed answers only, and the server keeps serving`, async () => {
    const seen: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(httpCase, async (c) => {
        const r = await runHttpCase(server.url, MODEL, c);
        seen[r.outcome] = (seen[r.outcome] ?? 0) + 1;
        if (r.failure) throw new Error(r.failure);
      }),
      { numRuns: RUNS, seed: 8 },
    );
    // The generator reaches generation (200s) and validation (400s) alike.
    expect(Object.keys(seen).some((k) => k.startsWith('200'))).toBe(true);
    expect(Object.keys(seen).some((k) => k.startsWith('400'))).toBe(true);
    const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: Array<{ text: string }> }).choices[0]!.text.length).toBeGreaterThan(0);
    expect(await (await fetch(`${server.url}/health`)).json()).toMatchObject({ status: 'ok', queue_depth: 0, running: 0 });
  });
});
