// What the user typed, kept so that errors can quote it: option names as typed (kebab-case, never
// yargs' camelCase twins), raw values ("abc", not the NaN yargs makes of it), and the closest known
// option or command when a name is misspelt.
import { UsageError } from '../core/errors.js';

let typed: readonly string[] = [];

/** main() records the argument list once; the checks below read it. */
export function rememberArgv(argv: readonly string[]): void {
  typed = argv;
}

/** Positional words (command, subcommand, stray arguments) in order, up to a `--` terminator. */
export function positionalWords(argv: readonly string[] = typed): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (isOptionToken(t)) {
      // `--name value`: skip the value unless it is glued on with '='.
      if (!t.includes('=') && i + 1 < argv.length && !isOptionToken(argv[i + 1]!) && optionTakesValue?.(optionName(t))) i++;
      continue;
    }
    words.push(t);
  }
  return words;
}

/** Set by the unknown-option check: which options take a value (so their values are not taken for words). */
let optionTakesValue: ((name: string) => boolean) | undefined;

const isOptionToken = (t: string) => t.startsWith('-') && t !== '-' && !/^-\d|^-\.\d/.test(t);
const optionName = (t: string) => t.replace(/^--?/, '').split('=')[0]!;
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** The option names as typed (`--max-tokenz` → 'max-tokenz', `--top-p=2` → 'top-p'), up to `--`. */
export function typedOptionNames(argv: readonly string[] = typed): string[] {
  const names: string[] = [];
  for (const t of argv) {
    if (t === '--') break;
    if (isOptionToken(t)) names.push(optionName(t));
  }
  return names;
}

/** The text typed for option `name` (last occurrence), or undefined when it was given without a value or not at all. */
export function typedValue(name: string, argv: readonly string[] = typed): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (!isOptionToken(t)) continue;
    const n = optionName(t);
    if (n !== name && kebab(n) !== name) continue;
    const eq = t.indexOf('=');
    if (eq >= 0) value = t.slice(eq + 1);
    else value = i + 1 < argv.length && !isOptionToken(argv[i + 1]!) ? argv[i + 1] : undefined;
  }
  return value;
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate to `word`, if it is close enough to be what was meant (or `word` is a prefix of it). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3))) return best;
  const prefixed = candidates.filter((c) => c.startsWith(w));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** The option table of the command being parsed, as yargs' getOptions() gives it. */
export interface KnownOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
  number: string[];
  array?: string[];
}

/** `--name` for display: one dash for single letters. */
const flag = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/**
 * Unknown options are a usage error naming the option as typed and, when one is close, the option
 * meant: `unknown option --max-tokenz (did you mean --max-tokens?)`.
 */
export function checkUnknownOptions(known: KnownOptions, command: string): void {
  const names = new Set<string>(['help', 'h', 'version', 'verbose']);
  for (const k of Object.keys(known.key)) names.add(k);
  for (const [k, aliases] of Object.entries(known.alias)) [k, ...aliases].forEach((a) => names.add(a));
  const booleans = new Set(known.boolean);
  optionTakesValue = (n) => names.has(n) && !booleans.has(n) && !booleans.has(kebab(n));
  const accepts = (n: string) =>
    names.has(n) || names.has(kebab(n)) || (n.startsWith('no-') && booleans.has(n.slice(3)));
  for (const name of typedOptionNames()) {
    if (accepts(name)) continue;
    const shown = [...names].filter((n) => n.length > 1 && !/[A-Z]/.test(n));
    const guess = closest(name.replace(/^no-/, ''), shown);
    throw new UsageError(
      `unknown option ${flag(name)}${guess ? ` (did you mean --${guess}?)` : ''}`,
      `run \`aser ${command ? command + ' ' : ''}--help\` for its options`,
    );
  }
}

/** Number options that did not parse (yargs makes NaN of them) are a usage error quoting what was typed. */
export function checkNumberOptions(known: KnownOptions, argv: Record<string, unknown>): void {
  for (const name of known.number) {
    const values = ([] as unknown[]).concat(argv[name]);
    if (!values.some((v) => typeof v === 'number' && Number.isNaN(v))) continue;
    const raw = typedValue(name);
    throw new UsageError(raw === undefined ? `${flag(name)} needs a number` : `${flag(name)} ${JSON.stringify(raw)}: not a number`);
  }
}

/** `--name VALUE: must …`, quoting the value as typed when it was typed. */
export function badValue(name: string, value: unknown, must: string, hint?: string): UsageError {
  const raw = typedValue(name) ?? String(value);
  return new UsageError(`${flag(name)} ${raw}: ${must}`, hint);
}

/** An integer ≥ min, else a usage error. */
export function requireInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw badValue(name, value, `must be an integer ≥ ${min}`);
}
