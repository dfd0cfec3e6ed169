// Decode tokens/s of the web page (headless Chromium, WebGPU on SwiftShader) against `aser` in Node
// (Dawn on this machine's adapter), same model, same prompt, greedy, on the same machine. Each round
// runs both sides, in alternating order, for the dense model and for an ASER W4A8 artifact quantized
// here; both sides are warm (the page's second Generate, Node's second generate on one executor),
// so pipeline compilation is not counted. Every sample is kept.
//
//   npm run bench -- web [--rounds 3] [--max-tokens 64] [--prompt "Once upon a time"] [--no-artifact]
//                        [--out bench/results/web.json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { serveStaticSite } from '../serve/static-site.js';
import { openSession } from '../node/session.js';
import { generate } from '../runtime/generate.js';
import { quantizeToArtifact } from '../node/quantize.js';
import { repoRoot } from '../loaders/datasets.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];
/** The page's end-of-run signal (a string: this file is compiled without the DOM types). */
const PAGE_DONE = 'document.body.dataset.done === "1"';

interface Sample {
  round: number;
  order: number;
  decodeTokensPerSecond: number;
  tokens: number;
}

interface Side {
  variant: 'dense' | 'w4a8';
  where: 'node' | 'page';
  adapter: string;
  samples: Sample[];
  median: number;
  text: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

/** Warm Node decode rate: the second of two greedy generations on one executor. */
async function nodeRun(model: string, artifact: string | undefined, prompt: string, maxTokens: number) {
  const session = await openSession({ model, artifact });
  try {
    const ids = session.tokenizer.encode(prompt, { bos: true });
    await generate(session.executor, ids, { maxTokens, temperature: 0 });
    const r = await generate(session.executor, ids, { maxTokens, temperature: 0 });
    return {
      rate: r.tokens.length > 1 ? (r.tokens.length - 1) / r.decodeSeconds : 0, tokens: r.tokens.length,
      text: session.tokenizer.decode(r.tokens), adapter: session.gpu.describe(),
    };
  } finally {
    session.close();
  }
}

/** Warm page decode rate: autorun once, then press Generate again and read the second result. */
async function pageRun(browser: Browser, url: string) {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForFunction(PAGE_DONE, null, { timeout: 300_000 });
    const first = JSON.parse((await page.textContent('#result')) ?? '{}');
    if (first.error) throw new Error(`page: ${first.error}`);
    await page.evaluate('delete document.body.dataset.done');
    await page.click('#generate');
    await page.waitForFunction(PAGE_DONE, null, { timeout: 300_000 });
    const r = JSON.parse((await page.textContent('#result')) ?? '{}');
    if (r.error) throw new Error(`page: ${r.error}`);
    return { rate: r.decodeTokensPerSecond as number, tokens: r.tokens as number, text: r.text as string, adapter: r.adapter as string };
  } finally {
    await page.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const get = (name: string, def: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1]! : def;
  };
  const rounds = Number(get('rounds', '3'));
  const maxTokens = Number(get('max-tokens', '64'));
  const prompt = get('prompt', 'Once upon a time');
  const out = get('out', 'bench/results/web.json');
  const withArtifact = !argv.includes('--no-artifact');
  const model = 'stories260k';

  execFileSync(process.execPath, [join(repoRoot(), 'scripts', 'build-web.mjs')], { stdio: 'inherit' });
  const tmp = mkdtempSync(join(tmpdir(), 'aser-bench-web-'));
  const artifactDir = join(tmp, 'w4a8');
  if (withArtifact) {
    console.error('quantizing stories260k (aser W4A8, rank 8) for the artifact variant…');
    await quantizeToArtifact({ model, method: 'aser', wbits: 4, abits: 8, rank: 8, calib: 'tinystories', calibSamples: 16, calibLen: 128, seed: 0, out: artifactDir });
  }
  const site = await serveStaticSite({ site: join(repoRoot(), 'dist', 'web'), artifact: withArtifact ? tmp : undefined, port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const sides: Side[] = [];
  try {
    const variants = withArtifact ? (['dense', 'w4a8'] as const) : (['dense'] as const);
    for (const variant of variants) {
      const node: Side = { variant, where: 'node', adapter: '', samples: [], median: 0, text: '' };
      const page: Side = { variant, where: 'page', adapter: '', samples: [], median: 0, text: '' };
      const query = new URLSearchParams({ prompt, max_tokens: String(maxTokens), temperature: '0', autorun: '1', ...(variant === 'w4a8' ? { artifact: '/artifact/w4a8/' } : {}) });
      for (let round = 0; round < rounds; round++) {
        // Alternate which side goes first, so load drifting during a run favours neither.
        const order = round % 2 === 0 ? [node, page] : [page, node];
        for (const [i, side] of order.entries()) {
          const r = side.where === 'node'
            ? await nodeRun(model, variant === 'w4a8' ? artifactDir : undefined, prompt, maxTokens)
            : await pageRun(browser, `${site.url}?${query}`);
          side.samples.push({ round, order: i, decodeTokensPerSecond: r.rate, tokens: r.tokens });
          side.adapter = r.adapter;
          side.text = r.text;
          console.error(`${variant} ${side.where} round ${round + 1}/${rounds}: ${r.rate.toFixed(1)} tok/s`);
        }
      }
      for (const s of [node, page]) s.median = median(s.samples.map((x) => x.decodeTokensPerSecond));
      sides.push(node, page);
    }
  } finally {
    await browser.close();
    await site.close();
    rmSync(tmp, { recursive: true, force: true });
  }

  const rows = sides.map((s) => ({ ...s, sameTextAsNode: s.text === sides.find((n) => n.variant === s.variant && n.where === 'node')!.text }));
  const ratios = Object.fromEntries(rows.filter((r) => r.where === 'page').map((p) => [p.variant, p.median / rows.find((n) => n.variant === p.variant && n.where === 'node')!.median]));
  console.log('| variant | where | adapter | decode tok/s (median) | samples | same text as Node |');
  console.log('| --- | --- | --- | ---: | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.variant} | ${r.where} | ${r.adapter} | ${r.median.toFixed(1)} | ${r.samples.map((x) => x.decodeTokensPerSecond.toFixed(1)).join(', ')} | ${r.sameTextAsNode ? 'yes' : 'no'} |`);
  }
  for (const [v, x] of Object.entries(ratios)) console.log(`${v}: page / node = ${x.toFixed(3)}`);
  const nodeAdapter = await probeAdapter();
  writeJsonReport(out, {
    bench: 'web', model, prompt, maxTokens, rounds, chromium: CHROMIUM, chromiumArgs: CHROMIUM_ARGS,
    rows: rows.map(({ text: _text, ...r }) => r), pageOverNode: ratios,
  }, `node: ${nodeAdapter}; page: ${rows.find((r) => r.where === 'page')?.adapter ?? 'none'}`);
  console.log(`wrote ${out}`);
  return 0;
}

runIfMain(import.meta.url, main);
