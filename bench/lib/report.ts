// What every benchmark shares: writing its JSON report and running `main` when executed directly
// (`node dist/bench/<name>.js`); `npm run bench -- <name>` imports and calls `main` instead.
//
// Every report gets a `run` block (date, git commit, adapter, load average) so that docs/numbers.md,
// rendered from these files by `npm run numbers` (scripts/numbers.mjs), can say where each figure
// came from. The block is added beside the report's own fields; measured values are not touched.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openNodeDevice } from '../../node/gpu.js';
import { repoRoot } from '../../loaders/datasets.js';

export interface RunMeta {
  /** ISO time the report was written (the end of the run). */
  date: string;
  /** `git rev-parse --short HEAD`, 'unknown' outside a git checkout. */
  commit: string;
  /** Tracked files differ from the commit (the run measured uncommitted code). */
  dirty: boolean | null;
  /** The WebGPU adapter the run measured (`describe()`), or a sentence saying none was used. */
  adapter: string;
  /** os.loadavg() when the report was written: 1, 5 and 15 minute averages. */
  loadavg: number[];
  cpus: number;
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: repoRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** The checkout's short commit id; outside a git checkout ASER_COMMIT (the GPU kit sets its build's), else 'unknown'. */
export function gitCommit(): string {
  return git(['rev-parse', '--short', 'HEAD']) ?? process.env.ASER_COMMIT ?? 'unknown';
}

export function runMeta(adapter: string): RunMeta {
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    dirty: status === null ? null : status.length > 0,
    adapter,
    loadavg: loadavg().map((x) => +x.toFixed(2)),
    cpus: cpus().length,
  };
}

/** The default adapter's description, for benchmarks whose GPU work runs inside a library call or a server. */
export async function probeAdapter(): Promise<string> {
  try {
    const gpu = await openNodeDevice();
    const d = gpu.describe();
    gpu.device.destroy();
    return d;
  } catch (err) {
    return `no adapter (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Writes `{ run: runMeta(adapter), ...report }`; `adapter` is the adapter the run measured (see runMeta). */
export function writeJsonReport(path: string, report: object, adapter: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ run: runMeta(adapter), ...report }, null, 2) + '\n');
}

export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
