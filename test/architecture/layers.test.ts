// The layering rule, read from the source: every import between top-level folders points down the
// table below, nothing imports cli/ (tests may drive the CLI through cli/main.ts), the folders form no
// cycle, and nothing reachable from runtime/, kernels/ or core/ needs Node (they also run in a browser).
import { describe, expect, it } from 'vitest';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/** Which folders each folder may import (besides itself). Order = layers, bottom first. */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  kernels: ['core'],
  runtime: ['kernels', 'core'],
  loaders: ['core'],
  quant: ['runtime', 'kernels', 'core'],
  node: ['quant', 'runtime', 'kernels', 'loaders', 'core'],
  eval: ['node', 'quant', 'runtime', 'kernels', 'loaders', 'core'],
  serve: ['node', 'runtime', 'kernels', 'loaders', 'core'],
  cli: ['eval', 'serve', 'node', 'quant', 'runtime', 'kernels', 'loaders', 'core'],
  bench: ['eval', 'serve', 'node', 'quant', 'runtime', 'kernels', 'loaders', 'core'],
  web: ['eval', 'runtime', 'kernels', 'loaders', 'core'],
};
/** Browser-portable folders: no Node modules, no npm packages, no Node globals. */
const PORTABLE = ['core', 'kernels', 'runtime'];
/** The web page: everything it reaches is bundled for a browser (npm packages allowed, Node not). */
const BROWSER = ['web'];
const NODE_GLOBALS = /\b(Buffer|process|__dirname|__filename|require)\b/;
const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');

interface Import { from: string; spec: string; target?: string }

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, name);
    if (name === 'node_modules' || name === 'build' || name.startsWith('.')) continue;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|mts|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Code without comments and string contents (imports are read separately), so globals are found only in code. */
function codeOnly(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\[\s\S]|[^\\`])*`/g, '``')
    .replace(/'(?:\\.|[^\\'\n])*'/g, "''")
    .replace(/"(?:\\.|[^\\"\n])*"/g, '""');
}

function importsOf(file: string): Import[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out: Import[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    const spec = (m[1] ?? m[2] ?? m[3])!;
    const target = spec.startsWith('.') ? normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts') : undefined;
    out.push({ from: file, spec, target });
  }
  return out;
}

const topFolder = (file: string) => file.split('/')[0]!;
const isNodeModule = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!);

const folders = Object.keys(ALLOWED);
const files = folders.flatMap(sourceFiles);
const imports = files.flatMap(importsOf);

describe('layering (import graph)', () => {
  it('reads a real graph', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(imports.filter((i) => i.target).length).toBeGreaterThan(300);
  });

  it('every import between folders points down the layer table', () => {
    const wrong = imports
      .filter((i) => i.target && topFolder(i.target) !== topFolder(i.from))
      .filter((i) => !ALLOWED[topFolder(i.from)]!.includes(topFolder(i.target!)))
      .map((i) => `${i.from} imports ${i.spec}`);
    expect(wrong).toEqual([]);
  });

  it('nothing outside cli/ imports it (tests only through cli/main.ts)', () => {
    const tests = sourceFiles('test').flatMap(importsOf);
    const wrong = [...imports, ...tests]
      .filter((i) => i.target && topFolder(i.target) === 'cli' && topFolder(i.from) !== 'cli')
      .filter((i) => !(topFolder(i.from) === 'test' && i.target === 'cli/main.ts'))
      .map((i) => `${i.from} imports ${i.spec}`);
    expect(wrong).toEqual([]);
  });

  it('the folders form no cycle', () => {
    const edges = new Map<string, Set<string>>();
    for (const i of imports) {
      if (!i.target) continue;
      const [a, b] = [topFolder(i.from), topFolder(i.target)];
      if (a !== b) (edges.get(a) ?? edges.set(a, new Set()).get(a)!).add(b);
    }
    const cycles: string[] = [];
    const visit = (node: string, path: string[]) => {
      for (const next of edges.get(node) ?? []) {
        if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next].join(' -> '));
        else visit(next, [...path, next]);
      }
    };
    for (const f of folders) visit(f, [f]);
    expect(cycles).toEqual([]);
  });

  /** Files reachable from `roots` through relative imports, and what they break: Node modules, Node globals, and (unless allowed) npm packages. */
  function portabilityProblems(roots: string[], allowPackages: boolean): { reachable: Set<string>; problems: string[] } {
    const byFile = new Map<string, Import[]>();
    for (const i of imports) (byFile.get(i.from) ?? byFile.set(i.from, []).get(i.from)!).push(i);
    const reachable = new Set<string>();
    const stack = files.filter((f) => roots.includes(topFolder(f)));
    while (stack.length) {
      const f = stack.pop()!;
      if (reachable.has(f)) continue;
      reachable.add(f);
      for (const i of byFile.get(f) ?? []) if (i.target && files.includes(i.target)) stack.push(i.target);
    }
    const problems: string[] = [];
    for (const f of reachable) {
      for (const i of byFile.get(f) ?? []) {
        if (isNodeModule(i.spec)) problems.push(`${f} imports Node module ${i.spec}`);
        else if (!i.target && !allowPackages) problems.push(`${f} imports package ${i.spec}`);
        else if (i.target && !files.includes(i.target)) problems.push(`${f} imports ${i.spec}, which is outside the checked folders`);
      }
      const hit = NODE_GLOBALS.exec(codeOnly(readFileSync(join(ROOT, f), 'utf8')));
      if (hit) problems.push(`${f} uses the Node global ${hit[1]}`);
    }
    return { reachable, problems };
  }

  it('nothing reachable from runtime/, kernels/ or core/ uses Node or an npm package', () => {
    const { reachable, problems } = portabilityProblems(PORTABLE, false);
    expect([...reachable].some((f) => f.startsWith('runtime/'))).toBe(true);
    expect(problems).toEqual([]);
  });

  it('nothing reachable from the web page (web/) uses Node: the portable loaders stay portable', () => {
    const { reachable, problems } = portabilityProblems(BROWSER, true);
    expect([...reachable].some((f) => f.startsWith('loaders/') && f.endsWith('-format.ts'))).toBe(true);
    expect(problems).toEqual([]);
  });

  it('the rule itself would catch a wrong import', () => {
    const fake: Import = { from: 'kernels/x.ts', spec: '../runtime/executor.js', target: 'runtime/executor.ts' };
    expect(ALLOWED[topFolder(fake.from)]!.includes(topFolder(fake.target!))).toBe(false);
    expect(isNodeModule('node:fs') && isNodeModule('fs') && !isNodeModule('webgpu')).toBe(true);
    expect(NODE_GLOBALS.test(codeOnly("const b = Buffer.from('x'); // process"))).toBe(true);
    expect(NODE_GLOBALS.test(codeOnly("// Buffer and process in a comment\nconst s = 'process';"))).toBe(false);
    expect(relative(ROOT, join(ROOT, 'core'))).toBe('core');
  });
});
