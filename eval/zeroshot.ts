// Zero-shot multiple choice by log-likelihood, the lm-evaluation-harness protocol: for each document,
// every choice is a (context, continuation) pair; its score is Σ log p(continuation tokens | context).
//   acc      = the argmax choice is the gold one
//   acc_norm = the same with each score divided by the continuation's length in UTF-8 bytes
//   stderr   = sqrt(p(1 − p)/(n − 1)) (the sample standard error of the mean of 0/1 outcomes)
// LAMBADA is scored as lm-eval's lambada_openai: acc = every continuation token is the greedy one;
// ppl = exp(−mean per-document log-likelihood of the last word).
// Tokenization follows lm-eval's pair encoding: encode(context + continuation) and split it where
// encode(context) ends. The token prefix shared by all choices of a document (the whole context for
// MC tasks, the part before the option for WinoGrande) runs once; each choice then rewinds the KV
// cache to it and runs only its own tokens. Portable: documents come from eval/zeroshot-data.ts.
import type { Executor } from '../runtime/executor.js';
import type { TextTokenizer } from '../core/model.js';
import { logSoftmax } from './kld.js';

export interface ChoiceDoc {
  /** One context per choice (the same string for MC tasks, option-filled prefixes for WinoGrande). */
  contexts: string[];
  /** One continuation per choice (the same suffix for WinoGrande). */
  continuations: string[];
  gold: number;
}

export interface LambadaDoc {
  context: string;
  /** The last word with its leading space. */
  continuation: string;
}

export interface ChoiceScores {
  /** Σ log-likelihood of each choice's continuation. */
  loglik: number[];
  /** UTF-8 bytes of each continuation. */
  bytes: number[];
  gold: number;
}

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;

/** Context and continuation tokens as lm-eval's pair encoding splits them; left-truncated to maxTokens. */
export function encodePair(tok: TextTokenizer, context: string, continuation: string, maxTokens: number): { tokens: number[]; split: number } {
  // Trailing spaces of the context belong to the continuation (lm-eval moves them).
  const trimmed = context.replace(/ +$/, '');
  const cont = context.slice(trimmed.length) + continuation;
  const whole = tok.encode(trimmed + cont, { bos: true });
  const ctx = tok.encode(trimmed, { bos: true });
  let split = Math.min(ctx.length, whole.length - 1);
  let tokens = whole;
  if (tokens.length > maxTokens) {
    const drop = tokens.length - maxTokens;
    tokens = tokens.slice(drop);
    split = Math.max(1, split - drop);
  }
  return { tokens, split };
}

function commonPrefix(seqs: number[][]): number {
  let n = Math.min(...seqs.map((s) => s.length));
  for (let i = 0; i < n; i++) {
    const t = seqs[0]![i]!;
    if (seqs.some((s) => s[i] !== t)) {
      n = i;
      break;
    }
  }
  return n;
}

/** Scores every choice of a document; the shared token prefix is computed once. */
export async function scoreChoices(ex: Executor, tok: TextTokenizer, doc: ChoiceDoc): Promise<ChoiceScores> {
  const pairs = doc.contexts.map((c, i) => encodePair(tok, c, doc.continuations[i]!, ex.maxSeqLen + 1));
  // Inputs are tokens[0..len−1); the prefix must stop before the first scored prediction of any choice.
  const prefix = Math.min(commonPrefix(pairs.map((p) => p.tokens)), ...pairs.map((p) => p.split - 1));
  ex.reset();
  if (prefix > 0) await ex.forward(pairs[0]!.tokens.slice(0, prefix));
  const loglik: number[] = [];
  for (const { tokens, split } of pairs) {
    ex.rewind(prefix);
    const inputs = tokens.slice(prefix, tokens.length - 1);
    // Input position j (absolute prefix + j) predicts tokens[prefix + j + 1]; score from the split on.
    const targets = inputs.map((_, j) => (prefix + j + 1 >= split ? tokens[prefix + j + 1]! : -1));
    const nll = await ex.nll(inputs, targets);
    let sum = 0;
    for (let j = 0; j < nll.length; j++) if (targets[j]! >= 0) sum -= nll[j]!;
    loglik.push(sum);
  }
  return { loglik, bytes: doc.continuations.map(utf8Bytes), gold: doc.gold };
}

/** LAMBADA: log-likelihood of the last word and whether greedy decoding gives exactly it. */
export async function scoreLambada(ex: Executor, tok: TextTokenizer, doc: LambadaDoc): Promise<{ loglik: number; greedy: boolean }> {
  const { tokens, split } = encodePair(tok, doc.context, doc.continuation, ex.maxSeqLen + 1);
  ex.reset();
  if (split > 1) await ex.forward(tokens.slice(0, split - 1));
  const rows = await ex.logitRows(tokens.slice(split - 1, tokens.length - 1));
  const vocab = ex.config.vocabSize;
  let loglik = 0;
  let greedy = true;
  for (let j = 0; split + j < tokens.length; j++) {
    const row = rows.subarray(j * vocab, (j + 1) * vocab);
    const lp = logSoftmax(row);
    const target = tokens[split + j]!;
    loglik += lp[target]!;
    for (let v = 0; v < vocab; v++) if (row[v]! > row[target]!) { greedy = false; break; }
  }
  return { loglik, greedy };
}

export interface TaskMetrics {
  task: string;
  n: number;
  acc: number;
  accStderr: number;
  /** Absent for LAMBADA (one continuation). */
  accNorm?: number;
  accNormStderr?: number;
  /** Expected accuracy of a uniform random guess (mean 1/choices; 0 for LAMBADA). */
  chance: number;
  /** LAMBADA only: exp(−mean log-likelihood of the last word). */
  ppl?: number;
  /** acc > chance + 2·stderr: the model does better than guessing on this task. */
  aboveChance: boolean;
  seconds: number;
}

export function binaryStderr(p: number, n: number): number {
  return n > 1 ? Math.sqrt((p * (1 - p)) / (n - 1)) : 0;
}

const argmax = (xs: number[]) => xs.reduce((best, x, i) => (x > xs[best]! ? i : best), 0);

export function choiceMetrics(task: string, scores: ChoiceScores[], seconds: number): TaskMetrics {
  const n = scores.length;
  let hit = 0, hitNorm = 0, chance = 0;
  for (const s of scores) {
    if (argmax(s.loglik) === s.gold) hit++;
    if (argmax(s.loglik.map((l, i) => l / Math.max(1, s.bytes[i]!))) === s.gold) hitNorm++;
    chance += 1 / s.loglik.length;
  }
  const acc = hit / n, accNorm = hitNorm / n;
  const accStderr = binaryStderr(acc, n);
  chance /= n;
  return { task, n, acc, accStderr, accNorm, accNormStderr: binaryStderr(accNorm, n), chance, aboveChance: acc - chance > 2 * accStderr, seconds };
}

export function lambadaMetrics(task: string, scores: Array<{ loglik: number; greedy: boolean }>, seconds: number): TaskMetrics {
  const n = scores.length;
  const acc = scores.filter((s) => s.greedy).length / n;
  const accStderr = binaryStderr(acc, n);
  const meanLl = scores.reduce((a, s) => a + s.loglik, 0) / n;
  return { task, n, acc, accStderr, chance: 0, ppl: Math.exp(-meanLl), aboveChance: acc > 2 * accStderr, seconds };
}
