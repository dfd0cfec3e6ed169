// Calibration: N random windows of L tokens from a calibration token stream (seeded, as the paper's
// "128 × 2048 random windows"), run through the fp model, every linear input accumulated into
// LinearInputStats. Stats are keyed by (layer, input kind): q/k/v share `attn_in`, gate/up share
// `mlp_in` (core/model.ts BLOCK_LINEARS), so one H serves each group. `layers` restricts which
// layers are accumulated, so a large model can be calibrated and quantized a few layers at a time
// (each pass runs the windows through its own layers, starting from the residual stream the pass
// before left, `carry`) and each layer's stats freed once it is quantized.
import { BLOCK_LINEARS, type LinearInputKind } from '../core/model.js';
import { linearInputWidths, type LinearInputCapture, type ResidualState } from './capture.js';
import { LinearInputStats, seededRandom } from './stats.js';
import { CalibrationError } from './errors.js';

/** Recorded in the artifact manifest. */
export interface CalibrationSettings {
  /** Name of the calibration text (e.g. "tinystories" or a file path). */
  dataset: string;
  /** Number of windows N. */
  samples: number;
  /** Window length L in tokens. */
  seqLen: number;
  seed: number;
}

export const LINEAR_INPUT_KINDS: readonly LinearInputKind[] = [...new Set(BLOCK_LINEARS.map((l) => l.input))];

/**
 * `samples` windows of `seqLen` consecutive tokens, each starting at a uniformly random offset of the
 * stream (seeded mulberry32; windows may overlap, as with the usual GPTQ-style sampler).
 */
export function drawCalibrationWindows(stream: ArrayLike<number>, samples: number, seqLen: number, seed: number): number[][] {
  if (!Number.isInteger(samples) || samples < 1) throw new CalibrationError(`calibration samples must be a positive integer, got ${samples}`);
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new CalibrationError(`calibration length must be a positive integer, got ${seqLen}`);
  if (stream.length < seqLen) {
    throw new CalibrationError(`the calibration text has ${stream.length} tokens, fewer than one window of ${seqLen}; use a shorter --calib-len or more text`);
  }
  const random = seededRandom(seed);
  const starts = stream.length - seqLen + 1;
  const windows: number[][] = [];
  for (let s = 0; s < samples; s++) {
    const at = Math.floor(random() * starts);
    windows.push(Array.from({ length: seqLen }, (_, i) => stream[at + i]!));
  }
  return windows;
}

export interface CollectOptions {
  /** Layers to accumulate (default: every layer the executor reports). */
  layers?: Iterable<number>;
  /** Reservoir sample size per input (LinearInputStats option; default 256). */
  sampleTokens?: number;
  /** Seed for the reservoir samples (each input derives its own). */
  seed?: number;
  /** Called after each window. */
  onWindow?: (done: number, total: number) => void;
  /**
   * Per-window residual states carried between layer-group passes (index = window): entry w is where
   * window w starts (absent: at the embedding) and is replaced by its state after this pass, so the
   * next pass runs only its own layers. Passes must then cover consecutive layers in order.
   */
  carry?: Array<ResidualState | undefined>;
}

/** Per-(layer, input kind) statistics, freeable layer by layer. */
export class CalibrationStats {
  private readonly byKey = new Map<string, LinearInputStats>();
  windows = 0;

  private static key(layer: number, kind: LinearInputKind): string {
    return `${layer}:${kind}`;
  }

  get(layer: number, kind: LinearInputKind): LinearInputStats | undefined {
    return this.byKey.get(CalibrationStats.key(layer, kind));
  }

  /** The stats for a linear input, or a CalibrationError saying they were never collected. */
  require(layer: number, kind: LinearInputKind): LinearInputStats {
    const s = this.get(layer, kind);
    if (!s || s.tokens === 0) throw new CalibrationError(`no calibration statistics for layer ${layer} input ${kind}`);
    return s;
  }

  /** Adds one captured input x [tokens, features], creating its accumulator on first sight. */
  add(layer: number, kind: LinearInputKind, x: Float32Array, tokens: number, options: { sampleTokens?: number; seed?: number } = {}): void {
    const features = x.length / tokens;
    if (!Number.isInteger(tokens) || tokens < 1 || !Number.isInteger(features) || features < 1) {
      throw new CalibrationError(`layer ${layer} input ${kind}: ${x.length} values is not [${tokens} tokens, features]`);
    }
    const key = CalibrationStats.key(layer, kind);
    let s = this.byKey.get(key);
    if (!s) {
      const seed = ((options.seed ?? 0) * 1_000_003 + layer * LINEAR_INPUT_KINDS.length + LINEAR_INPUT_KINDS.indexOf(kind)) >>> 0;
      s = new LinearInputStats(features, { sampleTokens: options.sampleTokens, seed });
      this.byKey.set(key, s);
    } else if (s.features !== features) {
      throw new CalibrationError(`layer ${layer} input ${kind}: got ${features} features, earlier windows had ${s.features}`);
    }
    s.add(x, tokens);
  }

  layers(): number[] {
    return [...new Set([...this.byKey.keys()].map((k) => Number(k.split(':')[0])))].sort((a, b) => a - b);
  }

  /** Drops a layer's statistics (its H matrices dominate memory for large models). */
  freeLayer(layer: number): void {
    for (const kind of LINEAR_INPUT_KINDS) this.byKey.delete(CalibrationStats.key(layer, kind));
  }
}

/** Runs every window through the model and accumulates the statistics of the selected layers. */
export async function collectCalibrationStats(capture: LinearInputCapture, windows: number[][], options: CollectOptions = {}): Promise<CalibrationStats> {
  const stats = new CalibrationStats();
  const wanted = options.layers ? new Set(options.layers) : undefined;
  const widths = linearInputWidths(capture.config);
  for (let w = 0; w < windows.length; w++) {
    const tokens = windows[w]!;
    // One report per (layer, kind, row chunk) counts: should the executor report a shared input once
    // per consumer (q, k and v), the repeats are ignored.
    const seen = new Set<string>();
    const from = options.carry?.[w];
    const state = await capture.captureLinearInputs(tokens, (layer, kind, x, firstRow) => {
      if (wanted && !wanted.has(layer)) return;
      const key = `${layer}:${kind}:${firstRow}`;
      if (seen.has(key)) return;
      seen.add(key);
      const width = widths[kind];
      if (x.length % width !== 0) throw new CalibrationError(`layer ${layer} input ${kind}: ${x.length} values is not a multiple of its width ${width}`);
      stats.add(layer, kind, x, x.length / width, options);
    }, wanted || options.carry ? { ...(wanted ? { layers: wanted } : {}), ...(options.carry ? { from, keepState: true } : {}) } : undefined);
    if (options.carry) options.carry[w] = state ?? undefined;
    stats.windows++;
    options.onWindow?.(w + 1, windows.length);
  }
  return stats;
}
