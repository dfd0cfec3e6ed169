// The quantize pipeline: open the model, calibrate (whole-model statistics or layer by layer), quantize
// every block linear with the chosen method, write the checksummed artifact. Library code behind
// `aser quantize`, the method table, the report and the benchmarks.
import { join } from 'node:path';
import { resolveModel } from '../loaders/registry.js';
import { ArtifactWriter, writeArtifact } from '../loaders/artifact-writer.js';
import { artifactFileFor, type ArtifactManifest } from '../loaders/artifact-manifest.js';
import { collectCalibrationStats, drawCalibrationWindows, type CalibrationStats } from '../quant/calibrate.js';
import { quantizeLayerwise } from '../quant/quantize-layerwise.js';
import { groupCapture } from '../quant/group-capture.js';
import { executorCapture } from '../quant/capture.js';
import type { ModelConfig, ModelSource, TextTokenizer } from '../core/model.js';
import {
  CLASSIFIER_FORMATS, DEFAULT_CLASSIFIER_FORMAT, classifierWeightBits, isClassifierFormat, type ClassifierFormat,
} from '../core/quantized.js';
import { quantizeClassifier } from '../quant/classifier.js';
import { tensorRows } from '../runtime/weight-rows.js';
import { quantizeModel } from '../quant/quantize-model.js';
import { LOW_RANK_METHODS, lowRankExactColumns, type OutlierColumns, type QuantDiagnostics, type QuantizeResult, type QuantMethod } from '../quant/methods.js';
import { BUDGET_UNITS, allocateRanks, largestAffordableRank, spendBudget, type BudgetRecord, type RankBudget } from '../quant/budget.js';
import { linearShapes } from '../runtime/memory-plan.js';
import { QuantizeError } from '../quant/errors.js';
import { BLOCK_LINEARS } from '../core/model.js';
import { dataDir, loadDatasetText } from '../loaders/datasets.js';
import { progressBar } from './progress.js';
import { UsageError } from '../core/errors.js';
import { modelIdentity, openModelSession, openSession } from './session.js';
import { DEFAULT_MAX_BATCH_TOKENS } from '../runtime/executor-options.js';
import {
  DEFAULT_LOW_RANK_DTYPE, DEFAULT_SMOOTHING_SCOPE, LOW_RANK_DTYPES, isLowRankDtype, isSmoothingScope, type LowRankDtype, type QuantizedLinear, type SmoothingScope,
} from '../core/quantized.js';
import { withInt8LowRank } from '../core/lowrank-int8.js';

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
  model: string; calib: string; seed: number;
  /** Calibration windows and their length (default: 64 × 256, or 8 × 128 for models with dim ≥ 2048; see docs/quantization.md). */
  calibSamples?: number; calibLen?: number;
}

export interface QuantizeRequest extends CalibrationRequest {
  method: QuantMethod; wbits: number; abits: number; rank?: number; alpha?: number;
  outliers?: number | 'auto'; out: string;
  /**
   * --rank is the total side-path width: a method's exact outlier columns (ASER's f) count against it,
   * so ASER reconstructs rank − f. Absent = rank is the reconstruction rank alone (outliers on top).
   */
  rankCountsOutliers?: boolean;
  /** Layers calibrated and quantized per pass (default 1: host memory bounded by one layer's statistics). */
  layersPerPass?: number;
  /** Weights of the calibration forward (default 'auto': f16 when the f32 weights would exceed 1 GiB and shader-f16 is there). */
  calibDtype?: 'auto' | 'f32' | 'f16';
  /** How the artifact keeps the classifier (default DEFAULT_CLASSIFIER_FORMAT). */
  classifier?: ClassifierFormat;
  /** One smoothing vector per shared input (q|k|v, gate|up; default) or per linear; recorded in the manifest. */
  smoothing?: SmoothingScope;
  /**
   * Instead of rank/alpha: allocate the reconstruction ranks over all block linears so the side path
   * (outlier columns included) costs at most `percent` % of the base FLOPs or bytes (quant/budget.ts).
   */
  budget?: RankBudget;
  /** With `budget`: the most reconstruction columns any linear may get (bounds the quantizer's work and memory). */
  budgetMaxRank?: number;
  /** ASER's outlier columns: exact one-hot side-path columns (default) or reconstructed by the rank-r path (QuantizeOptions.outlierColumns). */
  outlierColumns?: OutlierColumns;
  /** How L_A / L_B are stored (default DEFAULT_LOW_RANK_DTYPE); recorded in the manifest. */
  lowRankDtype?: LowRankDtype;
}

