// Conversation history for the terminal chat: keeps the system message and as many recent turns as
// fit the context, dropping the oldest first, with room left for the answer.
import type { ChatMessage } from './chat-template.js';

export interface FittedPrompt {
  /** Messages actually sent (system + the newest turns that fit). */
  messages: ChatMessage[];
  ids: number[];
  /** How many old messages were left out. */
  dropped: number;
}

/**
 * `encode` renders and tokenizes a conversation (with the generation prompt). `reserve` tokens are
 * kept free for the answer. The newest message always stays; if even it does not fit with the
 * system message, returns undefined.
 */
export function fitHistory(
  history: readonly ChatMessage[],
  encode: (messages: ChatMessage[]) => number[],
  contextLength: number,
  reserve: number,
): FittedPrompt | undefined {
  const system = history.filter((m) => m.role === 'system');
  const turns = history.filter((m) => m.role !== 'system');
  const budget = contextLength - reserve;
  for (let start = 0; start < turns.length; start++) {
    // Start each kept window at a user message where possible, so the template sees a normal dialogue.
    if (start > 0 && turns[start]!.role !== 'user' && start < turns.length - 1) continue;
    const messages = [...system, ...turns.slice(start)];
    const ids = encode(messages);
    if (ids.length <= budget) return { messages, ids, dropped: start };
  }
  return undefined;
}
