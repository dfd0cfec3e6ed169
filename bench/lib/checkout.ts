// Running another commit beside this checkout (bench/same-outputs.ts, bench/decode-speedup.ts): git in
// this repository, the built CLI of a checkout with its --json result, and a base commit built in a
// temporary git worktree laid out as CI lays out a checkout.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from '../../loaders/datasets.js';

export function git(args: string[], cwd = repoRoot()): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * Runs the built CLI of `checkout`; its stdout's last line is the --json result. `stderr: 'inherit'`
 * shows the command's progress (long steps: synth, quantize).
 */
export function aser(checkout: string, args: string[], o: { stderr?: 'pipe' | 'inherit' } = {}): Record<string, unknown> {
  const out = execFileSync(process.execPath, [join(checkout, 'dist/cli/aser.js'), ...args], {
    cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', o.stderr ?? 'pipe'], maxBuffer: 256 * 2 ** 20,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

/**
 * Builds commit `rev` in a worktree under `tmp` (`tmp/repo`, with shared/ linked beside it as CI lays
 * it out, this checkout's node_modules linked and its LAPACK addon copied). Remove it with removeBase.
 */
export function buildBase(rev: string, tmp: string): string {
  const root = repoRoot();
  const checkout = join(tmp, 'repo');
  git(['worktree', 'add', '--detach', checkout, rev]);
  symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'));
  symlinkSync(resolve(root, '..', 'shared'), join(tmp, 'shared'));
  const addon = join(root, 'quant/native/build');
  if (existsSync(addon)) cpSync(addon, join(checkout, 'quant/native/build'), { recursive: true, preserveTimestamps: true });
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: checkout, stdio: 'ignore' });
  return checkout;
}

/** Removes the worktree buildBase made under `tmp` (the folder itself is the caller's). */
export function removeBase(tmp: string): void {
  spawnSync('git', ['worktree', 'remove', '--force', join(tmp, 'repo')], { cwd: repoRoot(), stdio: 'ignore' });
}
