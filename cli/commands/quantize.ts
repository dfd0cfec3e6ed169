// `aser quantize`: parse the options, run the quantize pipeline (node/quantize.ts), print its summary.
import type { CommandModule } from 'yargs';
import type { QuantMethod } from '../../quant/methods.js';
import { quantizeToArtifact, sidePathFlopsOverhead } from '../../node/quantize.js';
import { CLASSIFIER_FORMATS, DEFAULT_CLASSIFIER_FORMAT, DEFAULT_LOW_RANK_DTYPE, LOW_RANK_DTYPES, type ClassifierFormat, type LowRankDtype } from '../../core/quantized.js';
import {
  abitsOption, alphaOption, calibrationOptions, jsonOption, methodOption, modelOption, outliersOption,
  parseSmoothing, rankOptions, sidePathSize, smoothingOption, wbitsOption,
} from '../options.js';

interface QuantizeArgs {
  model: string; method: string; wbits: number; abits: number; rank?: number; sideWidth?: number; alpha?: number; outliers?: string;
  calib: string; calibSamples?: number; calibLen?: number; seed: number; out: string; json: boolean;
  layersPerPass: number; calibDtype: string; classifier: string; smoothing: string; lowrankDtype: string;
}

export const quantizeCommand: CommandModule<object, QuantizeArgs> = {
  command: 'quantize',
  describe: 'Calibrate a model and quantize every block linear (ASER or a baseline) into a checksummed artifact',
  builder: (y) =>
    y
      .options({ ...modelOption, ...methodOption, ...wbitsOption, ...abitsOption })
      .options(rankOptions)
      .options({ ...alphaOption, ...outliersOption, ...smoothingOption })
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
      .option('lowrank-dtype', {
        type: 'string', choices: [...LOW_RANK_DTYPES], default: DEFAULT_LOW_RANK_DTYPE,
        describe: 'How L_A/L_B are stored: f16, or int8 with a scale per rank index (a quarter of the f32 bytes, half of f16\'s)',
      })
      .option('out', { type: 'string', demandOption: true, describe: 'Artifact directory (written atomically)' })
      .options(jsonOption('Print the manifest summary as JSON'))
      .example('$0 quantize --method aser --rank 8 --out /tmp/s260k-aser', 'ASER W4A8 at rank 8 on the default model')
      .example('$0 ppl --artifact /tmp/s260k-aser', 'then evaluate it through the fused kernels')
      .example('$0 quantize --method aser --rank 8 --lowrank-dtype int8 --out /tmp/s260k-aser-i8', 'side-path factors in 8 bits')
      .example('$0 quantize --method aser --rank 8 --smoothing per-linear --out /tmp/s260k-aser-pl', 'each linear its own smoothing vector (to compare)') as never,
  handler: async (args) => {
    const outliers: number | 'auto' | undefined = args.outliers === undefined ? undefined : args.outliers === 'auto' ? 'auto' : Number(args.outliers);
    const size = sidePathSize(args);
    const smoothing = parseSmoothing(args.smoothing);
    const report = await quantizeToArtifact({ ...args, rank: size.rank, ...(size.countsOutliers ? { rankCountsOutliers: true } : {}), method: args.method as QuantMethod, outliers, calibDtype: args.calibDtype as 'auto' | 'f32' | 'f16', smoothing, classifier: args.classifier as ClassifierFormat, lowRankDtype: args.lowrankDtype as LowRankDtype });
    const { manifest, seconds } = report;
    const method = manifest.method;
    const ranks = Object.values(manifest.layers).map((l) => l.rank);
    const meanRank = ranks.reduce((a, b) => a + b, 0) / Math.max(1, ranks.length);
    const summary = {
      out: args.out, method, wBits: args.wbits, aBits: args.abits, smoothing: manifest.smoothing, classifier: manifest.classifier?.format, lowRankDtype: manifest.lowRankDtype, linears: ranks.length, meanSideRank: meanRank, flopsOverhead: sidePathFlopsOverhead(manifest), seconds,
      loadSeconds: report.loadSeconds, calibrateSeconds: report.calibrateSeconds, quantizeSeconds: report.quantizeSeconds, writeSeconds: report.writeSeconds,
      calibration: report.calibration, peakRssBytes: report.peakRssBytes, gpuBytes: report.gpuBytes,
    };
    const GiB = 2 ** 30;
    if (args.json) console.log(JSON.stringify(summary));
    else {
      console.log(`wrote ${args.out}: ${method} W${args.wbits}A${args.abits}, smoothing ${manifest.smoothing}, ${manifest.classifier?.format ?? 'fp'} classifier, ${manifest.lowRankDtype} L_A/L_B, ${ranks.length} linears, mean side-path rank ${meanRank.toFixed(2)}, +${(summary.flopsOverhead * 100).toFixed(2)} % FLOPs, ${summary.seconds.toFixed(1)} s`);
      console.log(`  load ${report.loadSeconds.toFixed(1)} s, calibrate ${report.calibrateSeconds.toFixed(1)} s (${report.calibration.samples} × ${report.calibration.seqLen} tokens, ${report.calibration.dtype}), quantize ${report.quantizeSeconds.toFixed(1)} s, write ${report.writeSeconds.toFixed(1)} s; peak RSS ${(report.peakRssBytes / GiB).toFixed(2)} GiB, GPU ${(report.gpuBytes / GiB).toFixed(2)} GiB (executor)`);
    }
  },
};
