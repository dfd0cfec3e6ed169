import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { barChart, histogram, lineChart, renderSvg } from '../../eval/plot.js';
import { cacheKey, canonicalJson, openResultCache } from '../../node/cache.js';

describe('eval/plot', () => {
  it('renders line, bar and histogram charts to SVG with their titles and marks', async () => {
    const rows = [1, 2, 3, 4].map((i) => ({ i, sigma: 10 / i, method: i % 2 ? 'a' : 'b' }));
    const line = await renderSvg(lineChart(rows, { title: 'spectrum', x: 'i', y: 'sigma', series: 'method', logY: true }));
    expect(line.startsWith('<svg')).toBe(true);
    expect(line).toContain('spectrum');
    expect(line).toMatch(/<path/);
    const bar = await renderSvg(barChart(rows, { title: 'bars', x: 'method', y: 'sigma' }));
    expect(bar).toContain('bars');
    const hist = await renderSvg(histogram(rows, { title: 'hist', field: 'sigma' }));
    expect(hist).toContain('hist');
  });
});

describe('eval/cache', () => {
  it('keys by canonical settings, regardless of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 0 }] } })).toBe('{"a":{"c":[3,{"e":0,"f":1}],"d":2},"b":1}');
    expect(cacheKey('ppl', { a: 1, b: 2 })).toBe(cacheKey('ppl', { b: 2, a: 1 }));
    expect(cacheKey('ppl', { a: 1 })).not.toBe(cacheKey('kld', { a: 1 }));
  });

  it('computes once, then returns the stored value; a corrupt entry is recomputed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-cache-'));
    const cache = openResultCache({ dir });
    let calls = 0;
    const compute = async () => ({ ppl: 6.1, n: ++calls });
    expect(await cache.getOrCompute('ppl', { model: 'm', ctx: 256 }, compute)).toEqual({ ppl: 6.1, n: 1 });
    expect(await cache.getOrCompute('ppl', { ctx: 256, model: 'm' }, compute)).toEqual({ ppl: 6.1, n: 1 });
    expect(await cache.getOrCompute('ppl', { model: 'm', ctx: 512 }, compute)).toEqual({ ppl: 6.1, n: 2 });
    const entry = readdirSync(dir).find((f) => f.includes(cacheKey('ppl', { model: 'm', ctx: 256 })));
    writeFileSync(join(dir, entry!), '{ truncated');
    expect(await cache.getOrCompute('ppl', { model: 'm', ctx: 256 }, compute)).toEqual({ ppl: 6.1, n: 3 });
    const disabled = openResultCache({ dir, enabled: false });
    expect(disabled.get('ppl', { model: 'm', ctx: 256 })).toBeUndefined();
  });
});
