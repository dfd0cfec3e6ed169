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
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /metrics)',
  builder: (y) =>
    y
      .options(servingOptions)
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to bind (loopback by default; there is no authentication)' })
      .option('port', { type: 'number', default: 8080, describe: 'TCP port (0 picks a free one)' })
      .option('max-queue', { type: 'number', default: 64, describe: 'Requests that may wait for the GPU; more get HTTP 429' })
      .option('max-body', { type: 'number', default: 1 << 20, describe: 'Largest request body in bytes; larger gets HTTP 413' })
      .option('timeout', { type: 'number', default: 300, describe: 'Seconds a request may take, queue wait included; then HTTP 504' })
      .option('max-tokens', { type: 'number', default: 256, describe: 'max_tokens when a request sets none' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Do not log each request' })
      .example('$0 serve', 'serve stories260k on http://127.0.0.1:8080/v1')
      .example('curl -s localhost:8080/v1/completions -H "content-type: application/json" -d \'{"model":"stories260k","prompt":"Once upon a time","max_tokens":32}\'', 'ask for a completion') as never,
  handler: async (args) => {
    for (const [name, v, min] of [['port', args.port, 0], ['max-queue', args['max-queue'], 0], ['max-body', args['max-body'], 1], ['timeout', args.timeout, 0.001], ['max-tokens', args['max-tokens'], 1]] as const) {
      if (!Number.isFinite(v) || v < min) throw new UsageError(`--${name} must be a number >= ${min}, got ${v}`);
    }
    const log = (line: string) => process.stderr.write(`aser: ${line}\n`);
    const running = await runServer(args, {
      host: args.host, port: args.port, maxQueue: args['max-queue'], maxBodyBytes: args['max-body'],
      requestTimeoutMs: Math.round(args.timeout * 1000), defaultMaxTokens: args['max-tokens'],
    }, log, !args.quiet);
    const { serving } = running;
    if (!LOOPBACK.has(args.host)) log(`warning: listening on ${args.host}: anyone who can reach this address can use the model (no authentication)`);
    log(`serving ${serving.engine.modelId} (context ${serving.engine.contextLength} tokens, chat template: ${serving.chatTemplate.origin}) on ${running.url}/v1`);
    log(`adapter ${serving.session.gpu.describe()}; Ctrl-C stops`);
    // Machine-readable line for scripts and tests that start the server with --port 0.
    process.stdout.write(`listening ${running.url}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    log('shutting down');
    await running.close();
  },
};
