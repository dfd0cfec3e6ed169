// KL divergence of a quantized model to the fp model, as llama.cpp's `perplexity --kl-divergence`
// does it: the fp model's per-token log-prob rows are computed once and kept (full rows for small
// vocabularies, else the top-k log-probs plus the mass of the rest), then a quantized model runs the
// same windows and every scored token gives KL(p_fp ‖ p_q), whether the top token agrees, and both
// NLLs of the true next token (for Δppl). Windows follow eval/ppl.ts (gptq or llamacpp protocol).
// Portable maths and executor calls only; the file format lives in eval/kld-store.ts.
import type { Executor } from '../runtime/executor.js';
import type { PplProtocol } from './ppl.js';

export interface KldWindowSpec {
  ctx: number;
  protocol: PplProtocol;
  maxWindows?: number;
}

export interface KldWindow {
  /** Executor input: ctx − 1 tokens. */
  inputs: number[];
  /** Next-token targets of the scored positions first..ctx−2. */
  targets: number[];
  /** First scored position (0 for gptq, ctx/2 for llamacpp). */
  first: number;
}

/** The windows eval/ppl.ts scores, with their scored positions. */
export function kldWindows(ids: readonly number[], bosId: number, spec: KldWindowSpec): KldWindow[] {
  const { ctx, protocol } = spec;
  if (!Number.isInteger(ctx) || ctx < 4) throw new RangeError(`ctx ${ctx} must be an integer ≥ 4`);
  let n = Math.floor(ids.length / ctx);
  if (spec.maxWindows !== undefined) n = Math.min(n, spec.maxWindows);
  if (n < 1) throw new RangeError(`the text has ${ids.length} tokens, fewer than one window of ${ctx}`);
  const first = protocol === 'llamacpp' ? Math.floor(ctx / 2) : 0;
  const out: KldWindow[] = [];
  for (let w = 0; w < n; w++) {
    const window = ids.slice(w * ctx, (w + 1) * ctx);
    if (protocol === 'llamacpp') window[0] = bosId;
    out.push({ inputs: window.slice(0, ctx - 1), targets: window.slice(first + 1), first });
  }
  return out;
}

/** The fp model's distributions at every scored token. */
export interface KldReference {
  vocab: number;
  /** 'full': logp holds [tokens, vocab]; 'topk': ids/logp hold [tokens, k] sorted by descending p. */
  mode: 'full' | 'topk';
  k: number;
  /** Scored tokens. */
  tokens: number;
  /** Every window's inputs, concatenated ([windows, ctx − 1]), so a comparison runs the very same tokens. */
  inputs: Uint32Array;
  windows: number;
  ctx: number;
  first: number;
  /** The true next token of every scored position, [tokens]. */
  targets: Uint32Array;
  /** NLL of the true next token under the fp model, [tokens]. */
  nll: Float64Array;
  /** The fp model's most likely token, [tokens]. */
  top: Uint32Array;
  logp: Float32Array;
  /** Token ids of the kept log-probs (topk mode only). */
  ids?: Uint32Array;
}

export interface KldReferenceOptions extends KldWindowSpec {
  /** Vocabularies up to this size keep full rows (default 4096). */
  fullVocabMax?: number;
  /** Kept log-probs per token for larger vocabularies (default 64). */
  topK?: number;
  onWindow?: (done: number, total: number) => void;
}

/** Log-softmax of one logit row in float64. */
export function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return out;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Indices of the k largest entries, largest first. */
function topIndices(x: Float64Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (idx.length < k) {
      idx.push(i);
      if (idx.length === k) idx.sort((a, b) => x[b]! - x[a]!);
    } else if (x[i]! > x[idx[k - 1]!]!) {
      let j = k - 1;
      while (j > 0 && x[idx[j - 1]!]! < x[i]!) {
        idx[j] = idx[j - 1]!;
        j--;
      }
      idx[j] = i;
    }
  }
  if (idx.length < k) idx.sort((a, b) => x[b]! - x[a]!);
  return idx;
}

