// `aser`: the command-line front end. Each command lives in cli/commands/<name>.ts; this file only
// wires yargs, global options and the one-line error policy (stack traces only with --verbose).
import yargs from 'yargs';
import { EXIT, reportError } from './errors.js';
import { commands } from './commands/index.js';

export async function main(argv: string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const verbose = argv.includes('--verbose');
  let parser = yargs(argv)
    .scriptName('aser')
    .usage('$0 <command> [options]\n\nWebGPU runtime for ASER-quantized LLaMA-family models (W4A8 + low-rank error reconstruction).')
    .option('verbose', { type: 'boolean', default: false, describe: 'Print stack traces and debug details' })
    .demandCommand(1, 'Name a command (see the list above).')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`aser: error: ${msg}\naser: hint: run \`aser --help\` or \`aser <command> --help\`\n`);
      exitCode = EXIT.usage;
      throw new Error('__usage__');
    });
  for (const command of commands) parser = parser.command(command as never);
  try {
    await parser.parseAsync();
  } catch (err) {
    if ((err as Error)?.message === '__usage__') return EXIT.usage;
    return reportError(err, verbose);
  }
  return exitCode;
}

