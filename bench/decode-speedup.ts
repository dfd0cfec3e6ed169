// Decode speed of this checkout against a base commit, each with its own default artifact (issue 15's
// must-show: the 1-layer LLaMA-3-8B-shaped model decodes ≥ 2× faster than 9eeee11 did). Builds the base
// commit in a temporary git worktree (bench/lib/checkout.ts), synthesizes each 8B-shaped model once
// (`aser synth --shape llama3-8b --layers L`, reused when present), quantizes it with each checkout's
// own default `aser quantize --model DIR --out ART` (no method or rank flags; artifacts cached under
// --dir per layer count and per base commit, or for this checkout per quantizer source trees), then times greedy `aser generate --json` of both checkouts on
// their own artifact in interleaved rounds, the order alternating (base head, head base, base head …,
// so load that drifts one way during the run favours neither side): the same prompt and decode
// length on both sides, decode tok/s as each checkout's generate reports it (decode steps over decode
// seconds, model load and prefill excluded). Medians, every sample, the ratio head/base per layer
// count, both greedy texts, and for this checkout the dispatches and bytes per decode token
// (eval/traffic.ts, the figures `aser profile --json` reports).
//
//   npm run bench -- decode-speedup [--base 9eeee11] [--layers 1,2] [--decode 32] [--prefill 16]
//                                   [--repeats 3] [--dir /tmp] [--out bench/results/decode-speedup.json]

// Disk: an 8B-shaped model is ~2.6 GB for 1 layer (+0.4 GB per layer), an artifact ~0.6 GB.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../loaders/datasets.js';
import { aser, buildBase, git, removeBase } from './lib/checkout.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';
import { measureDecodeTraffic, type DecodeTrafficSummary } from '../eval/traffic-run.js';

/** What a default `aser quantize` artifact depends on (everything but kernels/, bench/, eval/, serve/, docs). */
const QUANTIZER_SOURCES = ['core', 'loaders', 'quant', 'runtime', 'node', 'cli', 'package.json'];

interface GenerateSample {
  decodeTokensPerSecond: number;
  decodeSeconds: number;
  prefillSeconds: number;
  loadSeconds: number;
  tokens: number;
  stopReason: string;
}

interface Side {
  rev: string;
  artifact: string;
  /** The artifact's manifest method line (method, bits, rank rule) as its quantize reported it. */
  quantize: Record<string, unknown>;
  samples: GenerateSample[];
  medianDecodeTokPerSec: number;
  medianDecodeMsPerToken: number;
  /** Greedy text of the first round (every round decodes the same tokens). */
  text: string;
}

