// Autoregressive generation over an Executor: prefill the prompt, then sample one token per forward,
// streaming ids to the caller. Stops on a stop token, after maxTokens, at the end of the KV cache, or
// when the caller aborts. Tokens are chosen on the GPU by default (each step reads back a token id,
// not a logits row); the host sampler picks the same tokens from the same seed (runtime/sampler.ts).
import { type Executor } from './executor.js';
import { Sampler, type SamplerOptions } from './sampler.js';
import { ContextOverflowError, ExecutorError } from './errors.js';

export interface GenerateOptions extends SamplerOptions {
  /** Most tokens to generate (stop tokens excluded). */
  maxTokens: number;
  /** Ids that end generation (not emitted); default: the model's EOS. */
  stopTokens?: readonly number[];
  /** Called with each generated id as soon as it is chosen; may be async (awaited). Returning false ends generation ('stop'). */
  onToken?: (id: number, index: number) => void | boolean | Promise<void | boolean>;
  signal?: AbortSignal;
  /** Continue after what the executor already holds instead of starting from reset(). */
  keepCache?: boolean;
  /** Where the next token is chosen: 'gpu' (default; in the forward's submit) or 'host' (logits read back; always with min-p or penalties). */
  sampling?: SamplingSite;
}

export type SamplingSite = 'gpu' | 'host';
export const SAMPLING_SITES: readonly SamplingSite[] = ['gpu', 'host'];

export type StopReason = 'stop' | 'max_tokens' | 'context' | 'aborted';

export interface GenerateResult {
  /** Generated ids, without the stop token. The KV cache holds the prompt and all of them but the last. */
  tokens: number[];
  stopReason: StopReason;
  /** The sampler's seed (report it to reproduce a run). */
  seed: number;
  promptTokens: number;
  prefillSeconds: number;
  /** Time from the first generated token to the last. */
  decodeSeconds: number;
}

export async function generate(executor: Executor, promptTokens: readonly number[], opts: GenerateOptions): Promise<GenerateResult> {
  if (promptTokens.length === 0) throw new ExecutorError('generate: the prompt is empty (give at least a BOS token)');
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new RangeError(`generate: maxTokens ${opts.maxTokens} must be an integer ≥ 0`);
  if (!opts.keepCache) executor.reset();
  const start = executor.position;
  if (start + promptTokens.length > executor.maxSeqLen) {
    throw new ContextOverflowError(
      `generate: a prompt of ${promptTokens.length} tokens${start ? ` after ${start} cached` : ''} does not fit the context of ${executor.maxSeqLen} tokens`,
    );
  }
  const sampling = opts.sampling ?? 'gpu';
  if (!SAMPLING_SITES.includes(sampling)) throw new RangeError(`generate: sampling '${sampling}' must be one of ${SAMPLING_SITES.join(', ')}`);
  const sampler = new Sampler(opts);
  sampler.observePrompt(promptTokens);
  // The GPU kernel has no min-p or penalties: those sample on the host.
  const site: SamplingSite = sampler.hostOnly ? 'host' : sampling;
  // One draw per forward on both paths, so the n-th token uses the n-th draw of the seed either way.
  const step = async (ids: readonly number[]): Promise<number> => {
    if (site === 'gpu') return executor.forwardSample(ids, sampler.nextDraw());
    await executor.forward(ids);
    return sampler.sample(await executor.logits());
  };
  const stop = new Set(opts.stopTokens ?? [executor.config.eosId]);
  const tokens: number[] = [];
  const t0 = performance.now();
  let id = await step(promptTokens);
  const t1 = performance.now();
  let stopReason: StopReason = 'max_tokens';
  while (tokens.length < opts.maxTokens) {
    if (opts.signal?.aborted) {
      stopReason = 'aborted';
      break;
    }
    if (stop.has(id)) {
      stopReason = 'stop';
      break;
    }
    tokens.push(id);
    if ((await opts.onToken?.(id, tokens.length - 1)) === false) {
      stopReason = 'stop';
      break;
    }
    if (tokens.length === opts.maxTokens) break;
    if (executor.position >= executor.maxSeqLen) {
      stopReason = 'context';
      break;
    }
    id = await step([id]);
  }
  return {
    tokens,
    stopReason,
    seed: sampler.seed,
    promptTokens: promptTokens.length,
    prefillSeconds: (t1 - t0) / 1000,
    decodeSeconds: (performance.now() - t1) / 1000,
  };
}
