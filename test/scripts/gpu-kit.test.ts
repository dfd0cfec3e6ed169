// The GPU kit's builder (scripts/gpu-kit.mjs) without its downloads: what it carries, and its refusals.
// Building a whole kit needs the npm registry and apt, and minutes of xz: docs/gpu-kit.md gives the
// command and its measured size; `run.sh --quick`'s result on this machine is bench/results/gpu-check-llvmpipe.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const kit = (args: string[]) => spawnSync(process.execPath, ['scripts/gpu-kit.mjs', ...args], { encoding: 'utf8' });

describe('gpu-kit builder', () => {
  it('carries the production dependencies and vitest, with Dawn for linux-x64 only and without Vega', () => {
    const r = kit(['--list']);
    expect(r.status, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { packages: string[]; excludedPackages: string[]; shared: string[] };
    const names = list.packages.map((p) => p.replace(/^node_modules\//, ''));
    for (const needed of ['webgpu', 'yargs', '@huggingface/tokenizers', '@huggingface/jinja', 'vitest', 'vite', 'rolldown', '@rolldown/binding-linux-x64-gnu']) expect(names).toContain(needed);
    for (const left of ['vega', 'vega-lite', 'lightningcss-linux-x64-gnu', 'typescript', 'playwright-core', 'node-addon-api']) expect(names).not.toContain(left);
    expect(list.shared).toContain('models/stories260K');
  });

  it('refuses a non-empty --out without --overwrite, and unknown options, with exit 2 and one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-out-'));
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    const r = kit(['--out', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/exists and is not empty \(pass --overwrite/);
    const u = kit(['--outt', dir]);
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/unknown option --outt/);
  });

  it('run.sh is valid bash', () => {
    execFileSync('bash', ['-n', 'scripts/gpu-kit-run.sh']);
  });
});