/** The request's low-rank storage, default filled in; anything else is a usage error. */
export function requestedLowRankDtype(args: { lowRankDtype?: string }): LowRankDtype {
  const d = args.lowRankDtype ?? DEFAULT_LOW_RANK_DTYPE;
  if (!isLowRankDtype(d)) throw new UsageError(`--lowrank-dtype ${JSON.stringify(d)} is not one of ${LOW_RANK_DTYPES.join(', ')}`);
  return d;
}

/** The linears with their side path stored as the request asks (int8: core/lowrank-int8.ts). */
function inLowRankDtype(linears: Map<string, QuantizedLinear>, dtype: LowRankDtype): Map<string, QuantizedLinear> {
  if (dtype === 'f16') return linears;
  return new Map([...linears].map(([name, q]) => [name, withInt8LowRank(q)]));
}


/** Quantizes the classifier as `format` asks into the writer (int formats), or records 'f16'. */
function writeClassifier(writer: ArtifactWriter, source: ModelSource, format: ClassifierFormat): void {
  if (!isClassifierFormat(format)) throw new UsageError(`--classifier ${String(format)} is not one of ${CLASSIFIER_FORMATS.join(', ')}`);
  if (classifierWeightBits(format) === undefined) {
    writer.addClassifier(format);
    return;
  }
  const name = source.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight';
  const bar = progressBar(`classifier ${format}`, source.config.vocabSize, 'rows');
  const q = quantizeClassifier(tensorRows(source.tensor(name)), format, (done) => bar.update(done));
  bar.finish();
  writer.addClassifier(format, q);
}

/** The request's smoothing scope, default filled in; anything else is a usage error. */
export function requestedSmoothing(args: { smoothing?: string }): SmoothingScope {
  const s = args.smoothing ?? DEFAULT_SMOOTHING_SCOPE;
  if (!isSmoothingScope(s)) throw new UsageError(`smoothing ${JSON.stringify(s)} is not one of shared-input, per-linear`, 'use --smoothing shared (one m per shared input, the default) or --smoothing per-linear');
  return s;
}

export interface QuantizeToArtifactOptions {
  /**
   * Whole-model calibration statistics made earlier with the same CalibrationRequest (a function is
   * called only if needed): evaluations that quantize many methods of a small model calibrate once
   * this way. Without them the model is calibrated and quantized layer by layer.
   */
  stats?: CalibrationStats | (() => Promise<CalibrationStats>);
}

/** Where the time and memory of a quantization went. */
export interface QuantizeReport {
  manifest: ArtifactManifest;
  seconds: number;
  loadSeconds: number;
  calibrateSeconds: number;
  quantizeSeconds: number;
  writeSeconds: number;
  calibration: { samples: number; seqLen: number; dtype: 'f32' | 'f16'; layersPerPass: number };
  /** Peak resident set of this process so far (bytes; getrusage maxrss). */
  peakRssBytes: number;
  /** GPU memory of the largest calibration executor (one layer group's fp weights + classifier; its own accounting). */
  gpuBytes: number;
}

/** Calibration defaults: the paper-like 64 × 256 for small models; 2048 tokens for 8B-wide ones (see docs/quantization.md). */
export function calibrationDefaults(dim: number): { samples: number; seqLen: number } {
  return dim >= 2048 ? { samples: 8, seqLen: 128 } : { samples: 64, seqLen: 256 };
}

/** A request's calibration size with the defaults filled in (windows no longer than the model's context). */
function calibrationShape(req: CalibrationRequest, c: ModelConfig): { samples: number; seqLen: number } {
  const defaults = calibrationDefaults(c.dim);
  return { samples: req.calibSamples ?? defaults.samples, seqLen: Math.min(req.calibLen ?? defaults.seqLen, c.maxSeqLen) };
}

/** The calibration windows a request draws from its text (seeded), with their size. */
function calibrationWindows(req: CalibrationRequest, source: ModelSource, tokenizer: TextTokenizer): { dataset: string; samples: number; seqLen: number; windows: number[][] } {
  const { samples, seqLen } = calibrationShape(req, source.config);
  const calib = calibrationText(req.calib);
  const stream = tokenizer.encode(calib.text, { bos: false });
  if (stream.length < seqLen + 1) throw new UsageError(`calibration text has ${stream.length} tokens, fewer than --calib-len ${seqLen}`);
  return { dataset: calib.name, samples, seqLen, windows: drawCalibrationWindows(stream, samples, seqLen, req.seed) };
}

