// The HTML report renders in headless Chromium with its tables, plots and headings. Input: a fixed
// results.json from a real `aser eval report --model stories260k` run (test/fixtures/report-results.json), turned
// into a page through the built CLI (`--from-json`), so the test is fast and needs no GPU.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { markdownToHtml } from '../../eval/report-html.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FIXTURE = resolve('test/fixtures/report-results.json');

describe('aser eval report page', () => {
  it('markdown tables become HTML tables', () => {
    const html = markdownToHtml('| a | b |\n|---|---:|\n| **x** | 1 < 2 |\n\nA note.');
    expect(html).toContain('<th>a</th>');
    expect(html).toContain('<td><b>x</b></td><td>1 &lt; 2</td>');
    expect(html).toContain('<p>A note.</p>');
  });

  it('renders in headless Chromium with every table, plot and heading', { timeout: 120_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'aser-report-'));
    const r = spawnSync(process.execPath, ['dist/cli/aser.js', 'eval', 'report', '--from-json', FIXTURE, '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script|<link |src="http/); // self-contained, static
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(`file://${join(out, 'index.html')}`);
      const headings = await page.locator('h2').allTextContents();
      for (const h of ['Perplexity', 'α sweep', 'Rank per layer', 'KL divergence', 'Zero-shot', 'FLOPs and memory', 'Latency', 'Singular spectra']) {
        expect(headings.some((t) => t.startsWith(h)), `heading ${h} in ${headings.join(' / ')}`).toBe(true);
      }
      // Bar (ppl), ppl vs α, rank per layer, 2 KLD histograms, zero-shot bars, latency vs FLOPs, spectra, erank, output error.
      expect(await page.locator('figure svg').count()).toBeGreaterThanOrEqual(10);
      // ppl, α, KLD, zero-shot, FLOPs, 3 profile tables, run timings.
      expect(await page.locator('table').count()).toBeGreaterThanOrEqual(9);
      const pplTable = await page.locator('#ppl + table').innerText();
      for (const m of ['fp32', 'RTN', 'ASER']) expect(pplTable).toContain(m);
      // Plots drew something: every chart has marks with a real size.
      const box = await page.locator('figure svg').first().boundingBox();
      expect(box!.width).toBeGreaterThan(200);
      expect(await page.locator('figure svg path').count()).toBeGreaterThan(20);
    } finally {
      await browser.close();
    }
  });
});
