import type { CommandModule } from 'yargs';
import { join } from 'node:path';
import { resolveModel } from '../../loaders/registry.js';
import { openNodeDevice } from '../../loaders/node-gpu.js';
import { writeArtifact, type ArtifactManifest } from '../../loaders/artifact.js';
import { Executor } from '../../runtime/executor.js';
import { collectCalibrationStats, drawCalibrationWindows, type CalibrationStats } from '../../quant/calibrate.js';
import { quantizeModel } from '../../quant/quantize-model.js';
import { LOW_RANK_METHODS, QUANT_METHODS, type QuantMethod } from '../../quant/methods.js';
import { dataDir, loadDatasetText } from '../../eval/datasets.js';
import { progressBar } from '../progress.js';
import { UsageError } from '../errors.js';
import { modelIdentity } from '../session.js';

interface QuantizeArgs {
  model: string; method: string; wbits: number; abits: number; rank?: number; alpha?: number; outliers?: string;
  calib: string; calibSamples: number; calibLen: number; seed: number; out: string; json: boolean;
}

/** Calibration text: a dataset's calibration file (never its evaluation text), or any text file. */
export function calibrationText(name: string): { name: string; text: string } {
  const files: Record<string, string> = { tinystories: 'tinystories/calib.txt' };
  if (files[name]) return { name, text: loadDatasetText(join(dataDir(), files[name])).text };
  if (name === 'c4') {
    const lines = loadDatasetText(join(dataDir(), 'c4/c4-train.00000-of-01024.first1000.jsonl')).text.split('\n').filter(Boolean);
    return { name, text: lines.map((l) => (JSON.parse(l) as { text: string }).text).join('\n\n') };
  }
  if (['wikitext2', 'ptb'].includes(name)) throw new UsageError(`${name} has no calibration split here`, 'use --calib c4 (the paper calibrates on C4 train) or tinystories');
  return { name, text: loadDatasetText(name).text };
}

/** What calibration depends on: statistics are the same for every method and every bit width. */
export interface CalibrationRequest {
  model: string; calib: string; calibSamples: number; calibLen: number; seed: number;
}

export interface QuantizeRequest extends CalibrationRequest {
  method: QuantMethod; wbits: number; abits: number; rank?: number; alpha?: number;
  outliers?: number | 'auto'; out: string;
  /**
   * --rank is the total side-path width: a method's exact outlier columns (ASER's f) count against it,
   * so ASER reconstructs rank − f. Absent = rank is the reconstruction rank alone (outliers on top).
   */
  rankCountsOutliers?: boolean;
}

/** Runs the calibration windows through the fp model on the GPU and returns every block linear's input statistics. */
export async function calibrateModel(req: CalibrationRequest): Promise<CalibrationStats> {
  const resolved = resolveModel(req.model);
  const { source, tokenizer } = resolved;
  try {
    const calib = calibrationText(req.calib);
    const stream = tokenizer.encode(calib.text, { bos: false });
    if (stream.length < req.calibLen + 1) throw new UsageError(`calibration text has ${stream.length} tokens, fewer than --calib-len ${req.calibLen}`);
    const windows = drawCalibrationWindows(stream, req.calibSamples, req.calibLen, req.seed);
    const gpu = await openNodeDevice();
    try {
      const executor = await Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: Math.min(req.calibLen, source.config.maxSeqLen) });
      try {
        const bar = progressBar('calibrate', windows.length, 'windows');
        const stats = await collectCalibrationStats(executor, windows, { seed: req.seed, onWindow: (d) => bar.update(d) });
        bar.finish();
        return stats;
      } finally {
        executor.destroy();
      }
    } finally {
      gpu.device.destroy();
    }
  } finally {
    source.close();
  }
}

export interface QuantizeToArtifactOptions {
  /**
   * Calibration statistics made earlier with the same CalibrationRequest (a function is called only
   * if needed); evaluations that quantize many methods calibrate once this way.
   */
  stats?: CalibrationStats | (() => Promise<CalibrationStats>);
}

