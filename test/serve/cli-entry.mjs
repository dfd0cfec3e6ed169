// Runs the built `serve` and `chat` commands without the `aser` entry point, for the CLI tests while
// cli/commands/index.ts does not list them yet. Mirrors cli/aser.ts: exit code from cli/errors.ts.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

const dist = new URL('../../dist/cli/', import.meta.url);
const { serveCommand } = await import(new URL('commands/serve.js', dist).href);
const { chatCommand } = await import(new URL('commands/chat.js', dist).href);
const { reportError } = await import(new URL('errors.js', dist).href);
try {
  await yargs(hideBin(process.argv)).scriptName('aser').command(serveCommand).command(chatCommand).demandCommand(1).strict()
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  setImmediate(() => process.exit(0));
} catch (err) {
  const code = reportError(err, process.argv.includes('--verbose'));
  setImmediate(() => process.exit(code));
}