interface LayerResult {
  layers: number;
  model: string;
  base: Side;
  head: Side & { traffic?: DecodeTrafficSummary };
  /** median head tok/s over median base tok/s. */
  speedup: number;
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

/** A prompt of `n` tokens with BOS: common words that the LLaMA-3 tokenizer keeps as one token each. */
export function promptOf(n: number): string {
  const words = ['Once', ' upon', ' a', ' time', ' there', ' was', ' a', ' little', ' girl', ' who', ' lived', ' in', ' a', ' small', ' house', ' near', ' the', ' forest', '.'];
  let s = '';
  for (let i = 0; i < n - 1; i++) s += words[i % words.length];
  return s;
}

/** The artifact's summary fields worth keeping from `aser quantize --json` (method, bits, ranks, timing). */
function quantizeSummary(r: Record<string, unknown>): Record<string, unknown> {
  const keep = ['method', 'wBits', 'aBits', 'rank', 'alpha', 'seconds', 'bytes', 'artifactBytes', 'out'];
  return Object.fromEntries(Object.entries(r).filter(([k]) => keep.includes(k)));
}

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (name: string, dflt: number) => {
    const v = opt(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`decode-speedup: --${name} ${v} must be a positive integer`);
    return n;
  };
  const rev = opt('base') ?? '9eeee11';
  const layerCounts = (opt('layers') ?? '1,2').split(',').map((s) => Number(s));
  if (layerCounts.some((l) => !Number.isInteger(l) || l < 1)) throw new Error(`decode-speedup: --layers ${opt('layers')} must list positive integers`);
  const decode = num('decode', 32), prefill = num('prefill', 16), repeats = num('repeats', 3);
  const dir = join(opt('dir') ?? '/tmp', 'aser-decode-speedup');
  const out = opt('out') ?? join(repoRoot(), 'bench', 'results', 'decode-speedup.json');
  const baseCommit = git(['rev-parse', '--short=7', rev]);
  const headCommit = git(['rev-parse', '--short=7', 'HEAD']);
  // This checkout's artifact depends on the code that calibrates, quantizes and writes it, not on the
  // integer kernels that later run it: key it by those source trees, so a kernel change reuses it.
  const quantizerDirty = git(['status', '--porcelain', '--untracked-files=no', '--', ...QUANTIZER_SOURCES]).length > 0;
  const quantizerTrees = createHash('sha256').update(QUANTIZER_SOURCES.map((p) => git(['rev-parse', `HEAD:${p}`])).join(' ')).digest('hex').slice(0, 10);
  const headKey = quantizerDirty ? `q${quantizerTrees}-dirty` : `q${quantizerTrees}`;
  mkdirSync(dir, { recursive: true });
  const t00 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[${((performance.now() - t00) / 1000).toFixed(0)} s] ${msg}\n`);
  const prompt = promptOf(prefill);
  const results: LayerResult[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'aser-decode-speedup-'));
  try {
    progress(`building ${baseCommit} in ${tmp}`);
    const baseCheckout = buildBase(rev, tmp);
    for (const L of layerCounts) {
      const model = join(dir, `llama3-8b-l${L}`);
      if (!existsSync(join(model, 'config.json'))) {
        progress(`aser synth --shape llama3-8b --layers ${L} --out ${model}`);
        aser(repoRoot(), ['synth', '--shape', 'llama3-8b', '--layers', String(L), '--out', model, '--json'], { stderr: 'inherit' });
      }
      const quantize = (checkout: string, key: string) => {
        const art = join(dir, `llama3-8b-l${L}-${key}`);
        // A dirty checkout's artifact is never reused: its code is not what the key names.
        if (key.endsWith('-dirty')) rmSync(art, { recursive: true, force: true });
        if (existsSync(join(art, 'manifest.json'))) return { art, summary: { cached: true } };
        progress(`${key}: aser quantize --model ${model} --out ${art}`);
        const t0 = performance.now();
        const r = aser(checkout, ['quantize', '--model', model, '--out', art, '--json'], { stderr: 'inherit' });
        return { art, summary: { ...quantizeSummary(r), wallSeconds: (performance.now() - t0) / 1000 } };
      };
      const b = quantize(baseCheckout, baseCommit);
      const h = quantize(repoRoot(), headKey);
      const gen = (checkout: string, art: string) => {
        const r = aser(checkout, ['generate', '--model', model, '--artifact', art, '--prompt', prompt, '--max-tokens', String(decode + 1), '--json']) as Record<string, unknown> & GenerateSample & { text: string };
        return { sample: { decodeTokensPerSecond: r.decodeTokensPerSecond, decodeSeconds: r.decodeSeconds, prefillSeconds: r.prefillSeconds, loadSeconds: r.loadSeconds, tokens: r.tokens, stopReason: r.stopReason }, text: r.text };
      };
      const sides = { base: { samples: [] as GenerateSample[], text: '' }, head: { samples: [] as GenerateSample[], text: '' } };
      for (let r = 0; r < repeats; r++) {
        const pair = [['base', baseCheckout, b.art], ['head', repoRoot(), h.art]] as const;
        for (const [name, checkout, art] of r % 2 ? [pair[1], pair[0]] : pair) {
          const g = gen(checkout, art);
          sides[name].samples.push(g.sample);
          if (r === 0) sides[name].text = g.text;
          progress(`${L} layer(s), round ${r + 1}/${repeats}, ${name}: ${g.sample.decodeTokensPerSecond.toFixed(3)} tok/s decode (${g.sample.tokens} tokens, ${g.sample.stopReason})`);
        }
      }
      const side = (name: 'base' | 'head', rv: string, art: string, q: Record<string, unknown>): Side => {
        const tps = median(sides[name].samples.map((s) => s.decodeTokensPerSecond));
        return { rev: rv, artifact: art, quantize: q, samples: sides[name].samples, medianDecodeTokPerSec: tps, medianDecodeMsPerToken: 1000 / tps, text: sides[name].text };
      };
      const base = side('base', baseCommit, b.art, b.summary);
      const head: LayerResult['head'] = side('head', headCommit, h.art, h.summary);
      progress(`${L} layer(s): dispatches and bytes per decode token of this checkout`);
      head.traffic = await measureDecodeTraffic({ model, artifact: h.art, prefill, decode: Math.min(decode, 4) });
      results.push({ layers: L, model, base, head, speedup: head.medianDecodeTokPerSec / base.medianDecodeTokPerSec });
    }
  } finally {
    removeBase(tmp);
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`\ndecode-speedup: this checkout (${headCommit}, artifact ${headKey}) vs ${baseCommit}, LLaMA-3-8B-shaped synthetic models, each checkout's default \`aser quantize\` artifact; greedy \`aser generate\`, prompt ${prefill} tokens, ${decode} decode steps, ${repeats} interleaved rounds in alternating order (median)`);
  console.log(`| layers | ${baseCommit} decode tok/s | this decode tok/s | speedup | this: dispatches/token | this: MB read/token | this: ideal MB/token | same greedy text |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const t = r.head.traffic;
    console.log(`| ${r.layers} | ${r.base.medianDecodeTokPerSec.toFixed(3)} | ${r.head.medianDecodeTokPerSec.toFixed(3)} | ${r.speedup.toFixed(2)}× | ${t ? t.dispatchesPerToken : '—'} | ${t ? (t.bytesPerToken / 1e6).toFixed(1) : '—'} | ${t ? (t.idealBytesPerToken / 1e6).toFixed(1) : '—'} | ${r.base.text === r.head.text ? 'yes' : 'no'} |`);
  }
  writeJsonReport(out, { base: baseCommit, head: headCommit, headArtifactKey: headKey, settings: { prefill, decode, repeats, prompt, layers: layerCounts, dir, order: 'alternating (base head, head base, …)' }, results }, await probeAdapter());
  progress(`wrote ${out}`);
  return 0;
}

runIfMain(import.meta.url, main);
