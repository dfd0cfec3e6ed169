// Latency profile of an executor: per-op GPU time of a prefill and of decode steps (timestamp queries,
// every op in its own timed pass), and wall-clock tokens/s of the same phases run untimed (per-op
// passes slow the forward down, so throughput comes from separate untimed runs). Without
// timestamp-query only the wall times exist. Portable (no Node APIs); bench/forward.ts uses opTimes.
import type { Executor } from '../runtime/executor.js';
import type { GpuTimer } from '../runtime/profiler.js';

export interface OpTimes {
  /** GPU ms per op label for one prefill of the prompt. */
  prefill: Record<string, number>;
  prefillTotal: number;
  /** GPU ms per op label per decode step (mean over the steps). */
  decode: Record<string, number>;
  decodeTotal: number;
  steps: number;
}

/** Per-op GPU time: one prefill of `prompt`, then `steps` single-token decode steps after it. */
export async function opTimes(ex: Executor, timer: GpuTimer, prompt: number[], steps: number): Promise<OpTimes> {
  ex.setTimer(timer, { perOp: true });
  try {
    await timer.read();
    ex.reset();
    await ex.forward(prompt);
    await ex.logits();
    const p = await timer.read();
    const decode: Record<string, number> = {};
    let decodeTotal = 0;
    for (let i = 0; i < steps; i++) {
      await ex.forward([prompt[(i + 1) % prompt.length]!]);
      await ex.logits();
      // Read every step: a step has ~15 passes per layer, more than the timer holds over many steps.
      const d = await timer.read();
      decodeTotal += d.seconds;
      for (const [label, s] of d.byLabel) decode[label] = (decode[label] ?? 0) + s;
    }
    const perStepMs = (x: number) => (x * 1e3) / steps;
    return {
      prefill: Object.fromEntries([...p.byLabel].map(([l, s]) => [l, s * 1e3])),
      prefillTotal: p.seconds * 1e3,
      decode: Object.fromEntries(Object.entries(decode).map(([l, s]) => [l, perStepMs(s)])),
      decodeTotal: perStepMs(decodeTotal),
      steps,
    };
  } finally {
    ex.setTimer(undefined);
  }
}

export interface PhaseThroughput {
  tokens: number;
  /** Median wall ms of the phase (prefill: forward + logits; decode: per token). */
  wallMs: number;
  tokPerSec: number;
}

export interface ExecutorProfile {
  prefill: PhaseThroughput;
  decode: PhaseThroughput;
  /** Per-op GPU times, or null without timestamp-query. */
  ops: OpTimes | null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Per-label medians over repeated timings (timestamps on shared CPU adapters are noisy). */
export function medianOpTimes(runs: OpTimes[]): OpTimes {
  const per = (pick: (t: OpTimes) => Record<string, number>) => {
    const labels = new Set(runs.flatMap((t) => Object.keys(pick(t))));
    return Object.fromEntries([...labels].map((l) => [l, median(runs.map((t) => pick(t)[l] ?? 0))]));
  };
  return {
    prefill: per((t) => t.prefill), prefillTotal: median(runs.map((t) => t.prefillTotal)),
    decode: per((t) => t.decode), decodeTotal: median(runs.map((t) => t.decodeTotal)), steps: runs[0]!.steps,
  };
}

/** A deterministic prompt of `n` tokens (BOS first), as bench/forward.ts uses. */
export function syntheticPrompt(n: number, bosId: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? bosId : 3 + ((i * 7919) % (vocab - 3))));
}

export interface ProfileOptions {
  prefill: number;
  decode: number;
  repeats: number;
}

/** One measurement round: an untimed prefill + decode (wall ms), then one per-op timed pass of both. */
export interface ProfileRound {
  prefillMs: number;
  decodeMsPerToken: number;
  ops: OpTimes | null;
}

export async function profileRound(ex: Executor, timer: GpuTimer | undefined, prompt: number[], decode: number): Promise<ProfileRound> {
  ex.reset();
  let t0 = performance.now();
  await ex.forward(prompt);
  await ex.logits();
  const prefillMs = performance.now() - t0;
  t0 = performance.now();
  for (let i = 0; i < decode; i++) {
    await ex.forward([prompt[(i + 1) % prompt.length]!]);
    await ex.logits();
  }
  const decodeMsPerToken = (performance.now() - t0) / decode;
  return { prefillMs, decodeMsPerToken, ops: timer ? await opTimes(ex, timer, prompt, decode) : null };
}

/** Medians over rounds. */
export function summarizeRounds(rounds: ProfileRound[], o: ProfileOptions): ExecutorProfile {
  const p = median(rounds.map((r) => r.prefillMs)), d = median(rounds.map((r) => r.decodeMsPerToken));
  const ops = rounds.every((r) => r.ops) ? medianOpTimes(rounds.map((r) => r.ops!)) : null;
  return { prefill: { tokens: o.prefill, wallMs: p, tokPerSec: (o.prefill * 1e3) / p }, decode: { tokens: o.decode, wallMs: d, tokPerSec: 1e3 / d }, ops };
}

/**
 * Profiles several executors of one model with their rounds interleaved (A B C A B C …, after one
 * warm-up round each), so load that drifts during the run hits every variant alike; medians per variant.
 */
export async function profileExecutors(exs: Executor[], timer: GpuTimer | undefined, o: ProfileOptions): Promise<ExecutorProfile[]> {
  for (const ex of exs) if (o.prefill + o.decode > ex.maxSeqLen) throw new RangeError(`prefill ${o.prefill} + decode ${o.decode} tokens exceed the KV cache (${ex.maxSeqLen})`);
  const c = exs[0]!.config;
  const prompt = syntheticPrompt(o.prefill, c.bosId, c.vocabSize);
  const rounds: ProfileRound[][] = exs.map(() => []);
  for (const ex of exs) await profileRound(ex, undefined, prompt, o.decode); // warm-up: pipelines, bind groups
  for (let r = 0; r < o.repeats; r++) {
    for (const [i, ex] of exs.entries()) rounds[i]!.push(await profileRound(ex, timer, prompt, o.decode));
  }
  return rounds.map((rs) => summarizeRounds(rs, o));
}

/** One executor: warm-up, then `repeats` rounds (medians). */
export async function profileExecutor(ex: Executor, timer: GpuTimer | undefined, o: ProfileOptions): Promise<ExecutorProfile> {
  return (await profileExecutors([ex], timer, o))[0]!;
}
