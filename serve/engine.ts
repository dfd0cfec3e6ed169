// What the HTTP layer and the terminal chat need from a model: tokenize, then generate one sequence
// token by token. serve/executor-engine.ts implements it on the runtime's Executor; nothing in
// serve/ above this file knows about the GPU.
import type { TextTokenizer } from '../core/model.js';

export interface TokenLogprob {
  id: number;
  /** Natural log of the token's probability under the model's raw distribution (temperature 1, no top-p). */
  logprob: number;
}

export interface SampledToken extends TokenLogprob {
  /** The most likely alternatives, best first; empty unless `GenerateParams.topLogprobs` > 0. */
  top: TokenLogprob[];
}

export interface GenerateParams {
  /** Tokens to sample at most; the engine also stops when the context is full. */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** Keep the k most likely tokens (0 / absent = off). */
  topK?: number;
  /** Drop tokens less likely than minP × the most likely one (0 / absent = off). */
  minP?: number;
  /** llama.cpp's repeat penalty over the last repeatLastN tokens (1 / absent = off). */
  repeatPenalty?: number;
  repeatLastN?: number;
  /** OpenAI's presence and frequency penalties over the generated tokens (0 / absent = off). */
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  /** Compute each sampled token's logprob (and `topLogprobs` alternatives). */
  logprobs: boolean;
  topLogprobs: number;
  /** Sampling one of these ends generation with 'stop'; it is not passed to `onToken`. */
  stopTokens: readonly number[];
  signal?: AbortSignal;
  /** The engine's deviceEpoch when the request was accepted (engines that survive device loss). */
  deviceEpoch?: number;
}

/** Why a generation ended: an end token, a length limit, or `onToken`/the signal asked it to stop. */
export type EngineFinish = 'stop' | 'length' | 'aborted';

export interface GenerationResult {
  finish: EngineFinish;
  promptTokens: number;
  /** Tokens sampled, including a final stop token. */
  sampledTokens: number;
  /** Of the prompt, tokens that were already in the KV cache from the previous request. */
  reusedPromptTokens: number;
}

/** One step of a batching engine (serve/batching-engine.ts), for /metrics. */
export interface StepStats {
  /** Rows in the step's forward: decode rows plus prompt rows. */
  rows: number;
  decodeRows: number;
  prefillRows: number;
  /** Slots holding a sequence during the step, and slots in all. */
  busySlots: number;
  slots: number;
}

export interface GenerationEngine {
  /** Served model id (what `/v1/models` lists). */
  readonly modelId: string;
  /** Longest prompt + completion, in tokens. */
  readonly contextLength: number;
  readonly tokenizer: TextTokenizer;
  /** Engines that re-create their GPU device after a loss count the losses here (serve/recovering-engine.ts). */
  readonly deviceEpoch?: number;
  /** generate() calls that may run at once (default 1: callers serialize through serve/scheduler.ts). */
  readonly parallel?: number;
  /** Sees every step of an engine that batches sequences (absent on engines that do not). */
  observeSteps?(fn: (s: StepStats) => void): void;
  /**
   * Prefill `prompt`, then sample until a stop token, `maxTokens`, the context end, the signal, or
   * `onToken` returning false. At most `parallel` generations at a time: callers queue (serve/scheduler.ts).
   */
  generate(prompt: readonly number[], params: GenerateParams, onToken: (token: SampledToken) => boolean | void): Promise<GenerationResult>;
  close(): void;
}
