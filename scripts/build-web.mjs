#!/usr/bin/env node
// `npm run web:build`: the static site in dist/web — the page bundled by esbuild from web/main.ts (the
// same runtime/, kernels/, core/ and portable loaders as `aser`), its HTML and CSS, the bundled model
// (stories260K with its tokenizer) and a TinyStories slice for perplexity. Built beside the old site
// and swapped in with a rename, so a server never sees half a site.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist', 'web');
const TMP = `${OUT}.tmp-${process.pid}`;
/** The perplexity slice: the first stories of TinyStories' evaluation text, cut at a story boundary. */
const SLICE_CHARS = 48 * 1024;

const dataDir = process.env.ASER_DATA_DIR ? resolve(process.env.ASER_DATA_DIR) : resolve(ROOT, '..', 'shared', 'data');

const t0 = performance.now();
rmSync(TMP, { recursive: true, force: true });
mkdirSync(TMP, { recursive: true });
try {
  const result = await build({
    entryPoints: [join(ROOT, 'web', 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome113', // the first Chromium with WebGPU
    outfile: join(TMP, 'app.js'),
    sourcemap: true,
    minify: true,
    metafile: true,
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'style.css']) cpSync(join(ROOT, 'web', f), join(TMP, f));

  const model = join(ROOT, 'models', 'stories260k');
  mkdirSync(join(TMP, 'models', 'stories260k'), { recursive: true });
  for (const f of ['model.bin', 'tokenizer.json', 'tokenizer_config.json']) cpSync(join(model, f), join(TMP, 'models', 'stories260k', f));

  const evalText = join(dataDir, 'tinystories', 'eval.txt');
  mkdirSync(join(TMP, 'data'));
  if (existsSync(evalText)) {
    const text = readFileSync(evalText, 'utf8');
    const cut = text.length <= SLICE_CHARS ? text.length : text.lastIndexOf('\n', SLICE_CHARS) + 1 || SLICE_CHARS;
    writeFileSync(join(TMP, 'data', 'tinystories.txt'), text.slice(0, cut));
  } else {
    console.warn(`web:build: ${evalText} is missing (set ASER_DATA_DIR); the site has no TinyStories slice`);
  }

  rmSync(OUT, { recursive: true, force: true });
  renameSync(TMP, OUT);
  const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
  console.log(`web:build: ${OUT} (app.js + map ${(bytes / 1024).toFixed(0)} KiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} catch (err) {
  rmSync(TMP, { recursive: true, force: true });
  console.error(`web:build: ${err.message ?? err}`);
  process.exit(1);
}
