// One generation request end to end, below the HTTP formatting: wait for the executor in the FIFO
// queue, run the engine, turn tokens into stop-aware text chunks, record metrics.
import type { GenerateParams, GenerationEngine, SampledToken } from './engine.js';
import { ApiError, RequestAborted } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { FifoScheduler } from './scheduler.js';
import { CompletionText, type TextChunk } from './text-stream.js';

/** Tokens of context decoded before a logprob alternative. */
const ALT_CONTEXT = 4;

export type FinishReason = 'stop' | 'length';

/** One reported token: its text, logprob and alternatives (already decoded). */
export interface LogprobEntry {
  token: string;
  logprob: number;
  /** Character offset of the token's text in the completion. */
  offset: number;
  top: Array<{ token: string; logprob: number }>;
}

export interface GenerationJob {
  prompt: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  /** top_k, min_p and the penalties, as GenerateParams names them (absent = off). */
  extra?: Pick<GenerateParams, 'topK' | 'minP' | 'repeatPenalty' | 'repeatLastN' | 'presencePenalty' | 'frequencyPenalty'>;
  seed?: number;
  stop: readonly string[];
  stopTokens: readonly number[];
  logprobs: boolean;
  topLogprobs: number;
  /** Drop leading whitespace of the answer (chat). */
  trimStart?: boolean;
  /** Aborted on client disconnect or timeout; the reason says which. */
  signal: AbortSignal;
  /** performance.now() when the request arrived, for time-to-first-token. */
  arrivedAt: number;
  /** engine.deviceEpoch when the request was accepted. */
  deviceEpoch?: number;
  /** Called with each piece of text that is safe to send, and the logprobs of the tokens it covers. */
  onChunk?: (text: string, logprobs: LogprobEntry[]) => void;
}

export interface GenerationOutcome {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  logprobs: LogprobEntry[];
}

export interface GenerationContext {
  engine: GenerationEngine;
  scheduler: FifoScheduler;
  metrics: ServerMetrics;
}

export function timeoutError(ms: number): ApiError {
  return new ApiError(504, `generation did not finish within the server's request timeout (${ms} ms)`, 'timeout_error', 'request_timeout');
}

/**
 * Queues and runs one generation. Throws ApiError 429 synchronously-at-submit when the queue is full,
 * and rejects with the abort reason (a RequestAborted) when the signal fires.
 */
export function runGeneration(ctx: GenerationContext, job: GenerationJob): Promise<GenerationOutcome> {
  const { engine, metrics } = ctx;
  const tokenizer = engine.tokenizer;
  return ctx.scheduler.submit(async () => {
    metrics.queueTime.observe((performance.now() - job.arrivedAt) / 1000);
    const text = new CompletionText(tokenizer, job.prompt, job.stop, { trimStart: job.trimStart });
    const sampled: SampledToken[] = [];
    const reported: LogprobEntry[] = [];
    let lastTokenAt = 0;

    // An alternative's text as it would read in place of token i: decoded after the tokens before it,
    // because SentencePiece pieces decoded alone lose their leading space.
    const alternativeText = (i: number, id: number): string => {
      const fromPrompt = i >= ALT_CONTEXT ? [] : job.prompt.slice(Math.max(0, job.prompt.length - (ALT_CONTEXT - i)));
      const before = [...fromPrompt, ...sampled.slice(Math.max(0, i - ALT_CONTEXT), i).map((t) => t.id)];
      const base = tokenizer.decode(before);
      const withAlt = tokenizer.decode([...before, id]);
      return withAlt.startsWith(base) ? withAlt.slice(base.length) : tokenizer.decode([id]);
    };

    const entries = (tokens: TextChunk['tokens']): LogprobEntry[] => {
      if (!job.logprobs) return [];
      const out = tokens.map(({ index, text: tokenText }) => {
        const t = sampled[index]!;
        return {
          token: tokenText,
          logprob: t.logprob,
          offset: text.offsets[index]!,
          top: t.top.map((a) => ({ token: a.id === t.id ? tokenText : alternativeText(index, a.id), logprob: a.logprob })),
        };
      });
      reported.push(...out);
      return out;
    };

    const emit = (final: boolean) => {
      const chunk = final ? text.finish() : text.take();
      const lp = entries(chunk.tokens);
      if (job.onChunk && (chunk.text.length > 0 || lp.length > 0)) job.onChunk(chunk.text, lp);
    };

    const result = await engine.generate(
      job.prompt,
      {
        maxTokens: job.maxTokens,
        temperature: job.temperature,
        topP: job.topP,
        ...job.extra,
        seed: job.seed,
        logprobs: job.logprobs,
        topLogprobs: job.topLogprobs,
        stopTokens: job.stopTokens,
        signal: job.signal,
        deviceEpoch: job.deviceEpoch,
      },
      (token) => {
        const now = performance.now();
        if (sampled.length === 0) metrics.timeToFirstToken.observe((now - job.arrivedAt) / 1000);
        else metrics.interTokenLatency.observe((now - lastTokenAt) / 1000);
        lastTokenAt = now;
        metrics.recordToken();
        sampled.push(token);
        const stopped = text.push(token.id);
        emit(false);
        return !stopped;
      },
    );
    // A shutdown past its grace period ends the answer where it got to, like a length limit.
    const shutdown = job.signal.aborted && job.signal.reason instanceof RequestAborted && job.signal.reason.why === 'shutdown';
    if (job.signal.aborted && !shutdown) throw job.signal.reason;
    emit(true);
    const finishReason: FinishReason = result.finish === 'length' || shutdown ? 'length' : 'stop';
    return {
      text: text.value,
      finishReason,
      promptTokens: result.promptTokens,
      completionTokens: result.sampledTokens,
      logprobs: reported,
    };
  }, job.signal);
}
