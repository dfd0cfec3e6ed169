// `aser serve`: the OpenAI-compatible HTTP server (serve/server.ts) over one model on one GPU.
import type { CommandModule } from 'yargs';
import { servingOptions } from '../options.js';
import { UsageError } from '../../core/errors.js';
import type { ServingArgs } from '../../serve/open-serving.js';
import { runServer } from '../../serve/run-server.js';

interface ServeArgs extends ServingArgs {
  host: string;
  port: number;
  'max-queue': number;
  'max-body': number;
  timeout: number;
  'max-tokens': number;
  quiet: boolean;
  'shutdown-grace': number;
  'api-key'?: string;
}

/** Where --api-key is read from when the flag is absent (a key on the command line shows in `ps`). */
export const API_KEY_ENV = 'ASER_API_KEY';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /metrics)',
  builder: (y) =>
    y
      .options(servingOptions)
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to bind (loopback by default; set --api-key before exposing it)' })
      .option('parallel', { type: 'number', describe: 'Sequences decoded together by continuous batching, each with its own KV-cache slot (default: as many as 1 GiB of KV cache holds, at most 16; 1 = one at a time)' })
      .option('api-key', { type: 'string', describe: `Require "Authorization: Bearer KEY" on /v1/*, /tokenize and /detokenize (default: $${API_KEY_ENV} if set; /health stays open)` })
      .option('shutdown-grace', { type: 'number', default: 10, describe: 'Seconds running requests may take to finish after SIGTERM/SIGINT; then they end with finish_reason "length"' })
      .option('port', { type: 'number', default: 8080, describe: 'TCP port (0 picks a free one)' })
      .option('max-queue', { type: 'number', default: 64, describe: 'Requests that may wait for the GPU; more get HTTP 429' })
      .option('max-body', { type: 'number', default: 1 << 20, describe: 'Largest request body in bytes; larger gets HTTP 413' })
      .option('timeout', { type: 'number', default: 300, describe: 'Seconds a request may take, queue wait included; then HTTP 504' })
      .option('max-tokens', { type: 'number', default: 256, describe: 'max_tokens when a request sets none' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Do not log each request' })
      .example('$0 serve', 'serve stories260k on http://127.0.0.1:8080/v1')
      .example('curl -s localhost:8080/v1/completions -H "content-type: application/json" -d \'{"model":"stories260k","prompt":"Once upon a time","max_tokens":32}\'', 'ask for a completion') as never,
  handler: async (args) => {
    for (const [name, v, min] of [['port', args.port, 0], ['max-queue', args['max-queue'], 0], ['max-body', args['max-body'], 1], ['timeout', args.timeout, 0.001], ['max-tokens', args['max-tokens'], 1], ['shutdown-grace', args['shutdown-grace'], 0]] as const) {
      if (!Number.isFinite(v) || v < min) throw new UsageError(`--${name} must be a number >= ${min}, got ${v}`);
    }
    if (args.parallel !== undefined && (!Number.isInteger(args.parallel) || args.parallel < 1 || args.parallel > 256)) {
      throw new UsageError(`--parallel must be an integer in 1..256, got ${args.parallel}`);
    }
    const apiKey = args['api-key'] ?? (process.env[API_KEY_ENV] || undefined);
    if (apiKey !== undefined && apiKey.trim().length === 0) throw new UsageError('--api-key must not be empty');
    const log = (line: string) => process.stderr.write(`aser: ${line}\n`);
    const running = await runServer(args, {
      host: args.host, port: args.port, maxQueue: args['max-queue'], maxBodyBytes: args['max-body'],
      requestTimeoutMs: Math.round(args.timeout * 1000), defaultMaxTokens: args['max-tokens'], apiKey,
    }, log, !args.quiet);
    const { serving } = running;
    if (!LOOPBACK.has(args.host) && !apiKey) log(`warning: listening on ${args.host} without --api-key: anyone who can reach this address can use the model`);
    const batching = serving.parallel > 1 ? `continuous batching, ${serving.parallel} slots` : 'one request at a time';
    log(`serving ${serving.engine.modelId} (context ${serving.engine.contextLength} tokens, ${batching}, chat template: ${serving.chatTemplate.origin}${apiKey ? ', API key required' : ''}) on ${running.url}/v1`);
    log(`adapter ${serving.session.gpu.describe()}; Ctrl-C stops`);
    // Machine-readable line for scripts and tests that start the server with --port 0.
    process.stdout.write(`listening ${running.url}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    const graceMs = Math.round(args['shutdown-grace'] * 1000);
    log(`shutting down: no new requests; running ones get ${args['shutdown-grace']} s to finish (a second signal ends them now)`);
    let now: () => void = () => {};
    const second = new Promise<void>((resolve) => (now = resolve));
    process.once('SIGINT', () => now());
    process.once('SIGTERM', () => now());
    // A second signal cuts the grace period to nothing; answers still end with a final chunk and [DONE].
    void second.then(() => running.shutdown(0));
    await running.shutdown(graceMs);
    log('stopped');
  },
};
