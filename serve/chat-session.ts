// One conversation with a served model, as `aser chat` holds it: the history (system message first),
// fitted into the context window before each answer (oldest turns dropped first), the answer streamed
// as text while it is sampled, and a seed that moves on per answer so a fixed seed makes the whole
// session reproducible without every answer being alike. The terminal side lives in cli/commands/chat.ts.
import { fitHistory } from './chat-history.js';
import type { ChatMessage } from './chat-template.js';
import type { EngineFinish } from './engine.js';
import type { Serving } from './open-serving.js';
import { CompletionText } from './text-stream.js';

export interface ChatSettings {
  system?: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
}

export interface ChatReplyEvents {
  /** The history was cut to fit: `dropped` oldest messages are gone (before any text arrives). */
  onDropped?(dropped: number): void;
  /** Text as it is decoded. */
  onText(text: string): void;
}

/** How an answer ended; 'too-long': the message alone does not fit the context and was not kept. */
export type ChatReply = { finish: 'too-long' } | { finish: EngineFinish };

export class ChatConversation {
  private readonly history: ChatMessage[];
  private seed: number | undefined;

  constructor(
    private readonly serving: Serving,
    private readonly settings: ChatSettings,
  ) {
    this.history = settings.system ? [{ role: 'system', content: settings.system }] : [];
    this.seed = settings.seed;
  }

  /** Forgets everything but the system message. */
  reset(): void {
    this.history.splice(0, this.history.length, ...this.history.filter((m) => m.role === 'system'));
  }

  /** Adds the user's message, streams the answer through `events`, and keeps both in the history. */
  async reply(userText: string, events: ChatReplyEvents, signal: AbortSignal): Promise<ChatReply> {
    const { engine, chatTemplate } = this.serving;
    this.history.push({ role: 'user', content: userText });
    const encode = (messages: ChatMessage[]) => chatTemplate.encode(engine.tokenizer, chatTemplate.render(messages, true));
    // Room kept for the answer when fitting history; never more than half the context.
    const reserve = Math.min(this.settings.maxTokens, Math.floor(engine.contextLength / 2));
    const fitted = fitHistory(this.history, encode, engine.contextLength, reserve);
    if (!fitted) {
      this.history.pop();
      return { finish: 'too-long' };
    }
    if (fitted.dropped > 0) {
      this.history.splice(this.history.findIndex((m) => m.role !== 'system'), fitted.dropped);
      events.onDropped?.(fitted.dropped);
    }
    const text = new CompletionText(engine.tokenizer, fitted.ids, chatTemplate.stop, { trimStart: true });
    let result;
    try {
      result = await engine.generate(
        fitted.ids,
        {
          maxTokens: Math.min(this.settings.maxTokens, engine.contextLength - fitted.ids.length),
          temperature: this.settings.temperature, topP: this.settings.topP, seed: this.seed,
          logprobs: false, topLogprobs: 0, stopTokens: chatTemplate.stopTokens(engine.tokenizer), signal,
        },
        (token) => {
          const stopped = text.push(token.id);
          events.onText(text.take().text);
          return !stopped;
        },
      );
      events.onText(text.finish().text);
    } finally {
      if (this.seed !== undefined) this.seed++;
    }
    this.history.push({ role: 'assistant', content: text.value.trimEnd() });
    return { finish: result.finish };
  }
}
