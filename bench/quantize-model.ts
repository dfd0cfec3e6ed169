// End-to-end quantizer cost on a whole model (default stories260k): calibration through the fp
// executor on the GPU, every block linear quantized, the artifact written atomically — per method.
//
//   npm run bench -- quantize-model [--model stories260k] [--methods aser,rtn] [--rank 8] [--calib-samples 64] [--calib-len 256]
//
// Prints a table and writes bench/results/quantize-model.json. Budget (issue 5): ASER under 60 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrateModel, quantizeToArtifact, type QuantizeRequest } from '../node/quantize.js';
import { QUANT_METHODS, type QuantMethod } from '../quant/methods.js';
import { probeAdapter, runIfMain, writeJsonReport } from './lib/report.js';
import { repoRoot } from '../loaders/datasets.js';
import { benchOptions } from './lib/args.js';

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const { opt } = benchOptions(args);
  const model = opt('model', 'stories260k');
  const methods = opt('methods', 'aser').split(',') as QuantMethod[];
  for (const m of methods) if (!QUANT_METHODS.includes(m)) throw new Error(`--methods: ${m} is not one of ${QUANT_METHODS.join(', ')}`);
  const calib = { model, calib: 'tinystories', calibSamples: Number(opt('calib-samples', '64')), calibLen: Number(opt('calib-len', '256')), seed: 0 };
  const rank = Number(opt('rank', '8'));
  const dir = mkdtempSync(join(tmpdir(), 'aser-bench-q-'));
  const rows: Array<{ method: string; calibrateS: number; quantizeWriteS: number; totalS: number }> = [];
  try {
    for (const method of methods) {
      // Calibration timed per method: end to end means what `aser quantize` does for one artifact.
      const t0 = performance.now();
      const stats = await calibrateModel(calib);
      const t1 = performance.now();
      const req: QuantizeRequest = { ...calib, method, wbits: 4, abits: 8, rank, out: join(dir, method) };
      await quantizeToArtifact(req, { stats });
      const t2 = performance.now();
      rows.push({ method, calibrateS: (t1 - t0) / 1000, quantizeWriteS: (t2 - t1) / 1000, totalS: (t2 - t0) / 1000 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nquantize-model: ${model}, W4A8, rank ${rank}, calibration ${calib.calibSamples} × ${calib.calibLen} tokens`);
  console.log('| method | calibrate s | quantize + write s | total s | budget 60 s |\n|---|---:|---:|---:|---|');
  for (const r of rows) console.log(`| ${r.method} | ${r.calibrateS.toFixed(2)} | ${r.quantizeWriteS.toFixed(2)} | ${r.totalS.toFixed(2)} | ${r.totalS < 60 ? 'ok' : 'OVER'} |`);
  writeJsonReport(join(repoRoot(), 'bench', 'results', 'quantize-model.json'), { model, rank, calibration: calib, rows, date: new Date().toISOString() }, await probeAdapter());
  return 0;
}

runIfMain(import.meta.url, main);
