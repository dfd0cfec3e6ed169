// docs/numbers.md is generated: `npm run numbers` (scripts/numbers.mjs) renders it from the JSON that the
// benchmarks and `aser eval report` wrote. This fails when someone edits the page by hand or updates a
// JSON without re-rendering. Plain Node, no GPU.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs script without type declarations
import { renderNumbers, repoRoot, runInfo, SOURCES, NUMBERS_MD } from '../../scripts/numbers.mjs';

describe('docs/numbers.md', () => {
  it('is exactly what `npm run numbers` renders from the committed JSON', () => {
    const committed = readFileSync(join(repoRoot, NUMBERS_MD), 'utf8');
    const rendered: string = renderNumbers(repoRoot);
    // On a mismatch, show the first differing line rather than two whole pages.
    const a = committed.split('\n'), b = rendered.split('\n');
    const i = a.findIndex((line, k) => line !== b[k]);
    expect(i === -1 && a.length === b.length ? null : { line: i + 1, committed: a[i], rendered: b[i] }, 'docs/numbers.md is stale or hand-edited: run `npm run numbers`').toBeNull();
  });

  it('names a command and the run metadata for every source, "not recorded" where the JSON lacks it', () => {
    const page: string = renderNumbers(repoRoot);
    for (const src of SOURCES as Array<{ file: string; command: string }>) {
      expect(page).toContain(`Source: \`${src.file}\``);
    }
    expect(runInfo({})).toEqual({ date: 'not recorded', commit: 'not recorded', adapter: 'not recorded', load: 'not recorded' });
    const meta = runInfo({ run: { date: 'D', commit: 'abc1234', dirty: false, adapter: 'A', loadavg: [1, 2, 3] } });
    expect(meta).toEqual({ date: 'D', commit: 'abc1234', adapter: 'A', load: '1.00 / 2.00 / 3.00 (1 / 5 / 15 min, when written)' });
  });

  it('computes the fused-vs-unfused ratios per shape from kernels.json rows', () => {
    const k = JSON.parse(readFileSync(join(repoRoot, 'bench/results/kernels.json'), 'utf8')) as { rows: Array<{ shape: string; tokens: number; variant: string; minMs: number }> };
    const page: string = renderNumbers(repoRoot);
    const row = (v: string) => k.rows.find((r) => r.shape === 'down 14336→4096' && r.tokens === 1 && r.variant === v)!;
    const ratio = (row('w4a8 unfused r14').minMs / row('w4a8 fused r14').minMs).toFixed(2);
    expect(page).toMatch(new RegExp(`\\| down 14336→4096 \\| ${ratio.replace('.', '\\.')}× \\|`));
  });
});
