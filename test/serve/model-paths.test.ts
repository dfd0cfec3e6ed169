// Only the configured model is served: no value of a request's `model` field or /v1/models/:id path
// reaches the filesystem. Paths to real files (the served model's own weights included), absolute,
// relative, URL-encoded and file: forms are all refused with an OpenAI-style 404, on every route, and
// the server binds loopback unless told otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import type { RunningServer } from '../../serve/server.js';
import { startTestServer, TEST_MODEL as MODEL, type TestServer } from '../helpers/test-server.js';

let running: TestServer;
let server: RunningServer;

beforeAll(async () => {
  running = await startTestServer({ maxSeqLen: 64, defaultMaxTokens: 2 });
  server = running.server;
});

afterAll(async () => {
  await running?.close();
});

const PATHS = [
  '../../etc/passwd', '/etc/passwd', 'file:///etc/passwd', '~/.ssh/id_rsa', '..', '.', '',
  'models/stories260k/model.bin', resolve('models/stories260k/model.bin'), resolve('models/stories260k'), '../shared/models/stories260K/model.bin',
  'stories260k/../stories260k', './stories260k', 'stories260k\u0000', 'STORIES260K', ' stories260k', 'llama3-8b', 'tinyllama',
];

describe('requests cannot name files', () => {
  it('binds 127.0.0.1 by default', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses every model value but the served id with 404 model_not_found, on completions and chat', async () => {
    for (const model of PATHS) {
      for (const [route, extra] of [['/v1/completions', { prompt: 'Hi' }], ['/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }] }]] as const) {
        const res = await fetch(`${server.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, ...extra }) });
        const body = (await res.json()) as { error: { code: string; type: string; param: string } };
        expect(res.status, `${route} ${JSON.stringify(model)}`).toBe(model === '' ? 400 : 404);
        if (model !== '') expect(body.error).toMatchObject({ code: 'model_not_found', type: 'not_found_error', param: 'model' });
      }
    }
  });

  it('refuses paths in /v1/models/:id, encoded or not', async () => {
    for (const model of PATHS.filter((p) => p !== '')) {
      const res = await fetch(`${server.url}/v1/models/${encodeURIComponent(model)}`);
      expect(res.status, model).toBe(404);
    }
    expect((await fetch(`${server.url}/v1/models/%E0%A4%A`)).status).toBe(400); // malformed escape
    const ok = await fetch(`${server.url}/v1/models/${MODEL}`);
    expect(ok.status).toBe(200);
  });
});
