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

/** Warm-up, untimed wall-clock repeats of prefill and decode, then `repeats` per-op timed passes of both (medians). */
export async function profileExecutor(ex: Executor, timer: GpuTimer | undefined, o: ProfileOptions): Promise<ExecutorProfile> {
  const c = ex.config;
  if (o.prefill + o.decode > ex.maxSeqLen) throw new RangeError(`prefill ${o.prefill} + decode ${o.decode} tokens exceed the KV cache (${ex.maxSeqLen})`);
  const prompt = syntheticPrompt(o.prefill, c.bosId, c.vocabSize);
  const prefillMs: number[] = [], decodeMs: number[] = [];
  for (let r = -1; r < o.repeats; r++) { // r = -1: warm-up (pipelines, bind groups)
    ex.reset();
    let t0 = performance.now();
    await ex.forward(prompt);
    await ex.logits();
    const pw = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < o.decode; i++) {
      await ex.forward([prompt[(i + 1) % prompt.length]!]);
      await ex.logits();
    }
    const dw = (performance.now() - t0) / o.decode;
    if (r < 0) continue;
    prefillMs.push(pw);
    decodeMs.push(dw);
  }
  let ops: OpTimes | null = null;
  if (timer) {
    const runs: OpTimes[] = [];
    for (let r = 0; r < o.repeats; r++) runs.push(await opTimes(ex, timer, prompt, o.decode));
    ops = medianOpTimes(runs);
  }
  const p = median(prefillMs), d = median(decodeMs);
  return {
    prefill: { tokens: o.prefill, wallMs: p, tokPerSec: (o.prefill * 1e3) / p },
    decode: { tokens: o.decode, wallMs: d, tokPerSec: 1e3 / d },
    ops,
  };
}