/** Runs the calibration windows through the fp model on the GPU and returns every block linear's input statistics. */
export async function calibrateModel(req: CalibrationRequest): Promise<CalibrationStats> {
  const resolved = resolveModel(req.model);
  const { source, tokenizer } = resolved;
  try {
    const { seqLen: calibLen, windows } = calibrationWindows(req, source, tokenizer);
    const session = await openSession({ model: resolved, dtype: 'f32', maxSeqLen: calibLen });
    try {
      const bar = progressBar('calibrate', windows.length, 'windows');
      const stats = await collectCalibrationStats(executorCapture(session.executor), windows, { seed: req.seed, onWindow: (d) => bar.update(d) });
      bar.finish();
      return stats;
    } finally {
      session.close();
    }
  } finally {
    source.close();
  }
}

/**
 * A budget request's checks, and the rank every linear is computed at before the allocation cuts it:
 * the most any one linear could afford (capped by --budget-max-rank).
 */
function budgetComputeRank(args: QuantizeRequest, c: ModelConfig): number {
  const b = args.budget!;
  const flag = `--budget-${b.unit}`;
  if (!(BUDGET_UNITS as readonly string[]).includes(b.unit)) throw new UsageError(`budget unit must be ${BUDGET_UNITS.join(' or ')}, got ${JSON.stringify(b.unit)}`);
  if (!(LOW_RANK_METHODS as readonly string[]).includes(args.method)) throw new UsageError(`${flag} allocates reconstruction ranks: it needs a low-rank method (${LOW_RANK_METHODS.join(', ')}), not ${args.method}`);
  if (args.rank !== undefined || args.alpha !== undefined) throw new UsageError(`${flag} chooses the ranks itself: drop --rank/--side-width/--alpha`);
  if (!(Number.isFinite(b.percent) && b.percent >= 0)) throw new UsageError(`${flag} ${b.percent}: must be a non-negative percentage`);
  // The bytes cost counts f16 factors (quant/budget.ts); int8 factors would leave a bytes budget half spent.
  if (b.unit === 'bytes' && requestedLowRankDtype(args) !== 'f16') throw new UsageError('--budget-bytes counts f16 L_A/L_B: use it with --lowrank-dtype f16, or give --budget-flops');
  if (args.budgetMaxRank !== undefined && !(Number.isInteger(args.budgetMaxRank) && args.budgetMaxRank >= 0)) throw new UsageError(`--budget-max-rank ${args.budgetMaxRank}: must be a non-negative integer`);
  const shapes = linearShapes(c);
  const linears = Array.from({ length: c.nLayers }, () => BLOCK_LINEARS.map(({ name }) => {
    const { in: inFeatures, out: outFeatures } = shapes[name];
    let fixedColumns: number;
    try {
      fixedColumns = lowRankExactColumns(args.method, inFeatures, args.outliers, args.outlierColumns);
    } catch (err) {
      if (err instanceof QuantizeError) throw new UsageError(`--outliers: ${err.message}`);
      throw err;
    }
    return { inFeatures, outFeatures, smooth: true, fixedColumns, sigma: [] };
  })).flat();
  // Before calibrating: a budget the outlier columns alone exceed is refused now, not after the work.
  try {
    allocateRanks(linears, b, { wBits: args.wbits });
  } catch (err) {
    if (err instanceof QuantizeError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
  const bound = largestAffordableRank(linears, b, { wBits: args.wbits });
  return Math.min(bound, args.budgetMaxRank ?? Infinity);
}

/** Cuts linears computed at `computedRank` down to the budget's allocation; a budget below the outlier columns is a usage error. */
function applyBudget(args: QuantizeRequest, computedRank: number, layers: Map<string, QuantizedLinear>, diagnostics: Map<string, QuantDiagnostics>): BudgetRecord {
  const results = new Map<string, QuantizeResult>([...layers].map(([name, linear]) => [name, { linear, diag: diagnostics.get(name)! }]));
  let spent: ReturnType<typeof spendBudget>;
  try {
    spent = spendBudget(results, args.budget!, computedRank, { wBits: args.wbits });
  } catch (err) {
    if (err instanceof QuantizeError) throw new UsageError(`--budget-${args.budget!.unit}: ${err.message}`);
    throw err;
  }
  for (const [name, r] of spent.results) {
    layers.set(name, r.linear);
    diagnostics.set(name, r.diag);
  }
  return spent.record;
}

/** Error-reconstruction rank a request asks for: --rank, or 8 for low-rank methods when neither --rank nor --alpha is given. */
function requestedRank(args: QuantizeRequest, config?: ModelConfig): number | undefined {
  if (args.rank !== undefined && args.alpha !== undefined) throw new UsageError('give --rank or --alpha, not both');
  if (args.budget) return config ? budgetComputeRank(args, config) : undefined;
  const lowRank = (LOW_RANK_METHODS as readonly string[]).includes(args.method);
  return lowRank && args.alpha === undefined ? (args.rank ?? 8) : args.rank;
}

function quantizeOptions(args: QuantizeRequest, rank: number | undefined) {
  return {
    wBits: args.wbits, aBits: args.abits, rank, alpha: args.alpha, outliers: args.outliers, rankIncludesOutliers: args.budget ? false : args.rankCountsOutliers,
    smoothing: requestedSmoothing(args), ...(args.outlierColumns ? { outlierColumns: args.outlierColumns } : {}),
  };
}

function manifestOptions(args: QuantizeRequest, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    outliers: args.outliers ?? null, ...(args.rankCountsOutliers ? { rankCountsOutliers: true } : {}),
    ...(args.outlierColumns && args.outlierColumns !== 'exact' ? { outlierColumns: args.outlierColumns } : {}), ...extra,
  };
}

/** Quantizes every block linear from whole-model statistics given by the caller, and writes the artifact atomically. */
async function quantizeFromStats(args: QuantizeRequest, statsGiven: NonNullable<QuantizeToArtifactOptions['stats']>): Promise<QuantizeReport> {
  const method = args.method;
  const started = performance.now();
  const resolved = resolveModel(args.model);
  const { source } = resolved;
  try {
    const rank = requestedRank(args, source.config);
    const stats = typeof statsGiven === 'function' ? await statsGiven() : statsGiven;
    const calibrateSeconds = (performance.now() - started) / 1000;
    const { samples, seqLen } = calibrationShape(args, source.config);
    const qbar = progressBar(`quantize ${method}`, source.config.nLayers * 7, 'linears');
    let done = 0;
    const q0 = performance.now();
    const result = quantizeModel(source, stats, method, { ...quantizeOptions(args, rank), onLinear: () => qbar.update(++done) });
    qbar.finish();
    const budget = args.budget ? applyBudget(args, rank!, result.layers, result.diagnostics) : undefined;
    const w0 = performance.now();
    const lowRankDtype = requestedLowRankDtype(args);
    const manifest = writeArtifact(args.out, {
      source: modelIdentity(source.id, resolved.path), method, wBits: args.wbits, aBits: args.abits,
      rank: budget ? null : (rank ?? null), alpha: args.alpha ?? null, options: manifestOptions(args, {}), smoothing: requestedSmoothing(args), lowRankDtype,
      calibration: { dataset: args.calib, samples, seqLen, seed: args.seed }, ...(budget ? { budget } : {}),
    }, inLowRankDtype(result.layers, lowRankDtype), result.diagnostics as Map<string, object>, (writer) => writeClassifier(writer, source, args.classifier ?? DEFAULT_CLASSIFIER_FORMAT));
    const end = performance.now();
    return {
      manifest, seconds: (end - started) / 1000, loadSeconds: 0, calibrateSeconds, quantizeSeconds: (w0 - q0) / 1000, writeSeconds: (end - w0) / 1000,
      calibration: { samples, seqLen, dtype: 'f32', layersPerPass: source.config.nLayers },
      peakRssBytes: process.resourceUsage().maxRSS * 1024, gpuBytes: 0,
    };
  } finally {
    source.close();
  }
}

/**
 * Calibrates `model` on the GPU and quantizes it layer by layer (quant/quantize-layerwise.ts): each
 * layer's linears are written into the artifact as soon as they exist and its statistics freed; the
 * artifact is committed atomically at the end.
 */
export async function quantizeToArtifact(args: QuantizeRequest, opts: QuantizeToArtifactOptions = {}): Promise<QuantizeReport> {
  if (opts.stats) return quantizeFromStats(args, opts.stats);
  const method = args.method;
  const resolved = resolveModel(args.model);
  const { source, tokenizer } = resolved;
  try {
    const c = source.config;
    const rank = requestedRank(args, c);
    const layersPerPass = args.layersPerPass ?? 1;
    if (!Number.isInteger(layersPerPass) || layersPerPass < 1) throw new UsageError(`--layers-per-pass ${layersPerPass} must be a positive integer`);
    const { dataset, samples: calibSamples, seqLen: calibLen, windows } = calibrationWindows(args, source, tokenizer);
    const session = await openModelSession({ model: resolved });
    const { gpu } = session;
    const started = performance.now();
    try {
      const f32Bytes = 4 * (c.nLayers * 7 * c.dim * c.dim + 2 * c.vocabSize * c.dim); // order of magnitude is all the rule needs
      const dtype = args.calibDtype === 'f32' || args.calibDtype === 'f16' ? args.calibDtype : (f32Bytes > 2 ** 30 && gpu.features.shaderF16 ? 'f16' : 'f32');
      if (dtype === 'f16' && !gpu.features.shaderF16) throw new UsageError(`--calib-dtype f16 needs shader-f16, which ${gpu.describe()} lacks`, 'use --calib-dtype f32');
      // One executor per layer group, holding only that group's fp weights (quant/group-capture.ts).
      const capture = groupCapture(gpu, source, { dtype, maxSeqLen: calibLen, maxBatchTokens: Math.min(calibLen, DEFAULT_MAX_BATCH_TOKENS), pipelines: session.pipelines });
      const lowRankDtype = requestedLowRankDtype(args);
      const writer = ArtifactWriter.begin(args.out);
      let calibrateSeconds = 0, quantizeSeconds = 0, writeSeconds = 0;
      try {
        const passes = Math.ceil(c.nLayers / layersPerPass);
        const cbar = progressBar('calibrate', passes * windows.length, 'windows');
        const qbar = progressBar(`quantize ${method}`, c.nLayers * 7, 'linears');
        let pass = 0, done = 0;
        // With a budget every layer is held until all spectra are known (the allocation is global).
        const held = { layers: new Map<string, QuantizedLinear>(), diagnostics: new Map<string, QuantDiagnostics>() };
        const { groups } = await quantizeLayerwise(capture, source, windows, method, (layer, linears, diagnostics) => {
          if (args.budget) {
            for (const [name, l] of linears) held.layers.set(name, l);
            for (const [name, d] of diagnostics) held.diagnostics.set(name, d);
          } else writer.addFile(artifactFileFor(`model.layers.${layer}.`), inLowRankDtype(linears, lowRankDtype), diagnostics as unknown as Map<string, Record<string, unknown>>);
        }, {
          ...quantizeOptions(args, rank), layersPerPass, seed: args.seed,
          onCalibrate: (_g, w) => cbar.update(pass * windows.length + w),
          onLinear: () => qbar.update(++done),
          onGroup: (g) => {
            pass++;
            calibrateSeconds += g.calibrateSeconds;
            quantizeSeconds += g.quantizeSeconds;
            writeSeconds += g.writeSeconds;
          },
        });
        cbar.finish();
        qbar.finish();
        capture.destroy();
        let budget: BudgetRecord | undefined;
        if (args.budget) {
          const w0 = performance.now();
          budget = applyBudget(args, rank!, held.layers, held.diagnostics);
          for (let layer = 0; layer < c.nLayers; layer++) {
            const prefix = `model.layers.${layer}.`;
            const pick = <T>(m: Map<string, T>) => new Map([...m].filter(([name]) => name.startsWith(prefix)));
            writer.addFile(artifactFileFor(prefix), inLowRankDtype(pick(held.layers), lowRankDtype), pick(held.diagnostics) as unknown as Map<string, Record<string, unknown>>);
          }
          writeSeconds += (performance.now() - w0) / 1000;
        }
        const c0 = performance.now();
        writeClassifier(writer, source, args.classifier ?? DEFAULT_CLASSIFIER_FORMAT);
        quantizeSeconds += (performance.now() - c0) / 1000;
        const manifest = writer.commit({
          source: modelIdentity(source.id, resolved.path), method, wBits: args.wbits, aBits: args.abits,
          rank: budget ? null : (rank ?? null), alpha: args.alpha ?? null, options: manifestOptions(args, { layersPerPass, calibDtype: dtype }), smoothing: requestedSmoothing(args), lowRankDtype,
          calibration: { dataset, samples: calibSamples, seqLen: calibLen, seed: args.seed, tokens: groups[0]?.tokens }, ...(budget ? { budget } : {}),
        });
        return {
          // Group executors are built inside the calibration passes: their build time is load, not calibration.
          manifest, seconds: (performance.now() - started) / 1000, loadSeconds: capture.loadSeconds,
          calibrateSeconds: calibrateSeconds - capture.loadSeconds, quantizeSeconds, writeSeconds,
          calibration: { samples: calibSamples, seqLen: calibLen, dtype, layersPerPass },
          peakRssBytes: process.resourceUsage().maxRSS * 1024, gpuBytes: capture.peakGpuBytes,
        };
      } catch (err) {
        writer.abort();
        capture.destroy();
        throw err;
      }
    } finally {
      session.close();
    }
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
