// Device loss under the server, for real: the GPU device serving stories260K is destroyed in the
// middle of a streaming request with three more queued behind it. The running stream ends with a
// device_lost error event and [DONE], each queued request gets a 503 device_lost (none hangs), the
// server re-creates device, executor and engine, and then serves the same greedy answer as before.
import { afterAll, describe, expect, it } from 'vitest';
import { openNodeDevice } from '../../node/gpu.js';
import { resolveModel } from '../../loaders/registry.js';
import { Executor } from '../../runtime/executor.js';
import { ExecutorEngine } from '../../serve/executor-engine.js';
import { RecoveringEngine, type DeviceEngine } from '../../serve/recovering-engine.js';
import { startServer, type RunningServer } from '../../serve/server.js';
import { fallbackChatTemplate } from '../../serve/chat-template.js';
import { readSse } from './sse-client.js';

const MODEL = 'stories260k';
let server: RunningServer | undefined;
let engine: RecoveringEngine | undefined;

async function openEngine(): Promise<DeviceEngine> {
  const gpu = await openNodeDevice();
  const resolved = resolveModel(MODEL);
  const executor = await Executor.create(gpu, resolved.source, { dtype: 'f32', maxSeqLen: 512 });
  const e = new ExecutorEngine(executor, resolved.tokenizer, { modelId: MODEL });
  return { engine: e, device: gpu.device, close: () => { e.close(); resolved.source.close(); gpu.device.destroy(); } };
}

afterAll(async () => {
  await server?.close();
  engine?.close();
});

const post = (body: unknown) => fetch(`${server!.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const greedy = async () => ((await (await post({ model: MODEL, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 })).json()) as { choices: Array<{ text: string }> }).choices[0]!.text;

describe('GPU device loss while serving', () => {
  it('answers the running and every queued request with an error, restarts the device, and keeps serving', async () => {
    const log: string[] = [];
    engine = new RecoveringEngine(await openEngine(), openEngine, { log: (l) => log.push(l) });
    server = await startServer({ engine, chatTemplate: fallbackChatTemplate(), port: 0, maxQueue: 8, requestTimeoutMs: 60_000 });
    const before = await greedy();
    expect(before.length).toBeGreaterThan(10);

    const firstDevice = engine.device;
    let destroyed = false;
    let queuedReady = false;
    const running = fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Lily', max_tokens: 400, temperature: 0, stream: true }),
    }).then((res) => readSse(res, (ev) => {
      // Mid-request: after the first generated text arrives, and with the others queued.
      if (!destroyed && queuedReady && ev.includes('"text":"')) {
        destroyed = true;
        firstDevice.destroy();
      }
    }));
    const queued = [1, 2, 3].map(() => post({ model: MODEL, prompt: 'The dog', max_tokens: 8 }).then(async (r) => ({ status: r.status, retry: r.headers.get('retry-after'), body: (await r.json()) as { error?: { code: string; message: string } } })));
    // Destroy only once all three wait behind the running stream.
    for (let i = 0; i < 500 && !queuedReady; i++) {
      const h = (await (await fetch(`${server.url}/health`)).json()) as { queue_depth: number; running: number };
      queuedReady = h.queue_depth === 3 && h.running === 1;
      if (!queuedReady) await new Promise((r) => setTimeout(r, 5));
    }
    expect(queuedReady).toBe(true);

    const stream = await running;
    expect(destroyed).toBe(true);
    expect(stream.status).toBe(200);
    expect(stream.events.at(-1)).toBe('[DONE]');
    const errorEvent = stream.events.map((e) => (e === '[DONE]' ? {} : JSON.parse(e))).find((e: any) => e.error);
    expect(errorEvent.error.code).toBe('device_lost');
    for (const q of await Promise.all(queued)) {
      expect(q.status).toBe(503);
      expect(q.retry).toBe('1');
      expect(q.body.error!.code).toBe('device_lost');
      expect(q.body.error!.message).toMatch(/GPU device was lost/);
    }

    await engine.ready();
    expect(engine.device).not.toBe(firstDevice);
    expect(await greedy()).toBe(before);
    expect(engine).toMatchObject({ losses: 1, restarts: 1 });

    // A second loss while idle: the next request waits for the new device and is served.
    engine.device.destroy();
    for (let i = 0; i < 100 && engine.losses < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await greedy()).toBe(before);
    expect(engine).toMatchObject({ losses: 2, restarts: 2 });
    expect(log.filter((l) => /re-created/.test(l)).length).toBe(2);
    expect(await (await fetch(`${server.url}/health`)).json()).toMatchObject({ status: 'ok', queue_depth: 0, running: 0 });
  });
});
