// `aser quantize --budget-flops / --budget-bytes` on stories260K through the built CLI (GPU
// calibration, tiny sample): the artifact stays within its budget, records the allocation in the
// manifest, `aser flops` shows the ranks per linear, and bad budgets are one-line usage errors (exit 2)
// that leave nothing behind (checked before calibrating). The allocator's own properties, bytes
// budgets included: test/quant/budget.test.ts.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readArtifact } from '../../loaders/artifact.js';
import { readArtifactManifest } from '../../loaders/artifact-manifest.js';
import { sidePathFlopsOverhead } from '../../node/quantize.js';

const CLI = 'dist/cli/aser.js';
const SMALL = ['--calib-samples', '2', '--calib-len', '32'];
const env = { ...process.env, XDG_RUNTIME_DIR: '/tmp' };
const aser = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });

describe('aser quantize with a budget', () => {
  it('allocates within a +FLOPs budget, records it, and aser flops shows the ranks', { timeout: 180_000 }, () => {
    const root = mkdtempSync(join(tmpdir(), 'aser-budget-'));
    const out = join(root, 'flops');
    const run = aser('quantize', ...SMALL, '--budget-flops', '6', '--json', '--out', out);
    expect(run.status, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as { flopsOverhead: number; budget: { percent: number; spentPercent: number } };
    const m = readArtifactManifest(out);
    expect(m.rank).toBeNull();
    expect(m.budget).toMatchObject({ unit: 'flops', percent: 6 });
    expect(100 * sidePathFlopsOverhead(m)).toBeLessThanOrEqual(6);
    expect(100 * summary.flopsOverhead).toBeCloseTo(m.budget!.spentPercent, 9);
    expect(m.budget!.droppedSq).toBeLessThan(m.budget!.errorSq);
    const ranks = Object.values(m.layers).map((l) => l.errorRank);
    expect(new Set(ranks).size).toBeGreaterThan(1); // the spectra differ, so do the ranks
    readArtifact(out); // every tensor file matches its checksum and shape

    const flops = aser('flops', '--artifact', out, '--json');
    expect(flops.status, flops.stderr).toBe(0);
    const acc = JSON.parse(flops.stdout) as { total: { flopsPct: number }; budget: { percent: number }; linears: Array<{ layer: number; name: string; rank: number; outlierColumns: number }> };
    expect(acc.total.flopsPct).toBeCloseTo(100 * sidePathFlopsOverhead(m), 9);
    expect(acc.budget.percent).toBe(6);
    // flops --json: rank is the reconstruction rank (the manifest's errorRank), outlier columns apart.
    expect(acc.linears.map((l) => l.rank).sort()).toEqual([...ranks].sort());
    const table = aser('flops', '--artifact', out);
    expect(table.stdout).toMatch(/side-path columns per linear/);
    expect(table.stdout).toMatch(/\| 4 \| \d+ \+ 1 \|/);
  });

  it('refuses impossible or contradictory budgets with exit 2 and writes nothing', { timeout: 60_000 }, () => {
    const root = mkdtempSync(join(tmpdir(), 'aser-budget-bad-'));
    const cases: Array<[string[], RegExp]> = [
      [['--budget-flops', '0.5'], /less than the exactly carried outlier columns/],
      [['--budget-flops', '5', '--budget-bytes', '5'], /not both/],
      [['--budget-flops', '5', '--rank', '4'], /drop --rank/],
      [['--budget-bytes', '5', '--method', 'rtn'], /low-rank method/],
    ];
    cases.forEach(([args, message], i) => {
      const out = join(root, `a${i}`);
      const r = aser('quantize', ...SMALL, ...args, '--out', out);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('aser: error')).length).toBe(1);
      expect(existsSync(out)).toBe(false);
    });
  });
});
