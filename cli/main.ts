// `aser`: the command-line front end. Each command lives in cli/commands/<name>.ts; this file only
// wires yargs, global options and the one-line error policy (stack traces only with --verbose).
// Every bad usage exits 2 before the command prints or loads anything, quoting what was typed.
import yargs, { type Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { showDawnNotices } from '../node/gpu.js';
import { versionLine } from '../node/versions.js';
import { EXIT, reportError } from './errors.js';
import { commands } from './commands/index.js';
import { checkNumberOptions, checkUnknownOptions, closest, positionalWords, rememberArgv, type KnownOptions } from './argv-check.js';

const HELP_HINT = 'run `aser --help` for the commands, `aser <command> --help` for their options';

/** yargs' own validation messages, reworded to name options as typed (`--out`, not `out`). */
function usageMessage(msg: string, commandNames: readonly string[]): UsageError {
  const words = positionalWords();
  let m: RegExpMatchArray | null;
  if ((m = msg.match(/^Did you mean (.+)\?$/))) {
    // The misspelt word is the first that names no command (`aser eval pppl`: pppl, under eval).
    const at = Math.max(0, words.findIndex((w, i) => i > 0 || !commandNames.includes(w)));
    const parent = words.slice(0, at).map((w) => `${w} `).join('');
    return new UsageError(`unknown command ${parent}${words[at] ?? ''} (did you mean ${parent}${m[1]}?)`, `run \`aser ${parent}--help\` for the list`);
  }
  if ((m = msg.match(/^Unknown arguments?: (.+)$/))) {
    const first = words[0];
    if (first !== undefined && !commandNames.includes(first)) {
      const guess = closest(first, commandNames);
      return new UsageError(`unknown command ${first}${guess ? ` (did you mean ${guess}?)` : ''}`, HELP_HINT);
    }
    const extra = m[1]!.split(', ').filter((a) => !/[A-Z]/.test(a));
    return new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.join(' ')} (options start with --)`, HELP_HINT);
  }
  if ((m = msg.match(/^Missing required arguments?: (.+)$/))) {
    return new UsageError(`missing ${m[1]!.split(', ').map((n) => `--${n}`).join(', ')}`, `run \`aser ${words.join(' ')} --help\` for its options`);
  }
  if ((m = msg.match(/^Invalid values:\s+Argument: (\S+), Given: (.+), Choices: (.+)$/s))) {
    return new UsageError(`--${m[1]} ${m[2]!.replace(/^"(.*)"$/, '$1')}: must be one of ${m[3]!.replace(/"/g, '')}`);
  }
  if ((m = msg.match(/^Arguments (\S+) and (\S+) are mutually exclusive$/))) return new UsageError(`give --${m[1]} or --${m[2]}, not both`);
  if ((m = msg.match(/^Not enough non-option arguments|^Name an? /))) {
    const parent = words.join(' ');
    return new UsageError(`aser ${parent} needs a subcommand`, `run \`aser ${parent} --help\` for the list`);
  }
  return new UsageError(msg.split('\n')[0]!, HELP_HINT);
}

export async function main(argv: string[]): Promise<number> {
  rememberArgv(argv);
  const verbose = argv.includes('--verbose');
  showDawnNotices(verbose);
  const commandNames = commands.map((c) => String(c.command).split(' ')[0]!);
  let parser: Argv = yargs(argv)
    .scriptName('aser')
    .usage('$0 <command> [options]\n\nWebGPU runtime for ASER-quantized LLaMA-family models (W4A8 + low-rank error reconstruction).')
    .version(false)
    .option('verbose', { type: 'boolean', default: false, describe: 'Print stack traces, debug details and Dawn\'s notices' })
    .option('version', { type: 'boolean', describe: 'Print the versions of aser, Node.js and the webgpu (Dawn) package' })
    .demandCommand(1, 'Name a command.')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    // Before yargs' own validation, so an unknown option is reported as typed, with a suggestion.
    // yargs passes itself as the second argument (@types/yargs declares one).
    .middleware(((args: { _: Array<string | number> } & Record<string, unknown>, y: unknown) => {
      const known = (y as { getOptions(): KnownOptions }).getOptions();
      checkUnknownOptions(known, args._.map(String).join(' '));
      checkNumberOptions(known, args);
    }) as never, true)
    .fail((msg, err) => {
      if (err) throw err;
      throw usageMessage(msg, commandNames);
    });
  for (const command of commands) parser = parser.command(command as never);

  const words = argv.filter((a) => !a.startsWith('-'));
  if (argv.includes('--version') && words.length === 0) {
    console.log(versionLine());
    return EXIT.ok;
  }
  if (words.length === 1 && words[0] === 'help') {
    console.log(await parser.getHelp());
    return EXIT.ok;
  }
  if (words.length === 0 && !argv.includes('--help') && !argv.includes('-h')) {
    // Bare `aser`: the command list, and the usage exit code (no command ran).
    console.log(await parser.getHelp());
    return EXIT.usage;
  }
  try {
    await parser.parseAsync();
  } catch (err) {
    return reportError(err, verbose);
  }
  return EXIT.ok;
}
