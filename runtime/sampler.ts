// Next-token choice from a logits row: greedy (temperature 0), or temperature sampling with optional
// top-k and nucleus (top-p) truncation, driven by a seeded PRNG so a seed always gives the same tokens.
// Host-only extras (what llama-server and OpenAI clients send): min-p truncation and repeat, presence
// and frequency penalties, which need the tokens seen so far; a sampler using any of them reports
// `hostOnly`, and callers then read logits back instead of choosing on the GPU.
// `sampleFrom` is the semantics; kernels/sample.wgsl computes the same choice on the GPU from the same
// draw (the tests compare the two), so a seeded run gives the same tokens with either.
//
// Order and ties: truncation walks the tokens by probability, highest first, and equal
// probabilities (equal logits) by id, lowest first; so a cutoff that falls inside a group of equal
// logits keeps the lowest ids. Greedy takes the lowest id among equal maxima. Without truncation the
// inverse CDF walks ids in order. The GPU computes probabilities as f32 exp in fixed point (2^-31 of
// the max token's), the host in f64: they pick differently only when u·mass lies within that rounding
// of a cumulative sum (or a token's probability is below 2^-32 of the max's, which the GPU rounds to 0).
import { createRng } from '../core/rng.js';
import type { SampleDraw } from '../kernels/sample.js';
import { SamplerError } from './errors.js';

export type { SampleDraw } from '../kernels/sample.js';

export interface SamplerOptions {
  /** 0 (default) = greedy argmax; > 0 divides logits before the softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 (default) = off. Applied before topP, which then sees their mass. */
  topK?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities sum to > topP of the kept mass; 1 (default) = off. */
  topP?: number;
  /** PRNG seed (default: a random one, reported by `seed`). */
  seed?: number;
  /** Drop tokens less likely than minP × the most likely one (after temperature; before top-k/top-p); 0 (default) = off. */
  minP?: number;
  /**
   * llama.cpp's repeat penalty over the last `repeatLastN` tokens (prompt included): their positive
   * logits are divided by it, negative ones multiplied; 1 (default) = off.
   */
  repeatPenalty?: number;
  /** Window of repeatPenalty in tokens (default 64). */
  repeatLastN?: number;
  /** OpenAI's presence penalty: subtracted once from the logit of every token generated so far; 0 = off. */
  presencePenalty?: number;
  /** OpenAI's frequency penalty: subtracted from a token's logit once per time it was generated; 0 = off. */
  frequencyPenalty?: number;
}

/** What the penalties look at: the prompt's tail and the tokens generated so far. */
export interface PenaltyState {
  /** Last repeatLastN tokens of prompt + output (repeat penalty). */
  recent: number[];
  /** Times each generated token was sampled (presence and frequency penalties). */
  counts: Map<number, number>;
}

/**
 * `logits` with the penalties applied (a copy; the input is left alone). Repeat penalty first, as in
 * llama.cpp, then presence/frequency as in OpenAI's formula: logit − count·frequency − [count > 0]·presence.
 */
