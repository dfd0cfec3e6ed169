// Opening a model for serving or chat: the session (GPU, model, executor), the engine and the chat
// template. With --parallel N > 1 the executor gets N KV slots and the engine batches (serve/batching-engine.ts);
// with 1 it is the one-sequence ExecutorEngine (tokens chosen on the GPU, prefix reuse, FIFO).
import { dirname, join } from 'node:path';
import { openSession, type Session, type SessionOptions } from '../node/session.js';
import { ExecutorEngine } from './executor-engine.js';
import { BatchingEngine } from './batching-engine.js';
import type { GenerationEngine } from './engine.js';
import { resolveModel } from '../loaders/registry.js';
import type { ModelConfig } from '../core/model.js';
import { DEFAULT_MAX_SEQ_LEN } from '../runtime/executor-options.js';
import { loadChatTemplate, type ChatTemplate } from './chat-template.js';

export interface ServingArgs {
  model: string;
  dtype: 'f32' | 'f16';
  tokenizer?: string;
  artifact?: string;
  ctx?: number;
  /** The model id clients send (default: the model's own id, e.g. the preset name). */
  'served-name'?: string;
  'check-numerics'?: boolean;
  /** Sequences decoded together (KV slots); undefined: defaultParallel(). */
  parallel?: number;
}

export interface Serving {
  session: Session;
  engine: GenerationEngine;
  /** The slot count in use (1: no batching). */
  parallel: number;
  chatTemplate: ChatTemplate;
  close(): void;
}

/** tokenizer_config.json beside the tokenizer.json that was loaded (llama2.c tokenizer.bin has none). */
function tokenizerConfigPath(session: Session): string | undefined {
  const file = (session.tokenizer as { file?: unknown }).file;
  return typeof file === 'string' && file.endsWith('.json') ? join(dirname(file), 'tokenizer_config.json') : undefined;
}

/** Opens the model for serving or chat: session (GPU, model, executor), engine and chat template. */
export async function openServing(args: ServingArgs): Promise<Serving> {
  const parallel = args.parallel ?? defaultParallelFor(args);
  const options: SessionOptions = { model: args.model, dtype: args.dtype, tokenizer: args.tokenizer, maxSeqLen: args.ctx, checkNumerics: args['check-numerics'], slots: parallel > 1 ? parallel : undefined };
  const session: Session = await openSession({ ...options, artifact: args.artifact });
  try {
    const chatTemplate = loadChatTemplate(tokenizerConfigPath(session));
    const modelId = args['served-name'] ?? session.source.id;
    const engine = parallel > 1
      ? new BatchingEngine(session.executor, session.tokenizer, { modelId, contextLength: args.ctx })
      : new ExecutorEngine(session.executor, session.tokenizer, { modelId, contextLength: args.ctx });
    return { session, engine, chatTemplate, parallel, close: () => session.close() };
  } catch (err) {
    session.close();
    throw err;
  }
}

/** KV-cache bytes all slots together may take when --parallel is not given. */
export const PARALLEL_KV_BUDGET = 1 << 30;
/** Most slots chosen by default. */
export const MAX_DEFAULT_PARALLEL = 16;

/**
 * Slots when --parallel is not given: as many as fit PARALLEL_KV_BUDGET of KV cache and one K buffer
 * per layer under the 128 MiB storage-binding size every WebGPU device allows, at most
 * MAX_DEFAULT_PARALLEL, at least 1. `kvBytes`: bytes per cached value (4 for f32, 2 for f16).
 */
export function defaultParallel(c: ModelConfig, ctx: number, kvBytes: number): number {
  const perSlotBuffer = ctx * c.nKvHeads * c.headDim * kvBytes;
  const byBinding = Math.floor((128 << 20) / perSlotBuffer);
  const byBudget = Math.floor(PARALLEL_KV_BUDGET / (perSlotBuffer * 2 * c.nLayers));
  return Math.max(1, Math.min(MAX_DEFAULT_PARALLEL, byBinding, byBudget));
}

function defaultParallelFor(args: ServingArgs): number {
  // The config alone decides; reading it opens the model's header (cheap), not its weights.
  const resolved = resolveModel(args.model, { tokenizer: args.tokenizer });
  try {
    const c = resolved.source.config;
    const ctx = Math.min(args.ctx ?? DEFAULT_MAX_SEQ_LEN, c.maxSeqLen);
    return defaultParallel(c, ctx, args.dtype === 'f16' ? 2 : 4);
  } finally {
    resolved.source.close();
  }
}