/** Calibrates `model` on the GPU (unless given stats), quantizes every block linear and writes the artifact atomically. */
export async function quantizeToArtifact(args: QuantizeRequest, opts: QuantizeToArtifactOptions = {}): Promise<{ manifest: ArtifactManifest; seconds: number }> {
  if (args.rank !== undefined && args.alpha !== undefined) throw new UsageError('give --rank or --alpha, not both');
  const method = args.method;
  const lowRank = (LOW_RANK_METHODS as readonly string[]).includes(method);
  const rank = lowRank && args.alpha === undefined ? (args.rank ?? 8) : args.rank;
  const started = performance.now();
  const stats = typeof opts.stats === 'function' ? await opts.stats() : (opts.stats ?? (await calibrateModel(args)));
  const resolved = resolveModel(args.model);
  const { source } = resolved;
  try {
    const qbar = progressBar(`quantize ${method}`, source.config.nLayers * 7, 'linears');
    let done = 0;
    const options = { wBits: args.wbits, aBits: args.abits, rank, alpha: args.alpha, outliers: args.outliers, rankIncludesOutliers: args.rankCountsOutliers };
    const result = quantizeModel(source, stats, method, { ...options, onLinear: () => qbar.update(++done) });
    qbar.finish();
    const manifest = writeArtifact(args.out, {
      source: modelIdentity(source.id, resolved.path), method, wBits: args.wbits, aBits: args.abits,
      rank: rank ?? null, alpha: args.alpha ?? null,
      options: { outliers: args.outliers ?? null, ...(args.rankCountsOutliers ? { rankCountsOutliers: true } : {}) },
      calibration: { dataset: args.calib, samples: args.calibSamples, seqLen: args.calibLen, seed: args.seed },
    }, result.layers, result.diagnostics as Map<string, object>);
    return { manifest, seconds: (performance.now() - started) / 1000 };
  } finally {
    source.close();
  }
}

/** Side-path MACs over base MACs, summed over every quantized linear (per token). */
export function sidePathFlopsOverhead(manifest: ArtifactManifest): number {
  let base = 0, side = 0;
  for (const l of Object.values(manifest.layers)) {
    base += l.inFeatures * l.outFeatures;
    side += l.rank * (l.inFeatures + l.outFeatures);
  }
  return base ? side / base : 0;
}

export const quantizeCommand: CommandModule<object, QuantizeArgs> = {
  command: 'quantize',
  describe: 'Calibrate a model and quantize every block linear (ASER or a baseline) into a checksummed artifact',
  builder: (y) =>
    y
      .option('model', { type: 'string', default: 'stories260k', describe: 'Preset name or model path' })
      .option('method', { type: 'string', choices: [...QUANT_METHODS], default: 'aser', describe: 'Quantization method' })
      .option('wbits', { type: 'number', default: 4, describe: 'Weight bits (4)' })
      .option('abits', { type: 'number', choices: [8, 6, 4], default: 8, describe: 'Activation bits' })
      .option('rank', { type: 'number', describe: 'Fixed error-reconstruction rank per layer' })
      .option('alpha', { type: 'number', describe: 'Rank threshold α (paper Eq. 9) instead of --rank' })
      .option('outliers', { type: 'string', describe: "ASER outlier channels f per layer, or 'auto'" })
      .option('calib', { type: 'string', default: 'tinystories', describe: 'tinystories | c4 (train sample) | a text file' })
      .option('calib-samples', { type: 'number', default: 64, describe: 'Calibration windows N' })
      .option('calib-len', { type: 'number', default: 256, describe: 'Tokens per window L' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed for the window draw' })
      .option('out', { type: 'string', demandOption: true, describe: 'Artifact directory (written atomically)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the manifest summary as JSON' })
      .example('$0 quantize --method aser --rank 8 --out /tmp/s260k-aser', 'ASER W4A8 at rank 8 on the default model')
      .example('$0 ppl --artifact /tmp/s260k-aser', 'then evaluate it through the fused kernels') as never,
  handler: async (args) => {
    const outliers: number | 'auto' | undefined = args.outliers === undefined ? undefined : args.outliers === 'auto' ? 'auto' : Number(args.outliers);
    const { manifest, seconds } = await quantizeToArtifact({ ...args, method: args.method as QuantMethod, outliers });
    const method = manifest.method;
    const ranks = Object.values(manifest.layers).map((l) => l.rank);
    const meanRank = ranks.reduce((a, b) => a + b, 0) / Math.max(1, ranks.length);
    const summary = { out: args.out, method, wBits: args.wbits, aBits: args.abits, linears: ranks.length, meanSideRank: meanRank, flopsOverhead: sidePathFlopsOverhead(manifest), seconds };
    if (args.json) console.log(JSON.stringify(summary));
    else console.log(`wrote ${args.out}: ${method} W${args.wbits}A${args.abits}, ${ranks.length} linears, mean side-path rank ${meanRank.toFixed(2)}, +${(summary.flopsOverhead * 100).toFixed(2)} % FLOPs, ${summary.seconds.toFixed(1)} s`);
  },
};
