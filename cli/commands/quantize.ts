// `aser quantize`: parse the options, run the quantize pipeline (node/quantize.ts), print its summary.
import type { CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { UsageError } from '../../core/errors.js';
import { removeTempOnSignal } from '../signal-cleanup.js';
import { badValue, requireInteger } from '../argv-check.js';
import type { OutlierColumns, QuantMethod } from '../../quant/methods.js';
import type { BudgetObjective, RankBudget } from '../../quant/budget.js';
import { quantizeToArtifact, sidePathFlopsOverhead } from '../../node/quantize.js';
import { CLASSIFIER_FORMATS, DEFAULT_CLASSIFIER_FORMAT, DEFAULT_LOW_RANK_DTYPE, LOW_RANK_DTYPES, type ClassifierFormat, type LowRankDtype } from '../../core/quantized.js';
import {
  abitsOption, alphaOption, calibrationOptions, jsonOption, methodOption, modelOption, outliersOption,
  outlierColumnsOption, overwriteOption, parseSmoothing, rankOptions, sidePathSize, smoothingOption, wbitsOption,
} from '../options.js';

interface QuantizeArgs {
  model: string; method: string; wbits: number; abits: number; rank?: number; sideWidth?: number; alpha?: number; outliers?: string;
  calib: string; calibSamples?: number; calibLen?: number; seed: number; out: string; overwrite: boolean; json: boolean;
  layersPerPass: number; calibDtype: string; classifier: string; smoothing: string; lowrankDtype: string;
  budgetFlops?: number; budgetBytes?: number; budgetMaxRank?: number; budgetObjective: string; outlierColumns: string;
}

/** --budget-flops P / --budget-bytes P (at most one) as the quantizer's budget. */
function requestedBudget(args: QuantizeArgs): RankBudget | undefined {
  if (args.budgetFlops !== undefined && args.budgetBytes !== undefined) throw new UsageError('give --budget-flops or --budget-bytes, not both');
  const objective = args.budgetObjective as BudgetObjective;
  const extra = objective === 'output' ? {} : { objective };
  if (args.budgetFlops !== undefined) return { unit: 'flops', percent: args.budgetFlops, ...extra };
  if (args.budgetBytes !== undefined) return { unit: 'bytes', percent: args.budgetBytes, ...extra };
  if (args.budgetMaxRank !== undefined) throw new UsageError('--budget-max-rank needs --budget-flops or --budget-bytes');
  return undefined;
}

export const quantizeCommand: CommandModule<object, QuantizeArgs> = {
  command: 'quantize',
  describe: 'Calibrate a model and quantize every block linear (ASER or a baseline) into a checksummed artifact',
  builder: (y) =>
    y
      .options({ ...modelOption, ...methodOption, ...wbitsOption, ...abitsOption })
      .options(rankOptions)
      .options({ ...alphaOption, ...outliersOption, ...outlierColumnsOption, ...smoothingOption })
      .options({
        ...calibrationOptions,
        'calib-samples': { type: 'number', describe: 'Calibration windows N (default 64; 8 for dim ≥ 2048)' },
        'calib-len': { type: 'number', describe: 'Tokens per calibration window L (default 256; 128 for dim ≥ 2048)' },
        seed: { ...calibrationOptions.seed, describe: 'Seed for the calibration window draw' },
      })
      .option('layers-per-pass', { type: 'number', default: 1, describe: 'Layers calibrated + quantized per pass (host memory: one pass\'s statistics)' })
      .option('calib-dtype', { type: 'string', choices: ['auto', 'f32', 'f16'], default: 'auto', describe: 'Weights of the calibration forward (auto: f16 for > 1 GiB of f32 weights)' })
      .option('classifier', {
        type: 'string', choices: [...CLASSIFIER_FORMATS], default: DEFAULT_CLASSIFIER_FORMAT,
        describe: 'Classifier (lm_head) in the artifact: int8/int4 per-channel weights through the integer kernels, or the model\'s in f16',
      })
      .option('budget-flops', { type: 'number', describe: 'Instead of --rank/--alpha: allocate ranks across all linears so the side path (outlier columns included) adds at most P % FLOPs (flopsOverhead × 100)' })
      .option('budget-bytes', { type: 'number', describe: 'Instead of --rank/--alpha: allocate ranks so the side path (f16 L_A/L_B, outlier columns included) adds at most P % of the base weight bytes' })
      .option('budget-objective', { type: 'string', choices: ['output', 'relative'], default: 'output', describe: "With a budget: minimize the summed whitened output error (output), or each linear's relative to its own output (relative)" })
      .option('budget-max-rank', { type: 'number', describe: 'With a budget: the most reconstruction columns any one linear may get (default: what the budget affords)' })
      .option('lowrank-dtype', {
        type: 'string', choices: [...LOW_RANK_DTYPES], default: DEFAULT_LOW_RANK_DTYPE,
        describe: 'How L_A/L_B are stored: f16, or int8 with a scale per rank index (a quarter of the f32 bytes, half of f16\'s)',
      })
      .option('out', { type: 'string', demandOption: true, describe: 'Artifact directory (written atomically; an existing one only with --overwrite)' })
      .options(overwriteOption('directory'))
      .options(jsonOption('Print the manifest summary as JSON'))
      .example('$0 quantize --method aser --rank 8 --out /tmp/s260k-aser', 'ASER W4A8 at rank 8 on the default model')
      .example('$0 ppl --artifact /tmp/s260k-aser', 'then evaluate it through the fused kernels')
      .example('$0 quantize --method aser --budget-flops 10 --out /tmp/s260k-b10', 'the ranks that lose least whitened error within +10 % FLOPs (aser flops --artifact shows them)')
      .example('$0 quantize --method aser --rank 8 --lowrank-dtype int8 --out /tmp/s260k-aser-i8', 'side-path factors in 8 bits')
      .example('$0 quantize --method aser --rank 8 --smoothing per-linear --out /tmp/s260k-aser-pl', 'each linear its own smoothing vector (to compare)') as never,
  handler: async (args) => {
    // Checked before the model loads, quoting the values as typed.
    for (const name of ['rank', 'side-width'] as const) {
      const value = name === 'rank' ? args.rank : args.sideWidth;
      if (value !== undefined) requireInteger(name, value, 0);
    }
    if (args.alpha !== undefined && !(args.alpha > 0 && args.alpha <= 1)) throw badValue('alpha', args.alpha, 'must lie in (0, 1] (the share of Σσ the rank keeps)');
    if (args.calibSamples !== undefined) requireInteger('calib-samples', args.calibSamples, 1);
    if (args.calibLen !== undefined) requireInteger('calib-len', args.calibLen, 2);
    requireInteger('layers-per-pass', args.layersPerPass, 1);
    if (args.outliers !== undefined && args.outliers !== 'auto' && !/^\d+$/.test(args.outliers)) throw badValue('outliers', args.outliers, "must be an integer ≥ 0 or 'auto'");
    const outliers: number | 'auto' | undefined = args.outliers === undefined ? undefined : args.outliers === 'auto' ? 'auto' : Number(args.outliers);
    const budget = requestedBudget(args);
    const size = sidePathSize(args);
    const smoothing = parseSmoothing(args.smoothing);
    if (existsSync(args.out) && !args.overwrite) {
      throw new UsageError(`--out ${args.out}: already exists`, 'add --overwrite to replace it (atomically: the old one stays until the new one is complete), or choose another directory');
    }
    const stopCleanup = removeTempOnSignal(args.out);
    let report;
    try {
      report = await quantizeToArtifact({ ...args, rank: size.rank, ...(size.countsOutliers ? { rankCountsOutliers: true } : {}), method: args.method as QuantMethod, outliers, calibDtype: args.calibDtype as 'auto' | 'f32' | 'f16', smoothing, classifier: args.classifier as ClassifierFormat, outlierColumns: args.outlierColumns as OutlierColumns, ...(budget ? { budget, budgetMaxRank: args.budgetMaxRank } : {}), lowRankDtype: args.lowrankDtype as LowRankDtype });
    } finally {
      stopCleanup();
    }
    const { manifest, seconds } = report;
    const method = manifest.method;
    // --rank is the reconstruction rank (the manifest's errorRank); outlier columns come on top.
    const layers = Object.values(manifest.layers);
    const mean = (f: (l: (typeof layers)[number]) => number) => layers.reduce((a, l) => a + f(l), 0) / Math.max(1, layers.length);
    const meanRank = mean((l) => l.errorRank);
    const meanSideWidth = mean((l) => l.rank);
    const summary = {
      out: args.out, method, wBits: args.wbits, aBits: args.abits, smoothing: manifest.smoothing, classifier: manifest.classifier?.format, lowRankDtype: manifest.lowRankDtype, linears: layers.length, meanRank, meanOutlierColumns: meanSideWidth - meanRank, meanSideWidth, flopsOverhead: sidePathFlopsOverhead(manifest), ...(manifest.budget ? { budget: manifest.budget } : {}), seconds,
      loadSeconds: report.loadSeconds, calibrateSeconds: report.calibrateSeconds, quantizeSeconds: report.quantizeSeconds, writeSeconds: report.writeSeconds,
      calibration: report.calibration, peakRssBytes: report.peakRssBytes, gpuBytes: report.gpuBytes,
    };
    const GiB = 2 ** 30;
    if (args.json) console.log(JSON.stringify(summary));
    else {
      console.log(`wrote ${args.out}: ${method} W${args.wbits}A${args.abits}, smoothing ${manifest.smoothing}, ${manifest.classifier?.format ?? 'fp'} classifier, ${manifest.lowRankDtype} L_A/L_B, ${layers.length} linears, mean rank ${meanRank.toFixed(2)}${meanSideWidth > meanRank ? ` + ${(meanSideWidth - meanRank).toFixed(2)} outlier columns (side path ${meanSideWidth.toFixed(2)} wide)` : ''}, +${(summary.flopsOverhead * 100).toFixed(2)} % FLOPs, ${summary.seconds.toFixed(1)} s`);
      if (manifest.budget) {
        const b = manifest.budget;
        const widths = layers.map((l) => l.rank);
        console.log(`  budget +${b.percent} % ${b.unit}: spent +${b.spentPercent.toFixed(3)} %; side widths ${Math.min(...widths)}–${Math.max(...widths)} (per linear: aser flops --artifact ${args.out}); whitened error Σσ² ${b.errorSq.toExponential(3)} → dropped ${b.droppedSq.toExponential(3)}`);
      }
      console.log(`  load ${report.loadSeconds.toFixed(1)} s, calibrate ${report.calibrateSeconds.toFixed(1)} s (${report.calibration.samples} × ${report.calibration.seqLen} tokens, ${report.calibration.dtype}), quantize ${report.quantizeSeconds.toFixed(1)} s, write ${report.writeSeconds.toFixed(1)} s; peak RSS ${(report.peakRssBytes / GiB).toFixed(2)} GiB, GPU ${(report.gpuBytes / GiB).toFixed(2)} GiB (executor)`);
    }
  },
};