/** Runs the fp model over the windows and keeps its distributions at every scored token. */
export async function computeKldReference(executor: Executor, ids: readonly number[], bosId: number, opts: KldReferenceOptions): Promise<KldReference> {
  const windows = kldWindows(ids, bosId, opts);
  const vocab = executor.config.vocabSize;
  const mode = vocab <= (opts.fullVocabMax ?? 4096) ? 'full' : 'topk';
  const k = mode === 'full' ? vocab : Math.min(vocab, opts.topK ?? 64);
  const perWindow = windows[0]!.targets.length;
  const tokens = windows.length * perWindow;
  const ref: KldReference = {
    vocab, mode, k, tokens, windows: windows.length, ctx: opts.ctx, first: windows[0]!.first,
    inputs: new Uint32Array(windows.length * (opts.ctx - 1)),
    targets: new Uint32Array(tokens), nll: new Float64Array(tokens), top: new Uint32Array(tokens),
    logp: new Float32Array(tokens * k), ids: mode === 'topk' ? new Uint32Array(tokens * k) : undefined,
  };
  let t = 0;
  for (const [w, win] of windows.entries()) {
    ref.inputs.set(win.inputs, w * (opts.ctx - 1));
    executor.reset();
    const rows = await executor.logitRows(win.inputs);
    for (let j = 0; j < win.targets.length; j++, t++) {
      const lp = logSoftmax(rows.subarray((win.first + j) * vocab, (win.first + j + 1) * vocab));
      ref.targets[t] = win.targets[j]!;
      ref.nll[t] = -lp[win.targets[j]!]!;
      ref.top[t] = argmax(lp);
      if (mode === 'full') ref.logp.set(lp, t * k);
      else {
        const keep = topIndices(lp, k);
        for (let i = 0; i < k; i++) {
          ref.ids![t * k + i] = keep[i]!;
          ref.logp[t * k + i] = lp[keep[i]!]!;
        }
      }
    }
    opts.onWindow?.(w + 1, windows.length);
  }
  return ref;
}

/** Per-token comparison of a model against a reference. */
export interface KldTokens {
  kld: Float64Array;
  nllRef: Float64Array;
  nll: Float64Array;
  sameTop: Uint8Array;
}

/** Runs `executor` over the reference's windows; returns per-token KLD, NLLs and top-token agreement. */
export async function compareToReference(executor: Executor, ref: KldReference, onWindow?: (done: number, total: number) => void): Promise<KldTokens> {
  const { vocab, ctx, first } = ref;
  if (executor.config.vocabSize !== vocab) throw new RangeError(`the model's vocabulary (${executor.config.vocabSize}) is not the reference's (${vocab})`);
  const perWindow = ref.tokens / ref.windows;
  const out: KldTokens = { kld: new Float64Array(ref.tokens), nllRef: ref.nll, nll: new Float64Array(ref.tokens), sameTop: new Uint8Array(ref.tokens) };
  let t = 0;
  for (let w = 0; w < ref.windows; w++) {
    const inputs = ref.inputs.subarray(w * (ctx - 1), (w + 1) * (ctx - 1));
    executor.reset();
    const rows = await executor.logitRows(inputs);
    for (let j = 0; j < perWindow; j++, t++) {
      const pos = first + j;
      const lq = logSoftmax(rows.subarray(pos * vocab, (pos + 1) * vocab));
      out.nll[t] = -lq[ref.targets[t]!]!;
      out.sameTop[t] = argmax(lq) === ref.top[t] ? 1 : 0;
      out.kld[t] = tokenKld(ref, t, lq);
    }
    onWindow?.(w + 1, ref.windows);
  }
  return out;
}

