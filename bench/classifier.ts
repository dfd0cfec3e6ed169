// What quantizing the classifier costs in quality and buys in bytes: one ASER artifact of stories260K
// (calibrated once) written with each classifier format, evaluated beside the same block linears with
// the f32 classifier. Perplexity on TinyStories and WikiText-2 (gptq protocol), and the KL divergence of
// each format's next-token distribution from the f32 classifier's on the same windows.
//
//   npm run bench -- classifier [--model stories260k] [--method aser] [--max-windows 150] [--ctx 256]
//                               [--out bench/results/classifier.json]
//
// `aser quantize` picks its default classifier format from this table (node/quantize.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrateModel, quantizeToArtifact } from '../node/quantize.js';
import { openSession, type Session } from '../node/session.js';
import { openArtifact } from '../loaders/artifact.js';
import { loadDatasetText } from '../loaders/datasets.js';
import { perplexityOfTokens } from '../eval/ppl.js';
import { compareToReference, computeKldReference, summarizeKld } from '../eval/kld.js';
import { CLASSIFIER_FORMATS, DEFAULT_CLASSIFIER_FORMAT, type ClassifierFormat } from '../core/quantized.js';
import type { QuantMethod } from '../quant/methods.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';

const DATASETS = ['tinystories', 'wikitext2'] as const;

interface Row {
  classifier: 'f32' | ClassifierFormat;
  /** Classifier weight bytes read per decoded token (values × bytes per value + scales). */
  classifierBytes: number;
  ppl: Record<string, number>;
  /** Relative perplexity change against the f32 classifier, per dataset. */
  pplChange: Record<string, number>;
  kld: Record<string, { mean: number; p99: number; sameTop: number }>;
}

export async function main(argv: string[]): Promise<number> {
  const get = (name: string, def: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1]! : def;
  };
  const model = get('model', 'stories260k');
  const method = get('method', 'aser') as QuantMethod;
  const maxWindows = Number(get('max-windows', '150'));
  const ctx = Number(get('ctx', '256'));
  const out = get('out', 'bench/results/classifier.json');
  const adapter = await probeAdapter();
  const root = mkdtempSync(join(tmpdir(), 'aser-classifier-'));
  try {
    const req = { model, method, wbits: 4, abits: 8, calib: 'tinystories', seed: 0 };
    const stats = await calibrateModel(req);
    const dirs = new Map<ClassifierFormat, string>();
    for (const format of CLASSIFIER_FORMATS) {
      const dir = join(root, format);
      await quantizeToArtifact({ ...req, out: dir, classifier: format }, { stats });
      dirs.set(format, dir);
    }
    // The reference: the same block linears with the model's classifier in f32.
    const blockLinears = openArtifact(dirs.get('int8')!);
    const variants: Array<{ classifier: Row['classifier']; open: () => Promise<Session> }> = [
      { classifier: 'f32', open: () => openSession({ model, linears: (m) => blockLinears.linear(m) }) },
      ...CLASSIFIER_FORMATS.map((f) => ({ classifier: f, open: () => openSession({ model, artifact: dirs.get(f)! }) })),
    ];
    const rows: Row[] = [];
    const refs = new Map<string, Awaited<ReturnType<typeof computeKldReference>>>();
    for (const v of variants) {
      const session = await v.open();
      try {
        const c = session.source.config;
        const bytesPerValue = { f32: 4, f16: 2, int8: 1, int4: 0.5 }[v.classifier];
        const row: Row = {
          classifier: v.classifier, classifierBytes: c.vocabSize * c.dim * bytesPerValue + (v.classifier.startsWith('int') ? c.vocabSize * 4 : 0),
          ppl: {}, pplChange: {}, kld: {},
        };
        for (const dataset of DATASETS) {
          const ids = session.tokenizer.encode(loadDatasetText(dataset).text, { bos: true });
          const r = await perplexityOfTokens(session.executor, ids, session.tokenizer.bosId, { ctx, protocol: 'gptq', maxWindows });
          row.ppl[dataset] = r.ppl;
          const spec = { ctx, protocol: 'gptq' as const, maxWindows: Math.min(maxWindows, 40) };
          if (v.classifier === 'f32') refs.set(dataset, await computeKldReference(session.executor, ids, session.tokenizer.bosId, spec));
          const k = summarizeKld(await compareToReference(session.executor, refs.get(dataset)!));
          row.kld[dataset] = { mean: k.kldMean, p99: k.kldP99, sameTop: k.sameTopPct / 100 };
        }
        rows.push(row);
        console.error(`${v.classifier}: ${DATASETS.map((d) => `${d} ppl ${row.ppl[d]!.toFixed(4)}`).join(', ')}`);
      } finally {
        session.close();
      }
    }
    for (const r of rows) for (const d of DATASETS) r.pplChange[d] = r.ppl[d]! / rows[0]!.ppl[d]! - 1;

    console.log(`\n${model}, ${method} W4A8 block linears; classifier formats (ctx ${ctx}, ≤ ${maxWindows} windows; KLD vs the f32 classifier)\n`);
    console.log(`| classifier | bytes/token | ${DATASETS.map((d) => `${d} ppl | Δ %`).join(' | ')} | ${DATASETS.map((d) => `${d} KLD mean | same top %`).join(' | ')} |`);
    console.log(`|---|---|${DATASETS.map(() => '---|---|').join('')}${DATASETS.map(() => '---|---|').join('')}`);
    for (const r of rows) {
      console.log(`| ${r.classifier} | ${r.classifierBytes} | ${DATASETS.map((d) => `${r.ppl[d]!.toFixed(4)} | ${(r.pplChange[d]! * 100).toFixed(3)}`).join(' | ')} | ` +
        `${DATASETS.map((d) => `${r.kld[d]!.mean.toExponential(2)} | ${(r.kld[d]!.sameTop * 100).toFixed(2)}`).join(' | ')} |`);
    }
    writeJsonReport(out, { model, method, ctx, maxWindows, datasets: DATASETS, defaultFormat: DEFAULT_CLASSIFIER_FORMAT, rows }, adapter);
    console.log(`\nwrote ${out}`);
    return 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
