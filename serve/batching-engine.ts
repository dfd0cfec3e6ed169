// Continuous batching: the GenerationEngine for `aser serve --parallel N`. N sequences run at once,
// each in its own KV-cache slot of the executor (ExecutorOptions.slots). One step is one
// Executor.forwardBatch over every active sequence's rows: a decode row for each sequence that has a
// token to feed, plus chunks of the prompts still being read (chunked prefill: at most `prefillChunk`
// prompt rows per step, oldest sequence first, so a long prompt delays the others' next tokens by one
// bounded step instead of a whole prefill). Sequences join and leave between steps; a cancelled one
// gives its slot back at the next step boundary and its caller hears at once. Tokens are chosen on the
// host from the rows' logits (runtime/sampler.ts: greedy, temperature/top-k/top-p/min-p, penalties).
// A slot keeps what its last sequence left in the cache; a new prompt goes to the free slot sharing
// the longest prefix with it (multi-turn chat prefills only the new turn).
import type { TextTokenizer } from '../core/model.js';
import type { Executor } from '../runtime/executor.js';
import type { Sampler } from '../runtime/sampler.js';
import type { GenerateParams, GenerationEngine, GenerationResult, SampledToken, StepStats } from './engine.js';
import { logprobsOf, samplerFor } from './executor-engine.js';

/** What the engine uses of the Executor. */
export type BatchExecutor = Pick<Executor, 'forwardBatch' | 'slots' | 'maxSeqLen' | 'maxBatchTokens' | 'destroy'>;

export interface BatchingEngineOptions {
  modelId: string;
  /** Longest prompt + completion (default and cap: the executor's slot length, maxSeqLen). */
  contextLength?: number;
  /** Prompt rows per step over all prefilling sequences (default min(64, maxBatchTokens − slots), at least 1). */
  prefillChunk?: number;
}

interface Sequence {
  /** Prompt, then the sampled tokens: tokens[0, fed) are in the slot's cache. */
  tokens: number[];
  promptLength: number;
  fed: number;
  reused: number;
  slot: number;
  sampled: number;
  budget: number;
  stop: Set<number>;
  sampler: Sampler;
  params: GenerateParams;
  onToken: (token: SampledToken) => boolean | void;
  done(result: GenerationResult | Error): void;
  finished: boolean;
}

interface Admission {
  prompt: readonly number[];
  params: GenerateParams;
  onToken: (token: SampledToken) => boolean | void;
  resolve(r: GenerationResult): void;
  reject(e: unknown): void;
}

export class BatchingEngine implements GenerationEngine {
  readonly modelId: string;
  readonly contextLength: number;
  readonly parallel: number;
  private readonly prefillChunk: number;
  /** Per slot, the tokens whose K/V its cache region holds: tokens[0, length) (for prefix reuse). */
  private readonly cachedBySlot: Array<{ tokens: readonly number[]; length: number }>;
  private readonly freeSlots: number[];
  /** Active sequences in admission order (prefill is served oldest first). */
  private readonly active: Sequence[] = [];
  private readonly waiting: Admission[] = [];
  private looping = false;
  private closed = false;
  private observer?: (s: StepStats) => void;

  constructor(
    private readonly executor: BatchExecutor,
    readonly tokenizer: TextTokenizer,
    options: BatchingEngineOptions,
  ) {
    this.modelId = options.modelId;
    this.contextLength = Math.min(options.contextLength ?? executor.maxSeqLen, executor.maxSeqLen);
    this.parallel = executor.slots;
    this.prefillChunk = Math.max(1, options.prefillChunk ?? Math.min(64, executor.maxBatchTokens - executor.slots));
    if (executor.maxBatchTokens <= executor.slots) throw new RangeError(`BatchingEngine: maxBatchTokens ${executor.maxBatchTokens} must exceed the ${executor.slots} slots (a step holds a decode row per slot and prompt rows)`);
    this.cachedBySlot = Array.from({ length: executor.slots }, () => ({ tokens: [], length: 0 }));
    this.freeSlots = Array.from({ length: executor.slots }, (_, i) => i);
  }

  observeSteps(fn: (s: StepStats) => void): void {
    this.observer = fn;
  }

  /** Sequences holding a slot now. */
  get busySlots(): number {
    return this.active.length;
  }

