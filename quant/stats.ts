// Calibration statistics of one linear layer's input X ([tokens, in]), accumulated chunk by chunk:
// H = XᵀX in float64 (through BLAS dsyrk), mean|X_j| and max|X_j| per input channel, the token count,
// and a small seeded reservoir sample of whole token rows (for the methods whose objective includes
// activation quantization, which H alone cannot see: SmoothQuant+'s search and the sampled diagnostics).
import { gram, matrix, symmetrizeFromUpper, type Mat } from './linalg.js';
import { createRng as seededRandom } from '../core/rng.js';

export interface InputStatsOptions {
  /** Token rows kept in the reservoir sample (default 256; 0 = none). */
  sampleTokens?: number;
  /** Seed of the reservoir's PRNG (default 0). */
  seed?: number;
}

/** Rows converted to f64 per dsyrk call: large enough for BLAS3 speed, small enough to bound memory. */
const CHUNK_ROWS = 512;

/** The runtime's seeded PRNG (mulberry32): picks calibration windows and sampled rows. */
export { createRng as seededRandom } from '../core/rng.js';

export class LinearInputStats {
  readonly features: number;
  private count = 0;
  /** Upper triangle of XᵀX, [in, in] row-major. */
  private readonly h: Mat;
  private readonly sumAbs: Float64Array;
  private readonly maxAbsValues: Float64Array;
  private readonly sampleRows: Float32Array;
  private readonly sampleCapacity: number;
  private sampled = 0;
  private readonly random: () => number;

  constructor(features: number, options: InputStatsOptions = {}) {
    if (!Number.isInteger(features) || features < 1) throw new RangeError(`LinearInputStats: features must be a positive integer, got ${features}`);
    this.features = features;
    this.h = matrix(features, features);
    this.sumAbs = new Float64Array(features);
    this.maxAbsValues = new Float64Array(features);
    this.sampleCapacity = options.sampleTokens ?? 256;
    this.sampleRows = new Float32Array(this.sampleCapacity * features);
    this.random = seededRandom(options.seed ?? 0);
  }

  /**
   * Stats from known moments instead of activations (synthetic layers, benchmarks, cached statistics):
   * H = XᵀX [in, in] (full symmetric), mean|X_j|, max|X_j|, the token count, optionally sampled rows.
   */
  static fromMoments(m: { h: Mat; meanAbs: Float64Array; maxAbs: Float64Array; tokens: number; sample?: { x: Float32Array; tokens: number } }): LinearInputStats {
    const n = m.h.rows;
    if (m.h.cols !== n || m.meanAbs.length !== n || m.maxAbs.length !== n) {
      throw new RangeError(`LinearInputStats.fromMoments: H is [${m.h.rows}, ${m.h.cols}], meanAbs ${m.meanAbs.length}, maxAbs ${m.maxAbs.length}`);
    }
    if (!Number.isInteger(m.tokens) || m.tokens < 1) throw new RangeError(`LinearInputStats.fromMoments: tokens must be a positive integer, got ${m.tokens}`);
    const sampleTokens = m.sample?.tokens ?? 0;
    if (m.sample && m.sample.x.length !== sampleTokens * n) throw new RangeError('LinearInputStats.fromMoments: sample is not [tokens, in]');
    const s = new LinearInputStats(n, { sampleTokens });
    s.h.data.set(m.h.data);
    for (let j = 0; j < n; j++) s.sumAbs[j] = m.meanAbs[j]! * m.tokens;
    s.maxAbsValues.set(m.maxAbs);
    s.count = m.tokens;
    if (m.sample) {
      s.sampleRows.set(m.sample.x);
      s.sampled = sampleTokens;
    }
    return s;
  }

  /** Tokens accumulated so far. */
  get tokens(): number {
    return this.count;
  }

  /** Adds x [tokens, in] (row-major). Non-finite values are refused: they would poison H silently. */
  add(x: Float32Array, tokens = x.length / this.features): void {
    const n = this.features;
    if (!Number.isInteger(tokens) || tokens * n !== x.length) {
      throw new RangeError(`LinearInputStats.add: ${x.length} values is not [tokens, ${n}]`);
    }
    const chunk = new Float64Array(Math.min(tokens, CHUNK_ROWS) * n);
    for (let t0 = 0; t0 < tokens; t0 += CHUNK_ROWS) {
      const rows = Math.min(CHUNK_ROWS, tokens - t0);
      for (let r = 0; r < rows; r++) {
        const src = (t0 + r) * n;
        for (let j = 0; j < n; j++) {
          const v = x[src + j]!;
          if (!Number.isFinite(v)) throw new RangeError(`LinearInputStats.add: non-finite activation ${v} at token ${t0 + r}, channel ${j}`);
          chunk[r * n + j] = v;
          const a = Math.abs(v);
          this.sumAbs[j] += a;
          if (a > this.maxAbsValues[j]!) this.maxAbsValues[j] = a;
        }
      }
      gram({ rows, cols: n, data: rows * n === chunk.length ? chunk : chunk.subarray(0, rows * n) }, 'AtA', { into: this.h });
    }
    for (let t = 0; t < tokens; t++) this.offerSample(x, t);
    this.count += tokens;
  }

  // Algorithm R: after m rows seen, every row is in the reservoir with probability capacity/m.
  private offerSample(x: Float32Array, t: number): void {
    if (this.sampleCapacity === 0) return;
    const seen = this.count + t;
    let slot = -1;
    if (this.sampled < this.sampleCapacity) slot = this.sampled++;
    else {
      const k = Math.floor(this.random() * (seen + 1));
      if (k < this.sampleCapacity) slot = k;
    }
    if (slot >= 0) this.sampleRows.set(x.subarray(t * this.features, (t + 1) * this.features), slot * this.features);
  }

  /** H = XᵀX, full symmetric [in, in] (a fresh copy). */
  hessian(): Mat {
    return symmetrizeFromUpper(matrix(this.features, this.features, Float64Array.from(this.h.data)));
  }

  /** x̄_j = mean_t |X[t, j]|. */
  meanAbs(): Float64Array {
    const out = new Float64Array(this.features);
    if (this.count > 0) for (let j = 0; j < this.features; j++) out[j] = this.sumAbs[j]! / this.count;
    return out;
  }

  /** max_t |X[t, j]|. */
  maxAbs(): Float64Array {
    return Float64Array.from(this.maxAbsValues);
  }

  /** The reservoir sample of token rows, [tokens, in]. */
  sample(): { x: Float32Array; tokens: number } {
    return { x: this.sampleRows.slice(0, this.sampled * this.features), tokens: this.sampled };
  }
}
