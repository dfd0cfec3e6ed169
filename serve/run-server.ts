// `aser serve` as a library call: open the model (serve/open-serving.ts), wrap its engine so a lost GPU
// device is re-opened (serve/recovering-engine.ts), and start the HTTP server on it. The caller decides
// when to stop and calls close().
import { UsageError } from '../core/errors.js';
import { openServing, type Serving, type ServingArgs } from './open-serving.js';
import { RecoveringEngine, type DeviceEngine } from './recovering-engine.js';
import { startServer } from './server.js';

export interface ServerSettings {
  host: string;
  port: number;
  maxQueue: number;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  defaultMaxTokens: number;
  /** Bearer key /v1/* requires (none: open). */
  apiKey?: string;
}

export interface RunningServer {
  url: string;
  /** The first opened model (id, context, chat template, adapter) as served. */
  serving: Serving;
  /** Stops accepting, finishes what is running, then frees the engine and the device. */
  close(): Promise<void>;
  /** Graceful stop (RunningServer.shutdown in serve/server.ts): drain for `graceMs`, end the rest cleanly, then free the engine and the device. */
  shutdown(graceMs: number): Promise<void>;
}

/** Opens the model and serves it; a port in use or a host that is not ours becomes a UsageError. */
export async function runServer(args: ServingArgs, settings: ServerSettings, log: (line: string) => void, logRequests: boolean): Promise<RunningServer> {
  const serving = await openServing(args);
  const onDevice = (s: Serving): DeviceEngine => ({ engine: s.engine, device: s.session.gpu.device, close: () => s.close() });
  const engine = new RecoveringEngine(onDevice(serving), async () => onDevice(await openServing(args)), { log });
  let server;
  try {
    server = await startServer({ engine, chatTemplate: serving.chatTemplate, ...settings, log: logRequests ? log : undefined });
  } catch (err) {
    // Through the engine, which marks itself closed first: the device it destroys is not a "loss" to recover from.
    engine.close();
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new UsageError(`port ${settings.port} on ${settings.host} is already in use`, 'pick another with --port (0 = any free port)');
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot bind to --host ${settings.host}`, 'use an address of this machine, e.g. 127.0.0.1');
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    url: server.url,
    serving,
    close: async () => {
      await server.close();
      engine.close();
    },
    shutdown: (graceMs) => {
      const draining = server.shutdown(graceMs); // a repeated call shortens the grace period
      stopped ??= draining.then(() => engine.close());
      return stopped;
    },
  };
}
