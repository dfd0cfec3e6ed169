// Next-token choice from a logits row: greedy (temperature 0), or temperature sampling with optional
// nucleus (top-p) truncation, driven by a seeded PRNG so a seed always gives the same tokens.
import { createRng } from '../core/rng.js';
import { SamplerError } from './errors.js';

export interface SamplerOptions {
  /** 0 (default) = greedy argmax; > 0 divides logits before the softmax. */
  temperature?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities sum to ≥ topP; 1 (default) = off. */
  topP?: number;
  /** PRNG seed (default: a random one, reported by `seed`). */
  seed?: number;
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export class Sampler {
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number;
  private readonly rng: () => number;
  private probs = new Float64Array(0);
  private order = new Uint32Array(0);

  constructor(opts: SamplerOptions = {}) {
    this.temperature = opts.temperature ?? 0;
    this.topP = opts.topP ?? 1;
    if (!Number.isFinite(this.temperature) || this.temperature < 0) throw new SamplerError(`temperature ${this.temperature} must be a finite number ≥ 0`);
    if (!(this.topP > 0 && this.topP <= 1)) throw new SamplerError(`topP ${this.topP} must lie in (0, 1]`);
    this.seed = (opts.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
    this.rng = createRng(this.seed);
  }

  sample(logits: ArrayLike<number>): number {
    const n = logits.length;
    if (n === 0) throw new SamplerError('empty logits row');
    if (this.temperature === 0) return argmax(logits);
    if (this.probs.length !== n) this.probs = new Float64Array(n);
    const p = this.probs;
    let mx = -Infinity;
    for (let i = 0; i < n; i++) mx = Math.max(mx, logits[i]!);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += p[i] = Math.exp((logits[i]! - mx) / this.temperature);
    const r = this.rng();
    if (this.topP >= 1) {
      let cdf = 0;
      const target = r * sum;
      for (let i = 0; i < n; i++) if ((cdf += p[i]!) > target) return i;
      return argmax(logits); // rounding left target ≥ Σ: the last mass belongs to the largest
    }
    // Nucleus: tokens below (1 - topP) / (n - 1) of the mass can never be in the nucleus (llama2.c's
    // cut), so only the survivors are sorted.
    const cutoff = ((1 - this.topP) / (n - 1)) * sum;
    if (this.order.length !== n) this.order = new Uint32Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) if (p[i]! >= cutoff) this.order[m++] = i;
    const kept = Array.from(this.order.subarray(0, m)).sort((a, b) => p[b]! - p[a]! || a - b);
    let cum = 0;
    let last = kept.length - 1;
    for (let k = 0; k < kept.length; k++) {
      cum += p[kept[k]!]!;
      if (cum > this.topP * sum) {
        last = k;
        break;
      }
    }
    const target = r * cum;
    let cdf = 0;
    for (let k = 0; k <= last; k++) if ((cdf += p[kept[k]!]!) > target) return kept[k]!;
    return kept[last]!;
  }
}

/** A sampling function with its own PRNG state (the functional form of Sampler). */
export function createSampler(opts: SamplerOptions = {}): (logits: ArrayLike<number>) => number {
  const sampler = new Sampler(opts);
  return (logits) => sampler.sample(logits);
}
