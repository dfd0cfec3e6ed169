// Same outputs as another commit: for a refactor that must change no behaviour. Builds the base
// commit in a temporary git worktree (this checkout's node_modules linked, its LAPACK addon copied,
// ../shared linked beside it as CI lays it out) and runs the same CLI sequence in both checkouts on
// stories260K: `aser quantize --method aser --rank 8 --abits 8`, `aser ppl` of the fp32 model, of the
// artifact through the fused kernels and through `--simulate` (40 windows), and greedy `aser generate`
// from both. Compared: the artifact's tensor-file hashes, the manifest less its timestamp and timings,
// NLLs to the last bit, the generated text. With --tests it also times `npm test` in each checkout,
// one after the other (the README's test command: build + the whole suite).
//
//   npm run bench -- same-outputs --base 9eeee11 [--tests] [--out bench/results/same-outputs.json]
//
// Prints a table and writes the JSON; exits 1 when any output differs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../loaders/datasets.js';
import { aser, buildBase, git, removeBase } from './lib/checkout.js';
import { gitCommit, probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

interface CheckoutOutputs {
  /** sha256 of each tensor file of the artifact. */
  artifactFiles: Record<string, string>;
  /** sha256 of manifest.json without createdAt and the per-linear timing diagnostics. */
  manifestWithoutTimings: string;
  ppl: Record<'fp32' | 'fused' | 'simulate40', { tokens: number; nll: number; ppl: number }>;
  generate: Record<'fp32' | 'artifact', { tokens: number; textSha256: string; head: string }>;
  /** `npm test` (with --tests): wall seconds and vitest's counts. */
  tests?: { seconds: number; passed: number; failed: number; skipped: number };
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** The manifest with what legitimately changes from run to run (time of writing, timings) removed. */
function manifestWithoutTimings(file: string): string {
  const m = JSON.parse(readFileSync(file, 'utf8')) as { createdAt?: string; layers: Record<string, { diag?: Record<string, number> }> };
  delete m.createdAt;
  for (const layer of Object.values(m.layers)) {
    if (!layer.diag) continue;
    for (const key of Object.keys(layer.diag)) if (key === 'seconds' || key.startsWith('timings.')) delete layer.diag[key];
  }
  return sha256(JSON.stringify(m));
}

function outputsOf(checkout: string, work: string, progress: (msg: string) => void): CheckoutOutputs {
  const art = join(work, 'aser8');
  progress('quantize');
  aser(checkout, ['quantize', '--method', 'aser', '--rank', '8', '--abits', '8', '--out', art, '--json']);
  const artifactFiles: Record<string, string> = {};
  for (const f of readdirSync(art).filter((f) => f.endsWith('.safetensors')).sort()) artifactFiles[f] = sha256(readFileSync(join(art, f)));
  const ppl = (args: string[]) => {
    const r = aser(checkout, ['ppl', ...args, '--json']) as { tokens: number; nll: number; ppl: number };
    return { tokens: r.tokens, nll: r.nll, ppl: r.ppl };
  };
  const generate = (args: string[]) => {
    const r = aser(checkout, ['generate', ...args, '--prompt', 'Once upon a time', '--max-tokens', '100', '--json']) as { text: string; tokens: number };
    return { tokens: r.tokens, textSha256: sha256(r.text), head: r.text.slice(0, 60) };
  };
  progress('perplexity: fp32, fused, simulate');
  const pplOut = { fp32: ppl(['--model', 'stories260k']), fused: ppl(['--artifact', art]), simulate40: ppl(['--artifact', art, '--simulate', '--max-windows', '40']) };
  progress('generate');
  return {
    artifactFiles, manifestWithoutTimings: manifestWithoutTimings(join(art, 'manifest.json')), ppl: pplOut,
    generate: { fp32: generate([]), artifact: generate(['--artifact', art]) },
  };
}

function timeTests(checkout: string, work: string): NonNullable<CheckoutOutputs['tests']> {
  const report = join(work, 'vitest.json');
  const t0 = performance.now();
  spawnSync('npm', ['test', '--', '--reporter=dot', '--reporter=json', `--outputFile.json=${report}`], { cwd: checkout, stdio: 'ignore' });
  const seconds = (performance.now() - t0) / 1000;
  const r = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
  return { seconds, passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests };
}

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rev = opt('base');
  if (!rev) throw new Error('same-outputs: name the commit to compare with: --base REV');
  const baseCommit = git(['rev-parse', '--short', rev]);
  const out = opt('out') ?? join(repoRoot(), 'bench', 'results', 'same-outputs.json');
  const t00 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[${((performance.now() - t00) / 1000).toFixed(0)} s] ${msg}\n`);
  const tmp = mkdtempSync(join(tmpdir(), 'aser-same-outputs-'));
  let base: CheckoutOutputs, head: CheckoutOutputs;
  try {
    progress(`building ${baseCommit} in ${tmp}`);
    const baseCheckout = buildBase(rev, tmp);
    progress(`${baseCommit}:`);
    base = outputsOf(baseCheckout, join(tmp, 'base-out'), progress);
    progress('this checkout:');
    head = outputsOf(repoRoot(), join(tmp, 'head-out'), progress);
    if (args.includes('--tests')) {
      progress(`npm test in ${baseCommit}`);
      base.tests = timeTests(baseCheckout, tmp);
      progress('npm test in this checkout');
      head.tests = timeTests(repoRoot(), tmp);
    }
  } finally {
    removeBase(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
  const same = {
    artifactFiles: JSON.stringify(base.artifactFiles) === JSON.stringify(head.artifactFiles),
    manifestWithoutTimings: base.manifestWithoutTimings === head.manifestWithoutTimings,
    ppl: (['fp32', 'fused', 'simulate40'] as const).every((k) => base.ppl[k].nll === head.ppl[k].nll && base.ppl[k].tokens === head.ppl[k].tokens),
    generate: (['fp32', 'artifact'] as const).every((k) => base.generate[k].textSha256 === head.generate[k].textSha256),
  };
  const yes = (b: boolean) => (b ? 'same' : 'DIFFERENT');
  console.log(`\nsame-outputs: ${baseCommit} vs ${gitCommit()} (this checkout), stories260k, ASER W4A8 rank 8`);
  console.log('| check | base | this | |\n|---|---|---|---|');
  for (const [f, h] of Object.entries(head.artifactFiles)) console.log(`| ${f} sha256 | ${base.artifactFiles[f]?.slice(0, 12) ?? '—'} | ${h.slice(0, 12)} | ${yes(base.artifactFiles[f] === h)} |`);
  console.log(`| manifest less timings | ${base.manifestWithoutTimings.slice(0, 12)} | ${head.manifestWithoutTimings.slice(0, 12)} | ${yes(same.manifestWithoutTimings)} |`);
  for (const k of ['fp32', 'fused', 'simulate40'] as const) console.log(`| ppl ${k} | ${base.ppl[k].ppl} | ${head.ppl[k].ppl} | ${yes(base.ppl[k].nll === head.ppl[k].nll)} |`);
  for (const k of ['fp32', 'artifact'] as const) console.log(`| greedy text ${k} | ${base.generate[k].textSha256.slice(0, 12)} | ${head.generate[k].textSha256.slice(0, 12)} | ${yes(base.generate[k].textSha256 === head.generate[k].textSha256)} |`);
  if (base.tests && head.tests) console.log(`| npm test | ${base.tests.seconds.toFixed(0)} s, ${base.tests.passed} passed, ${base.tests.failed} failed | ${head.tests.seconds.toFixed(0)} s, ${head.tests.passed} passed, ${head.tests.failed} failed | |`);
  writeJsonReport(out, { base: { rev: baseCommit, ...base }, head: { rev: gitCommit(), ...head }, same }, await probeAdapter());
  progress(`wrote ${out}`);
  return Object.values(same).every(Boolean) ? 0 : 1;
}

runIfMain(import.meta.url, main);
