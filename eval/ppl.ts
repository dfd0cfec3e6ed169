// Perplexity of a text under an Executor, with the two protocols papers and tools report:
//
//   gptq      (GPTQ / AWQ / ASER scripts): the whole text tokenized once with BOS at the very start
//             only (what HF tokenizers do by default), cut into non-overlapping windows of ctx tokens;
//             every token of a window after its first is predicted; ppl = exp(mean NLL) over all of them.
//   llamacpp  (llama.cpp `perplexity`): the same tokenization and windows, but each window's first token
//             is replaced by BOS and only the second half is scored (positions ctx/2 .. ctx-2 predict
//             tokens ctx/2+1 .. ctx-1), so every scored token has at least ctx/2 tokens of context.
//
// NLLs are computed on the GPU (Executor.nll) and summed in float64.
import type { Executor } from '../runtime/executor.js';
import type { TextTokenizer } from '../core/model.js';
import { PerplexityError } from './errors.js';

export type PplProtocol = 'gptq' | 'llamacpp';

export interface PerplexityOptions {
  /** Window length in tokens (≤ executor.maxSeqLen). */
  ctx: number;
  protocol: PplProtocol;
  /** Score at most this many windows (C4's protocol uses 256). */
  maxWindows?: number;
  onProgress?: (p: PerplexityProgress) => void;
}

export interface PerplexityProgress {
  window: number;
  windows: number;
  /** Tokens scored so far and their running perplexity. */
  tokens: number;
  ppl: number;
}

export interface PerplexityResult {
  protocol: PplProtocol;
  ctx: number;
  /** Tokens of the whole text (BOS included). */
  textTokens: number;
  windows: number;
  /** Tokens scored. */
  tokens: number;
  /** Mean NLL per scored token (nats). */
  nll: number;
  /** Standard error of that mean, from the per-token NLL variance: sqrt(var / (tokens − 1)). */
  nllStdErr: number;
  ppl: number;
  /** Standard error of ppl, to first order: ppl · nllStdErr (as llama-perplexity reports its ±). */
  pplStdErr: number;
  seconds: number;
}

export async function perplexity(executor: Executor, tokenizer: TextTokenizer, text: string, opts: PerplexityOptions): Promise<PerplexityResult> {
  return perplexityOfTokens(executor, tokenizer.encode(text, { bos: true }), tokenizer.bosId, opts);
}

/** As perplexity(), on an already tokenized text (`ids` should start with BOS for the gptq protocol). */
export async function perplexityOfTokens(executor: Executor, ids: readonly number[], bosId: number, opts: PerplexityOptions): Promise<PerplexityResult> {
  const { ctx, protocol } = opts;
  if (protocol !== 'gptq' && protocol !== 'llamacpp') throw new PerplexityError(`unknown protocol ${String(protocol)} (gptq or llamacpp)`);
  const minCtx = protocol === 'llamacpp' ? 4 : 2;
  if (!Number.isInteger(ctx) || ctx < minCtx || ctx > executor.maxSeqLen) {
    throw new PerplexityError(`ctx ${ctx} must be an integer in ${minCtx}..${executor.maxSeqLen} (the executor's maxSeqLen)`);
  }
  let windows = Math.floor(ids.length / ctx);
  if (opts.maxWindows !== undefined) windows = Math.min(windows, opts.maxWindows);
  if (windows < 1) throw new PerplexityError(`the text has ${ids.length} tokens, fewer than one window of ${ctx}`);
  const first = protocol === 'llamacpp' ? Math.floor(ctx / 2) : 0;

  const t0 = performance.now();
  let sum = 0;
  let sumSquares = 0;
  let count = 0;
  for (let w = 0; w < windows; w++) {
    const window = ids.slice(w * ctx, (w + 1) * ctx);
    if (protocol === 'llamacpp') window[0] = bosId;
    const inputs = window.slice(0, ctx - 1);
    const targets = window.slice(1).map((t, j) => (j < first ? -1 : t));
    executor.reset();
    const nll = await executor.nll(inputs, targets);
    for (let j = first; j < ctx - 1; j++) {
      sum += nll[j]!;
      sumSquares += nll[j]! * nll[j]!;
    }
    count += ctx - 1 - first;
    opts.onProgress?.({ window: w + 1, windows, tokens: count, ppl: Math.exp(sum / count) });
  }
  const mean = sum / count;
  // Tokens are treated as independent draws (they are not quite: neighbours share context), so the
  // ± is a lower bound on run-to-run spread over other texts, the same convention as llama-perplexity.
  const variance = Math.max(0, sumSquares / count - mean * mean);
  const nllStdErr = count > 1 ? Math.sqrt(variance / (count - 1)) : 0;
  return {
    protocol,
    ctx,
    textTokens: ids.length,
    windows,
    tokens: count,
    nll: mean,
    nllStdErr,
    ppl: Math.exp(mean),
    pplStdErr: Math.exp(mean) * nllStdErr,
    seconds: (performance.now() - t0) / 1000,
  };
}