export function penalizedLogits(
  logits: ArrayLike<number>, state: PenaltyState, opts: { repeatPenalty: number; presencePenalty: number; frequencyPenalty: number },
): Float32Array {
  const out = Float32Array.from(logits as ArrayLike<number>);
  if (opts.repeatPenalty !== 1) {
    for (const id of new Set(state.recent)) {
      const v = out[id]!;
      out[id] = v > 0 ? v / opts.repeatPenalty : v * opts.repeatPenalty;
    }
  }
  if (opts.presencePenalty !== 0 || opts.frequencyPenalty !== 0) {
    for (const [id, n] of state.counts) out[id]! -= n * opts.frequencyPenalty + (n > 0 ? opts.presencePenalty : 0);
  }
  return out;
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** Reusable arrays of one sampler (so a decode loop allocates nothing per token). */
class Workspace {
  probs = new Float64Array(0);
  order = new Uint32Array(0);
  sorted = new Float64Array(0);
  fit(n: number): void {
    if (this.probs.length === n) return;
    this.probs = new Float64Array(n);
    this.order = new Uint32Array(n);
    this.sorted = new Float64Array(n);
  }
}

/** The token `draw` picks from `logits` (its u is the uniform number; unused when greedy). */
export function sampleFrom(logits: ArrayLike<number>, draw: SampleDraw, minP = 0): number {
  return pick(logits, draw, new Workspace(), minP);
}

function pick(logits: ArrayLike<number>, draw: SampleDraw, ws: Workspace, minP = 0): number {
  const n = logits.length;
  if (n === 0) throw new SamplerError('empty logits row');
  if (draw.temperature === 0) return argmax(logits);
  ws.fit(n);
  const p = ws.probs;
  let mx = -Infinity;
  for (let i = 0; i < n; i++) mx = Math.max(mx, logits[i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = Math.exp((logits[i]! - mx) / draw.temperature);
  if (minP > 0) {
    // The most likely token has p = 1 here, so minP itself is the cut; zeroed tokens keep no mass.
    for (let i = 0; i < n; i++) {
      if (p[i]! < minP) {
        sum -= p[i]!;
        p[i] = 0;
      }
    }
  }
  const r = draw.u;
  const topK = draw.topK > 0 && draw.topK < n ? draw.topK : 0;
  if (!topK && draw.topP >= 1) {
    let cdf = 0;
    const target = r * sum;
    for (let i = 0; i < n; i++) if ((cdf += p[i]!) > target) return i;
    return argmax(logits); // rounding left target ≥ Σ: the last mass belongs to the largest
  }
  const kept = topK ? topKOrder(p, topK, ws) : nucleusCandidates(p, sum, draw.topP, ws);
  // With top-k, top-p sees the kept mass (llama.cpp's order: top-k, then top-p over what is left).
  let mass = sum;
  if (topK) {
    mass = 0;
    for (const i of kept) mass += p[i]!;
  }
  let cum = mass;
  let last = kept.length - 1;
  if (draw.topP < 1) {
    cum = 0;
    for (let k = 0; k < kept.length; k++) {
      cum += p[kept[k]!]!;
      if (cum > draw.topP * mass) {
        last = k;
        break;
      }
    }
  }
  const target = r * cum;
  let cdf = 0;
  for (let k = 0; k <= last; k++) if ((cdf += p[kept[k]!]!) > target) return kept[k]!;
  return kept[last]!;
}

/** Sorted order: probability descending, id ascending on ties. */
const byProbability = (p: Float64Array) => (a: number, b: number) => p[b]! - p[a]! || a - b;

/** The k most likely ids in sorted order (ties at the k-th probability: lowest ids). */
function topKOrder(p: Float64Array, k: number, ws: Workspace): Uint32Array {
  const n = p.length;
  const sorted = ws.sorted;
  sorted.set(p);
  sorted.sort();
  const kth = sorted[n - k]!;
  let m = 0;
  for (let i = 0; i < n; i++) if (p[i]! > kth) ws.order[m++] = i;
  for (let i = 0; i < n && m < k; i++) if (p[i] === kth) ws.order[m++] = i;
  return ws.order.subarray(0, m).sort(byProbability(p));
}

/**
 * The ids that can be in a nucleus, in sorted order: tokens below (1 - topP) / (n - 1) of the mass
 * come after a prefix already heavier than topP of it (llama2.c's cut), so only the survivors are
 * sorted. The most likely token always survives (the cut can exceed it when n is tiny).
 */
function nucleusCandidates(p: Float64Array, sum: number, topP: number, ws: Workspace): Uint32Array {
  const n = p.length;
  const cutoff = ((1 - topP) / Math.max(1, n - 1)) * sum;
  const top = argmax(p);
  let m = 0;
  for (let i = 0; i < n; i++) if (p[i]! >= cutoff || i === top) ws.order[m++] = i;
  return ws.order.subarray(0, m).sort(byProbability(p));
}

export class Sampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  readonly minP: number;
  readonly repeatPenalty: number;
  readonly repeatLastN: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  private readonly rng: () => number;
  private readonly ws = new Workspace();
  private readonly penalties: PenaltyState = { recent: [], counts: new Map() };

  constructor(opts: SamplerOptions = {}) {
    this.temperature = opts.temperature ?? 0;
    this.topK = opts.topK ?? 0;
    this.topP = opts.topP ?? 1;
    if (!Number.isFinite(this.temperature) || this.temperature < 0) throw new SamplerError(`temperature ${this.temperature} must be a finite number ≥ 0`);
    if (!Number.isInteger(this.topK) || this.topK < 0) throw new SamplerError(`topK ${this.topK} must be an integer ≥ 0 (0 = off)`);
    if (!(this.topP > 0 && this.topP <= 1)) throw new SamplerError(`topP ${this.topP} must lie in (0, 1]`);
    this.minP = opts.minP ?? 0;
    this.repeatPenalty = opts.repeatPenalty ?? 1;
    this.repeatLastN = opts.repeatLastN ?? 64;
    this.presencePenalty = opts.presencePenalty ?? 0;
    this.frequencyPenalty = opts.frequencyPenalty ?? 0;
    if (!(this.minP >= 0 && this.minP <= 1)) throw new SamplerError(`minP ${this.minP} must lie in [0, 1]`);
    if (!(this.repeatPenalty > 0 && Number.isFinite(this.repeatPenalty))) throw new SamplerError(`repeatPenalty ${this.repeatPenalty} must be a finite number > 0 (1 = off)`);
    if (!Number.isInteger(this.repeatLastN) || this.repeatLastN < 0) throw new SamplerError(`repeatLastN ${this.repeatLastN} must be an integer ≥ 0`);
    for (const [name, v] of [['presencePenalty', this.presencePenalty], ['frequencyPenalty', this.frequencyPenalty]] as const) {
      if (!(v >= -2 && v <= 2)) throw new SamplerError(`${name} ${v} must lie in [-2, 2]`);
    }
    this.seed = (opts.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
    this.rng = createRng(this.seed);
  }

  /** min-p or a penalty is on: tokens must be chosen on the host (the GPU kernel has neither). */
  get hostOnly(): boolean {
    return this.minP > 0 || this.penalized;
  }

  private get penalized(): boolean {
    return this.repeatPenalty !== 1 || this.presencePenalty !== 0 || this.frequencyPenalty !== 0;
  }

  /** Tokens the model has read before the first sample (the prompt): the repeat penalty's window starts with them. */
  observePrompt(ids: readonly number[]): void {
    if (this.repeatLastN === 0) return;
    this.penalties.recent = ids.slice(Math.max(0, ids.length - this.repeatLastN));
  }

  /** Counts a chosen token for the penalties (sample() does this itself; GPU-chosen tokens come here). */
  accept(id: number): void {
    if (this.repeatLastN > 0) {
      this.penalties.recent.push(id);
      if (this.penalties.recent.length > this.repeatLastN) this.penalties.recent.shift();
    }
    this.penalties.counts.set(id, (this.penalties.counts.get(id) ?? 0) + 1);
  }

  /** The next draw: the settings and, when not greedy, the next uniform number of the PRNG. */
  nextDraw(): SampleDraw {
    return { temperature: this.temperature, topK: this.topK, topP: this.topP, u: this.temperature > 0 ? this.rng() : 0 };
  }

  /** The next token from `logits` on the host (uses one draw), penalties and min-p applied; counted for the penalties. */
  sample(logits: ArrayLike<number>): number {
    const row = this.penalized ? penalizedLogits(logits, this.penalties, this) : logits;
    const id = pick(row, this.nextDraw(), this.ws, this.minP);
    this.accept(id);
    return id;
  }
}

/** A sampling function with its own PRNG state (the functional form of Sampler). */
export function createSampler(opts: SamplerOptions = {}): (logits: ArrayLike<number>) => number {
  const sampler = new Sampler(opts);
  return (logits) => sampler.sample(logits);
}
