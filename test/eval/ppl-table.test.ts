// The method table on a tiny configuration (real model, real calibration, real kernels): well-formed
// cells, markdown and CSV; a second run answered entirely from the caches, a third resuming after a
// lost cell; and the fused integer
// kernels agreeing with the f32 fake-quant simulation of the same artifact (`ppl --simulate`).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatPplTableCsv, formatPplTableMarkdown, pplCell, runPplTable, type PplTableOptions,
} from '../../eval/ppl-table.js';
import { openSession } from '../../node/session.js';
import { loadDatasetText } from '../../loaders/datasets.js';
import { perplexity } from '../../eval/ppl.js';
import { readArtifactManifest } from '../../loaders/artifact-manifest.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

// --simulate vs the fused kernels: the same quantizers, but f32 sums in another order, so a layer's
// outputs differ by ~1e-6 relative, and now and then that moves a later layer's activation across a
// rounding boundary (one quantization step). Perplexities must agree to 1e-3 relative; measured here
// 2.7e-4 (A8) and 2.9e-5 (A6), and 2.5e-5 at A8 over 40 windows of 256 tokens with the default calibration.
const SIM_TOL = 1e-3;

describe('runPplTable', () => {
  const root = mkdtempSync(join(tmpdir(), 'aser-table-'));
  const opts: PplTableOptions = {
    model: 'stories260k', methods: ['fp', 'rtn', 'aser'], datasets: ['tinystories'], abits: [8, 6], rank: 4,
    ctx: 64, maxWindows: 6, calibSamples: 8, calibLen: 64,
    cacheDir: join(root, 'eval'), artifactCacheDir: join(root, 'artifacts'),
  };

  it('makes a well-formed table, a second run does no work, an interrupted one resumes, and --simulate agrees with the fused kernels', async () => {
    const log1: string[] = [];
    const t1 = await runPplTable({ ...opts, onProgress: (m) => log1.push(m) });
    expect(t1.cells).toHaveLength(3 * 2);
    for (const c of t1.cells) {
      expect(Number.isFinite(c.ppl) && c.ppl > 1).toBe(true);
      expect(c.tokens).toBe(6 * 63);
      expect(c.cached, `${c.method} A${c.abits}`).toBe(false);
    }
    const fp = pplCell(t1, 'fp', 8, 'tinystories')!;
    expect(pplCell(t1, 'fp', 6, 'tinystories')!.ppl).toBe(fp.ppl); // fp32 once, listed under both widths
    const aser8 = pplCell(t1, 'aser', 8, 'tinystories')!;
    expect(aser8.meanSideRank).toBe(4); // equal side budget: rank 4 − 1 outlier column + 1
    expect(aser8.meanRank).toBe(3);
    expect(aser8.flopsPct).toBeGreaterThan(0);
    expect(pplCell(t1, 'rtn', 8, 'tinystories')!.flopsPct).toBe(0);
    expect(pplCell(t1, 'rtn', 6, 'tinystories')!.ppl).toBeGreaterThan(pplCell(t1, 'rtn', 8, 'tinystories')!.ppl);
    expect(log1.filter((m) => m.startsWith('quantized'))).toHaveLength(4);

    const md = formatPplTableMarkdown(t1);
    expect(md.split('\n').filter((l) => l.startsWith('|'))).toHaveLength(2 + 3);
    expect(md).toMatch(/\| ASER \| 4\.00 \| /);
    expect(md).toContain('first 6 windows of 64 tokens');
    const csv = formatPplTableCsv(t1).trim().split('\n');
    expect(csv).toHaveLength(1 + 6);
    expect(csv.every((l) => l.split(',').length === 15)).toBe(true);

    const evalFiles = readdirSync(opts.cacheDir!).length;
    const log2: string[] = [];
    const t2 = await runPplTable({ ...opts, onProgress: (m) => log2.push(m) });
    expect(t2.cells.every((c) => c.cached)).toBe(true);
    expect(t2.cells.map((c) => c.ppl)).toEqual(t1.cells.map((c) => c.ppl));
    expect(log2.some((m) => m.startsWith('quantized'))).toBe(false);
    expect(readdirSync(opts.cacheDir!)).toHaveLength(evalFiles);

    // An interrupted run resumes: with one cell's result gone, only that cell is computed again.
    const aserFile = readdirSync(opts.cacheDir!).find((f) => JSON.parse(readFileSync(join(opts.cacheDir!, f), 'utf8')).settings.method === 'aser')!;
    rmSync(join(opts.cacheDir!, aserFile));
    const t3 = await runPplTable(opts);
    const recomputed = t3.cells.filter((c) => !c.cached);
    expect(recomputed.map((c) => c.method)).toEqual(['aser']);
    expect(recomputed[0]!.ppl).toBe(pplCell(t1, 'aser', recomputed[0]!.abits, 'tinystories')!.ppl);

    const text = loadDatasetText('tinystories').text.slice(0, 40_000);
    for (const abits of [8, 6]) {
      const cell = pplCell(t1, 'aser', abits, 'tinystories')!;
      // the default artifact: one smoothing vector per shared input (q|k|v, gate|up), as the runtime groups them
      expect(cell.smoothing).toBe('shared-input');
      expect(readArtifactManifest(cell.artifact!).smoothing).toBe('shared-input');
      const artifact = cell.artifact!;
      const ppl: Record<string, number> = {};
      for (const simulate of [false, true]) {
        const s = await openSession({ model: 'stories260k', artifact, simulate, maxSeqLen: 128 });
        try {
          ppl[String(simulate)] = (await perplexity(s.executor, s.tokenizer, text, { ctx: 128, protocol: 'gptq', maxWindows: 16 })).ppl;
        } finally {
          s.close();
        }
      }
      expect(Math.abs(ppl['true']! - ppl['false']!) / ppl['false']!).toBeLessThan(SIM_TOL);
    }
  }, 120_000);

  it('refuses unknown methods and contradictory options with a clear message', async () => {
    await expect(runPplTable({ ...opts, methods: ['fp', 'gptq'] })).rejects.toThrow(/unknown method "gptq"/);
    await expect(runPplTable({ ...opts, rank: 4, alpha: 0.1 })).rejects.toThrow(/rank or alpha, not both/);
    await expect(runPplTable({ ...opts, rank: 4, budget: { unit: 'flops', percent: 5 } })).rejects.toThrow(/budget chooses the ranks/);
    await expect(runPplTable({ ...opts, rank: undefined, budget: { unit: 'flops', percent: -5 } })).rejects.toThrow(/non-negative percentage/);
    await expect(runPplTable({ ...opts, abits: [5] })).rejects.toThrow(/activation bits must be 8, 6 or 4/);
    await expect(runPplTable({ ...opts, smoothing: ['stacked' as never] })).rejects.toThrow(/smoothing must be shared-input or per-linear, got "stacked"/);
  });
});