/** KL(p_ref ‖ q) at scored token t; top-k references add the rest's mass as one bucket. */
export function tokenKld(ref: KldReference, t: number, lq: Float64Array): number {
  const { k } = ref;
  let sum = 0;
  if (ref.mode === 'full') {
    for (let v = 0; v < k; v++) {
      const lp = ref.logp[t * k + v]!;
      sum += Math.exp(lp) * (lp - lq[v]!);
    }
    return Math.max(0, sum);
  }
  let pKept = 0, qKept = 0;
  for (let i = 0; i < k; i++) {
    const lp = ref.logp[t * k + i]!;
    const lqi = lq[ref.ids![t * k + i]!]!;
    pKept += Math.exp(lp);
    qKept += Math.exp(lqi);
    sum += Math.exp(lp) * (lp - lqi);
  }
  const pRest = 1 - pKept, qRest = 1 - qKept;
  if (pRest > 1e-12) sum += pRest * (Math.log(pRest) - Math.log(Math.max(qRest, 1e-30)));
  return Math.max(0, sum);
}

export interface KldSummary {
  tokens: number;
  /** Mean KL(p_fp ‖ p_q) per token (nats) and its standard error. */
  kldMean: number;
  kldStderr: number;
  kldMedian: number;
  kldP90: number;
  kldP95: number;
  kldP99: number;
  kldMax: number;
  /** % of tokens whose most likely next token is the fp model's, with its binomial standard error. */
  sameTopPct: number;
  sameTopStderrPct: number;
  pplRef: number;
  ppl: number;
  /** ppl − pplRef, ± from the delta method with the covariance of the paired NLLs (as llama.cpp). */
  deltaPpl: number;
  deltaPplStderr: number;
  /** ln(ppl / pplRef) = mean(nll − nllRef), and its standard error. */
  lnPplRatio: number;
  lnPplRatioStderr: number;
  /** Up to 2,000 per-token KLDs, evenly strided (for histograms). */
  kldSample: number[];
}

/** Value at quantile q of sorted xs (linear interpolation between order statistics). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos), hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function meanVar(x: ArrayLike<number>): { mean: number; variance: number } {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i]!;
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i]! - mean) ** 2;
  return { mean, variance: n > 1 ? ss / (n - 1) : 0 };
}

export function summarizeKld(t: KldTokens): KldSummary {
  const n = t.kld.length;
  if (n === 0) throw new RangeError('no scored tokens');
  const kld = meanVar(t.kld);
  const sorted = Float64Array.from(t.kld).sort();
  let same = 0;
  for (let i = 0; i < n; i++) same += t.sameTop[i]!;
  const pSame = same / n;
  const a = meanVar(t.nll), b = meanVar(t.nllRef);
  let cov = 0;
  for (let i = 0; i < n; i++) cov += (t.nll[i]! - a.mean) * (t.nllRef[i]! - b.mean);
  cov = n > 1 ? cov / (n - 1) : 0;
  const ppl = Math.exp(a.mean), pplRef = Math.exp(b.mean);
  // Var of the two means: variance / n; Δppl = e^{ā} − e^{b̄} linearized around the means.
  const varDelta = (ppl ** 2 * a.variance + pplRef ** 2 * b.variance - 2 * ppl * pplRef * cov) / n;
  const diff = new Float64Array(n);
  for (let i = 0; i < n; i++) diff[i] = t.nll[i]! - t.nllRef[i]!;
  const d = meanVar(diff);
  const stride = Math.max(1, Math.ceil(n / 2000));
  const kldSample: number[] = [];
  for (let i = 0; i < n; i += stride) kldSample.push(t.kld[i]!);
  return {
    tokens: n,
    kldMean: kld.mean,
    kldStderr: Math.sqrt(kld.variance / n),
    kldMedian: quantile(sorted, 0.5),
    kldP90: quantile(sorted, 0.9),
    kldP95: quantile(sorted, 0.95),
    kldP99: quantile(sorted, 0.99),
    kldMax: sorted[n - 1]!,
    sameTopPct: 100 * pSame,
    sameTopStderrPct: 100 * Math.sqrt((pSame * (1 - pSame)) / n),
    pplRef,
    ppl,
    deltaPpl: ppl - pplRef,
    deltaPplStderr: Math.sqrt(Math.max(0, varDelta)),
    lnPplRatio: d.mean,
    lnPplRatioStderr: Math.sqrt(d.variance / n),
    kldSample,
  };
}
