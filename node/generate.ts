// `aser generate` as a library call: open the model (node/session.ts), encode the prompt with BOS,
// sample a continuation and detokenize it as it comes.
import { generate, type GenerateResult, type SamplingSite } from '../runtime/generate.js';
import { createDetokenizer } from '../loaders/detokenizer.js';
import type { ExecutorMemory } from '../runtime/executor-options.js';
import { UsageError } from '../core/errors.js';
import { openSession } from './session.js';
import { StopText } from '../loaders/stop-strings.js';

export interface GenerateTextOptions {
  model: string;
  dtype: 'f32' | 'f16';
  tokenizer?: string;
  artifact?: string;
  checkNumerics: boolean;
  prompt: string;
  maxTokens: number;
  temperature: number;
  /** 0 = off. */
  topK?: number;
  topP: number;
  seed?: number;
  /** min-p and the penalties (runtime/sampler.ts; absent = off). */
  minP?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Text that ends generation where it first appears (not printed). */
  stop?: readonly string[];
  /** Where tokens are chosen (default 'gpu'; 'host' reads each logits row back). */
  sampling?: SamplingSite;
  /** The model is open and the prompt fits: generation starts. */
  onStart?: () => void;
  /** Each piece of text as its tokens are sampled (the final flush is `tail` in the result). */
  onText?: (piece: string) => void;
}

export interface GenerateTextResult {
  model: string;
  /** The whole continuation, `tail` included. */
  text: string;
  /** Text held back by the detokenizer until the end (not passed to onText). */
  tail: string;
  result: GenerateResult;
  loadSeconds: number;
  gpuMemory: ExecutorMemory;
}

export async function generateText(o: GenerateTextOptions): Promise<GenerateTextResult> {
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 0) throw new UsageError(`--max-tokens ${o.maxTokens} must be an integer ≥ 0`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new UsageError(`--top-k ${o.topK} must be an integer ≥ 0 (0 = off)`);
  const opened = performance.now();
  const session = await openSession({ model: o.model, dtype: o.dtype, tokenizer: o.tokenizer, artifact: o.artifact, checkNumerics: o.checkNumerics });
  const loadSeconds = (performance.now() - opened) / 1000;
  try {
    const prompt = session.tokenizer.encode(o.prompt, { bos: true });
    const limit = session.executor.maxSeqLen;
    if (prompt.length >= limit) {
      throw new UsageError(`the prompt is ${prompt.length} tokens, the context holds ${limit}`, 'shorten the prompt');
    }
    const detok = createDetokenizer(session.tokenizer, prompt);
    const stops = new StopText(o.stop ?? []);
    let text = '';
    o.onStart?.();
    const result = await generate(session.executor, prompt, {
      maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, sampling: o.sampling,
      minP: o.minP, repeatPenalty: o.repeatPenalty, repeatLastN: o.repeatLastN, presencePenalty: o.presencePenalty, frequencyPenalty: o.frequencyPenalty,
      onToken: (id) => {
        const piece = stops.push(detok.push(id));
        text += piece;
        o.onText?.(piece);
        return !stops.stopped;
      },
    });
    const tail = stops.stopped ? stops.flush() : stops.push(detok.flush()) + stops.flush();
    text += tail;
    return { model: session.source.id, text, tail, result, loadSeconds, gpuMemory: session.executor.memory() };
  } finally {
    session.close();
  }
}
