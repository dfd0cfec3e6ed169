// Opening a model for serving or chat: the session (GPU, model, executor), the engine and the chat template.
import { dirname, join } from 'node:path';
import { openSession, type Session, type SessionOptions } from '../node/session.js';
import { ExecutorEngine } from './executor-engine.js';
import { chatTemplateFromConfig, loadChatTemplate, type ChatTemplate } from './chat-template.js';
import { ggufChatTemplateConfig } from '../loaders/gguf-tokenizer.js';
import type { GgufModelSource } from '../loaders/gguf.js';

export interface ServingArgs {
  model: string;
  dtype: 'f32' | 'f16';
  tokenizer?: string;
  artifact?: string;
  ctx?: number;
  /** The model id clients send (default: the model's own id, e.g. the preset name). */
  'served-name'?: string;
  'check-numerics'?: boolean;
}

export interface Serving {
  session: Session;
  engine: ExecutorEngine;
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
  const options: SessionOptions = { model: args.model, dtype: args.dtype, tokenizer: args.tokenizer, maxSeqLen: args.ctx, checkNumerics: args['check-numerics'] };
  const session: Session = await openSession({ ...options, artifact: args.artifact });
  try {
    // A GGUF carries its chat template (tokenizer.chat_template) unless another tokenizer was given.
    const gguf = !args.tokenizer && 'gguf' in session.source ? ggufChatTemplateConfig((session.source as GgufModelSource).gguf) : undefined;
    const chatTemplate = gguf ? chatTemplateFromConfig(gguf) : loadChatTemplate(tokenizerConfigPath(session));
    const engine = new ExecutorEngine(session.executor, session.tokenizer, { modelId: args['served-name'] ?? session.source.id, contextLength: args.ctx });
    return { session, engine, chatTemplate, close: () => session.close() };
  } catch (err) {
    session.close();
    throw err;
  }
}
