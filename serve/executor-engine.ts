// The GenerationEngine on the runtime's Executor: prefill, then one forward per token with the token
// chosen on the GPU in the same submit (a token id read back), or, when the request wants logprobs,
// the logits read back and sampled on the host (the same tokens for a seed either way). Keeps what is
// in the KV cache between requests, so a prompt that extends the previous conversation (the terminal
// chat, a multi-turn client) only prefills its new tokens.
import type { TextTokenizer } from '../core/model.js';
import type { Executor } from '../runtime/executor.js';
import { Sampler, type SampleDraw } from '../runtime/sampler.js';
import type { GenerateParams, GenerationEngine, GenerationResult, SampledToken, TokenLogprob } from './engine.js';

/** What the engine uses of the Executor (so serve/ needs nothing else from it). */
export type StepExecutor = Pick<Executor, 'reset' | 'rewind' | 'position' | 'forward' | 'forwardSample' | 'sample' | 'logits' | 'destroy' | 'maxSeqLen'>;

export interface ExecutorEngineOptions {
  modelId: string;
  /** Defaults to the executor's KV-cache length. */
  contextLength?: number;
}

/** log-softmax of `logits` at `id`, plus the `k` most likely ids (best first), in one pass over the vocabulary. */
export function logprobsOf(logits: Float32Array, id: number, k: number): { logprob: number; top: TokenLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const top: TokenLogprob[] = [];
  if (k > 0) {
    // Insertion into a short sorted list: k ≤ 20, so this stays O(vocab · small).
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i]!;
      if (top.length === k && v <= top[k - 1]!.logprob) continue;
      let at = top.length;
      while (at > 0 && top[at - 1]!.logprob < v) at--;
      top.splice(at, 0, { id: i, logprob: v });
      if (top.length > k) top.pop();
    }
    for (const t of top) t.logprob -= logZ;
  }
  return { logprob: logits[id]! - logZ, top };
}

/** The request's sampler; top_p 0 (or temperature 0) keeps only the most likely token: greedy. */
export function samplerFor(p: GenerateParams): Sampler {
  const greedy = p.temperature === 0 || p.topP === 0;
  return new Sampler({
    temperature: greedy ? 0 : p.temperature, topP: greedy ? 1 : p.topP, topK: p.topK ?? 0, minP: p.minP ?? 0, seed: p.seed,
    repeatPenalty: p.repeatPenalty ?? 1, repeatLastN: p.repeatLastN, presencePenalty: p.presencePenalty ?? 0, frequencyPenalty: p.frequencyPenalty ?? 0,
  });
}

export class ExecutorEngine implements GenerationEngine {
  readonly modelId: string;
  readonly contextLength: number;
  /** Token ids whose keys/values are in the cache, in order (a prefix of the last sequence). */
  private cached: number[] = [];
  private busy = false;

  constructor(
    private readonly executor: StepExecutor,
    readonly tokenizer: TextTokenizer,
    options: ExecutorEngineOptions,
  ) {
    this.modelId = options.modelId;
    this.contextLength = Math.min(options.contextLength ?? executor.maxSeqLen, executor.maxSeqLen);
  }

  async generate(prompt: readonly number[], params: GenerateParams, onToken: (token: SampledToken) => boolean | void): Promise<GenerationResult> {
    // Callers serialize (serve/scheduler.ts); two interleaved generations would corrupt the KV cache.
    if (this.busy) throw new Error('ExecutorEngine.generate: a generation is already running on this executor');
    this.busy = true;
    try {
      return await this.run(prompt, params, onToken);
    } finally {
      this.busy = false;
    }
  }

  private async run(prompt: readonly number[], params: GenerateParams, onToken: (token: SampledToken) => boolean | void): Promise<GenerationResult> {
    if (prompt.length === 0) throw new RangeError('generate: empty prompt');
    if (prompt.length >= this.contextLength) throw new RangeError(`generate: prompt of ${prompt.length} tokens leaves no room in a ${this.contextLength}-token context`);
    const reused = await this.prefill(prompt);
    const sampler = samplerFor(params);
    sampler.observePrompt(prompt);
    // Logprobs, min-p and penalties need the logits on the host; otherwise only the chosen id comes back.
    const onGpu = !params.logprobs && !sampler.hostOnly;
    const stop = new Set(params.stopTokens);
    const budget = Math.min(params.maxTokens, this.contextLength - prompt.length);
    let sampled = 0;
    let finish: GenerationResult['finish'] = 'length';
    /** The token the last forward chose on the GPU (absent after the prefill and on the host path). */
    let next: number | undefined;
    while (sampled < budget) {
      if (params.signal?.aborted) {
        finish = 'aborted';
        break;
      }
      let logits: Float32Array | undefined;
      let id: number;
      if (onGpu) {
        id = next ?? (await this.executor.sample(sampler.nextDraw()));
      } else {
        logits = await this.executor.logits();
        id = sampler.sample(logits);
      }
      sampled++;
      if (stop.has(id)) {
        finish = 'stop';
        break;
      }
      const lp = logits ? logprobsOf(logits, id, params.topLogprobs) : { logprob: NaN, top: [] };
      if (onToken({ id, logprob: lp.logprob, top: lp.top }) === false || params.signal?.aborted) {
        finish = 'aborted';
        break;
      }
      // The last token of a length-limited answer needs no forward: nobody reads its logits.
      if (sampled === budget) break;
      next = await this.forward([id], onGpu ? sampler.nextDraw() : undefined);
    }
    return { finish, promptTokens: prompt.length, sampledTokens: sampled, reusedPromptTokens: reused };
  }

  close(): void {
    this.executor.destroy();
  }

  /** Brings the cache to `prompt` (reusing the common prefix) with the last token's logits ready. */
  private async prefill(prompt: readonly number[]): Promise<number> {
    let common = 0;
    const limit = Math.min(this.cached.length, prompt.length - 1); // at least one token must run for fresh logits
    while (common < limit && this.cached[common] === prompt[common]) common++;
    if (common === 0) {
      this.executor.reset();
      this.cached = [];
    } else {
      this.executor.rewind(common);
      this.cached.length = common;
    }
    await this.forward(prompt.slice(common));
    return common;
  }

  /** Forwards `tokens`; with `draw`, returns the next token chosen on the GPU in the same submit. */
  private async forward(tokens: readonly number[], draw?: SampleDraw): Promise<number | undefined> {
    let id: number | undefined;
    try {
      if (draw) id = await this.executor.forwardSample(tokens, draw);
      else await this.executor.forward(tokens);
    } catch (err) {
      // The cache state is unknown after a failed forward: start clean next time.
      this.executor.reset();
      this.cached = [];
      throw err;
    }
    this.cached.push(...tokens);
    return id;
  }
}