  generate(prompt: readonly number[], params: GenerateParams, onToken: (token: SampledToken) => boolean | void): Promise<GenerationResult> {
    if (this.closed) return Promise.reject(new Error('BatchingEngine: closed'));
    if (prompt.length === 0) return Promise.reject(new RangeError('generate: empty prompt'));
    if (prompt.length >= this.contextLength) return Promise.reject(new RangeError(`generate: prompt of ${prompt.length} tokens leaves no room in a ${this.contextLength}-token context`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ prompt, params, onToken, resolve, reject });
      this.kick();
    });
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new Error('BatchingEngine: closed'));
    for (const s of this.active) this.finish(s, new Error('BatchingEngine: closed'));
    this.executor.destroy();
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    // The loop runs detached; each sequence hears through its own promise.
    void this.loop().finally(() => {
      this.looping = false;
      if (!this.closed && (this.waiting.length || this.active.length)) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      this.admit();
      this.dropCancelled();
      if (this.active.length === 0) return;
      try {
        await this.step();
      } catch (err) {
        // A failed forward leaves every slot's cache unknown: end all sequences with the error.
        for (const s of [...this.active]) this.finish(s, err as Error);
        for (const c of this.cachedBySlot) c.length = 0;
      }
    }
  }

  /** Moves waiting requests into free slots, each to the free slot sharing the longest prefix. */
  private admit(): void {
    while (this.waiting.length && this.freeSlots.length) {
      const w = this.waiting.shift()!;
      if (w.params.signal?.aborted) {
        w.resolve({ finish: 'aborted', promptTokens: w.prompt.length, sampledTokens: 0, reusedPromptTokens: 0 });
        continue;
      }
      let best = 0;
      let bestCommon = -1;
      this.freeSlots.forEach((slot, i) => {
        const cached = this.cachedBySlot[slot]!;
        const limit = Math.min(cached.length, w.prompt.length - 1); // at least one prompt row must run for fresh logits
        let common = 0;
        while (common < limit && cached.tokens[common] === w.prompt[common]) common++;
        if (common > bestCommon) {
          bestCommon = common;
          best = i;
        }
      });
      const slot = this.freeSlots.splice(best, 1)[0]!;
      let sampler: Sampler;
      try {
        sampler = samplerFor(w.params);
      } catch (err) {
        this.freeSlots.push(slot);
        w.reject(err);
        continue;
      }
      sampler.observePrompt(w.prompt);
      const seq: Sequence = {
        tokens: [...w.prompt], promptLength: w.prompt.length, fed: bestCommon, reused: bestCommon, slot, sampled: 0,
        budget: Math.min(w.params.maxTokens, this.contextLength - w.prompt.length), stop: new Set(w.params.stopTokens), sampler,
        params: w.params, onToken: w.onToken, finished: false,
        done: (r) => (r instanceof Error ? w.reject(r) : w.resolve(r)),
      };
      // The new sequence's tokens share the region's first bestCommon positions; the rest is overwritten.
      this.cachedBySlot[slot] = { tokens: seq.tokens, length: bestCommon };
      this.active.push(seq);
      // Cancellation answers at once; the slot comes back at the next step boundary (dropCancelled).
      w.params.signal?.addEventListener('abort', () => this.finish(seq, 'aborted'), { once: true });
    }
  }

  private dropCancelled(): void {
    for (const s of [...this.active]) if (s.finished || s.params.signal?.aborted) this.release(s, 'aborted');
  }

  /** One forwardBatch over the active sequences' rows, then a token for each sequence whose logits came back. */
  private async step(): Promise<void> {
    const ids: number[] = [];
    const slots: number[] = [];
    const positions: number[] = [];
    const tail: Array<{ id: number; slot: number; pos: number; seq: Sequence }> = [];
    let prefillBudget = Math.min(this.prefillChunk, this.executor.maxBatchTokens - this.active.length);
    let prefillRows = 0;
    let decodeRows = 0;
    const taken = new Map<Sequence, number>();
    for (const s of this.active) {
      const pending = s.tokens.length - s.fed;
      // Decoding (one token to feed): always in the step. Prefilling: what the budget leaves.
      const n = pending === 1 ? 1 : Math.min(pending, prefillBudget);
      if (n === 0) continue;
      if (pending > 1) {
        prefillBudget -= n;
        prefillRows += n;
      } else decodeRows++;
      taken.set(s, n);
      for (let k = 0; k < n; k++) {
        const pos = s.fed + k;
        if (k === pending - 1) tail.push({ id: s.tokens[pos]!, slot: s.slot, pos, seq: s });
        else {
          ids.push(s.tokens[pos]!);
          slots.push(s.slot);
          positions.push(pos);
        }
      }
    }
    // Rows whose logits are wanted go last (forwardBatch reads back the tail).
    for (const r of tail) {
      ids.push(r.id);
      slots.push(r.slot);
      positions.push(r.pos);
    }
    const logits = await this.executor.forwardBatch(ids, slots, positions, tail.length);
    // s.tokens only grows at its end, so the region's record stays a view of it.
    for (const [s, n] of taken) this.cachedBySlot[s.slot]!.length = s.fed += n;
    this.observer?.({ rows: ids.length, decodeRows, prefillRows, busySlots: this.active.length, slots: this.parallel });
    const vocab = logits.length / Math.max(1, tail.length);
    tail.forEach((r, j) => {
      const s = r.seq;
      if (s.finished) return;
      this.emit(s, logits.subarray(j * vocab, (j + 1) * vocab));
    });
  }

  /** Samples the next token of `s` from its logits row and reports it; ends `s` when it is done. */
  private emit(s: Sequence, row: Float32Array): void {
    let id: number;
    try {
      id = s.sampler.sample(row);
    } catch (err) {
      this.release(s, err as Error);
      return;
    }
    s.sampled++;
    if (s.stop.has(id)) return this.release(s, 'stop');
    const lp = s.params.logprobs ? logprobsOf(row, id, s.params.topLogprobs) : { logprob: NaN, top: [] };
    if (s.onToken({ id, logprob: lp.logprob, top: lp.top }) === false || s.params.signal?.aborted) return this.release(s, 'aborted');
    if (s.sampled >= s.budget) return this.release(s, 'length');
    s.tokens.push(id);
  }

  /** Ends `s` (its caller hears now) without touching its slot, which the loop frees between steps. */
  private finish(s: Sequence, how: GenerationResult['finish'] | Error): void {
    if (s.finished) return;
    s.finished = true;
    s.done(how instanceof Error ? how : { finish: how, promptTokens: s.promptLength, sampledTokens: s.sampled, reusedPromptTokens: s.reused });
  }

  /** Ends `s` and gives its slot back (only between steps, when no forward uses it). */
  private release(s: Sequence, how: GenerationResult['finish'] | Error): void {
    this.finish(s, how);
    const at = this.active.indexOf(s);
    if (at < 0) return;
    this.active.splice(at, 1);
    this.freeSlots.push(s.slot);
  }
}
