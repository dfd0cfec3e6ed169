// The real server over stories260K on the test GPU, on a free loopback port: what the serving,
// fuzzing and path-safety suites all start in beforeAll.
import { testGpu } from './gpu.js';
import { resolveModel } from '../../loaders/registry.js';
import { Executor } from '../../runtime/executor.js';
import type { TextTokenizer } from '../../core/model.js';
import { ExecutorEngine } from '../../serve/executor-engine.js';
import { BatchingEngine } from '../../serve/batching-engine.js';
import { startServer, type RunningServer, type ServerOptions } from '../../serve/server.js';
import { fallbackChatTemplate } from '../../serve/chat-template.js';

export const TEST_MODEL = 'stories260k';

export interface TestServer {
  server: RunningServer;
  engine: ExecutorEngine | BatchingEngine;
  tokenizer: TextTokenizer;
  /** Stops the server, then frees the engine and the model. */
  close(): Promise<void>;
}

/** `slots` > 1: a continuous-batching engine with that many KV slots (serve/batching-engine.ts). */
export async function startTestServer(opts: { maxSeqLen?: number; slots?: number } & Omit<ServerOptions, 'engine'> = {}): Promise<TestServer> {
  const { maxSeqLen, slots, ...serverOptions } = opts;
  const resolved = resolveModel(TEST_MODEL);
  const batching = (slots ?? 1) > 1;
  const executor = await Executor.create(await testGpu(), resolved.source, { dtype: 'f32', ...(maxSeqLen ? { maxSeqLen } : {}), ...(batching ? { slots } : {}) });
  const engine = batching
    ? new BatchingEngine(executor, resolved.tokenizer, { modelId: TEST_MODEL })
    : new ExecutorEngine(executor, resolved.tokenizer, { modelId: TEST_MODEL });
  const server = await startServer({ engine, chatTemplate: fallbackChatTemplate(), port: 0, ...serverOptions });
  return {
    server, engine, tokenizer: resolved.tokenizer,
    async close() {
      await server.close();
      engine.close();
      resolved.source.close();
    },
  };
}
