// `--name value` options of a bench's argv, read the one way every simple bench reads them.

/** `opt(name, default)`: the value after `--name`, else the default; `list(s)`: a comma list, trimmed, empties dropped. */
export function benchOptions(args: readonly string[]) {
  const opt = (name: string, dflt: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
  };
  const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
  return { opt, list };
}
