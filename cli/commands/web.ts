// `aser web` (`npm run web -- --port P [--artifact DIR]`): serves the page `npm run web:build` wrote,
// where the same runtime runs on the browser's WebGPU.
import type { CommandModule } from 'yargs';
import { join } from 'node:path';
import { UsageError } from '../../core/errors.js';
import { repoRoot } from '../../loaders/datasets.js';
import { serveStaticSite } from '../../serve/static-site.js';

interface WebArgs {
  port: number;
  artifact?: string;
  site?: string;
  quiet: boolean;
}

export const webCommand: CommandModule<object, WebArgs> = {
  command: 'web',
  describe: 'Serve the web page (generation and perplexity on the browser\'s WebGPU) on 127.0.0.1',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 8000, describe: 'TCP port (0 picks a free one)' })
      .option('artifact', { type: 'string', describe: 'An ASER artifact directory to serve at /artifact/ (the page\'s artifact=/artifact/)' })
      .option('site', { type: 'string', describe: 'The built site (default: dist/web from `npm run web:build`)' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Do not log each request' })
      .example('$0 web --port 8000', 'then open http://127.0.0.1:8000/ in a browser with WebGPU')
      .example('$0 web --artifact out/aser-w4a8', 'open http://127.0.0.1:8000/?artifact=/artifact/') as never,
  handler: async (args) => {
    if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got ${args.port}`);
    const site = await serveStaticSite({
      site: args.site ?? join(repoRoot(), 'dist', 'web'), artifact: args.artifact, port: args.port,
      log: args.quiet ? undefined : (line) => process.stderr.write(`aser web: ${line}\n`),
    });
    process.stdout.write(`aser web: ${site.url}${args.artifact ? ` (artifact at ${site.url}artifact/, open ${site.url}?artifact=/artifact/)` : ''}\n`);
    await new Promise<void>((ok) => {
      const stop = () => void site.close().then(ok);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
