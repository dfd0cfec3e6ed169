// The budget curve's table and Pareto plot (eval/alpha-sweep.ts) from a sweep's points: every point
// once, sorted by +FLOPs within its rule, and the plot's series one per (rule, dataset), relative to
// fp32. The sweep itself (GPU perplexities) runs in `aser eval alpha --budget-curve`.
import { describe, expect, it } from 'vitest';
import { budgetCurveChart, formatBudgetCurveMarkdown, type AlphaSweep, type CurvePoint } from '../../eval/alpha-sweep.js';

const point = (rule: CurvePoint['rule'], setting: string, flopsPct: number, ts: number, wt: number): CurvePoint =>
  ({ rule, setting, flopsPct, meanSideRank: flopsPct / 2.5, ppl: { tinystories: ts, wikitext2: wt } });

const sweep = {
  model: 'stories260k', method: 'aser', wbits: 4, abits: 4, datasets: ['tinystories', 'wikitext2'], fp: { tinystories: 4, wikitext2: 100 },
  rows: [], caption: '', settings: {} as AlphaSweep['settings'], seconds: 0,
  curve: [
    point('α rule', 'α = 0.1', 8.5, 4.6, 107), point('α rule', 'α = 0.015', 5.1, 4.7, 109),
    point('uniform rank', 'r = 3', 10.2, 4.62, 109), point('uniform rank', 'r = 1', 5.1, 4.7, 109),
    point('allocator', '+10.20 % (r = 3)', 10.19, 4.61, 111), point('allocator', '+5.10 % (r = 1)', 5.07, 4.73, 117),
  ],
} satisfies AlphaSweep;

describe('budget curve output', () => {
  it('lists every point once, rules in order, each sorted by +FLOPs', () => {
    const md = formatBudgetCurveMarkdown(sweep);
    const rows = md.split('\n').filter((l) => /^\| (α rule|uniform rank|allocator) \|/.test(l));
    expect(rows).toHaveLength(6);
    expect(rows.map((r) => r.split(' | ')[1])).toEqual(['α = 0.015', 'α = 0.1', 'r = 1', 'r = 3', '+5.10 % (r = 1)', '+10.20 % (r = 3)']);
    expect(rows[5]).toContain('| 10.19 |');
    expect(formatBudgetCurveMarkdown({ ...sweep, curve: undefined })).toBe('');
  });

  it('plots perplexity over fp32 in percent against +FLOPs, a series per rule and dataset', () => {
    const spec = budgetCurveChart(sweep) as unknown as { data: { values: Array<Record<string, number | string>> } };
    const values = spec.data.values;
    expect(values).toHaveLength(12);
    expect(new Set(values.map((v) => v.rule)).size).toBe(6);
    const a = values.find((v) => v.rule === 'allocator, wikitext2' && v['+FLOPs %'] === 5.07)!;
    expect(a['ppl over fp32 (%)']).toBeCloseTo(17, 9);
    const xs = values.map((v) => v['+FLOPs %'] as number);
    expect(xs).toEqual([...xs].sort((p, q) => p - q));
  });
});
