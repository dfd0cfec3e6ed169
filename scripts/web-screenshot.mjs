#!/usr/bin/env node
// `npm run web:screenshot`: docs/img/web-page.png, the page after a real run in headless Chromium
// (SwiftShader's WebGPU): greedy generation, perplexity over the bundled TinyStories slice and the
// per-op chart. Needs `npm run build` (the server) — it builds the site itself.
//
//   node scripts/web-screenshot.mjs [--out docs/img/web-page.png] [--query "max_tokens=48&..."]
import { execFileSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : def);
const out = join(root, opt('out', 'docs/img/web-page.png'));
const query = opt('query', 'prompt=Once%20upon%20a%20time&max_tokens=48&temperature=0&ppl=tinystories&max_windows=4&profile=1&autorun=1');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit' });
const { serveStaticSite } = await import(join(root, 'dist', 'serve', 'static-site.js'));
const site = await serveStaticSite({ site: join(root, 'dist', 'web'), port: 0 });
const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${site.url}?${query}`);
  process.stderr.write('web:screenshot: waiting for the run…\n');
  await page.waitForFunction('document.body.dataset.done === "1"', null, { timeout: 300_000 });
  const result = JSON.parse((await page.textContent('#result')) ?? '{}');
  if (result.error) throw new Error(`the page reported: ${result.error}`);
  const tmp = `${out}.tmp-${process.pid}.png`;
  await page.screenshot({ path: tmp, fullPage: true });
  renameSync(tmp, out);
  console.log(`wrote ${out} (${result.adapter}; ${result.decodeTokensPerSecond?.toFixed(1)} tok/s decode, ppl ${result.ppl?.ppl?.toFixed(4)})`);
} finally {
  await browser.close();
  await site.close();
}
