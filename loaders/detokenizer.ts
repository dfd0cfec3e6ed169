// Streaming detokenization: turn ids into text one token at a time, for printing during generation.
// Decoding a token alone is wrong twice over: a character may span tokens (emoji, CJK as byte tokens),
// and SentencePiece decoders treat a sequence's first piece specially (leading-space strip). So each push
// decodes a short window twice, with and without the new tokens, and emits the difference, holding it
// back while the text ends in an incomplete UTF-8 sequence (U+FFFD).
import type { TextTokenizer } from '../core/model.js';

export interface Detokenizer {
  /** Adds one id; returns the text it completed (often '', when a character is still incomplete). */
  push(id: number): string;
  /** Returns whatever is still held back (call once generation ends). */
  flush(): string;
}

/** A UTF-8 character spans at most 4 bytes, so at most 4 tokens; holding back longer means real U+FFFD. */
const MAX_HELD_TOKENS = 4;
/** Context ids kept from the caller's prompt, so the first new tokens decode as they would after it. */
const CONTEXT_TOKENS = 4;

/**
 * `context`: ids already shown (e.g. the prompt, with BOS); their text is not emitted again but shapes
 * how the first new tokens decode (a piece right after BOS loses its leading space).
 */
export function createDetokenizer(tok: TextTokenizer, context: number[] = []): Detokenizer {
  // ids[0, shown) were already emitted (the context window); ids[shown, end) are held back.
  const ids = context.slice(-CONTEXT_TOKENS);
  let shown = ids.length;

  const emitPending = (force: boolean): string => {
    if (shown === ids.length) return '';
    const shownText = tok.decode(ids.slice(0, shown));
    const fullText = tok.decode(ids);
    const extends_ = fullText.length > shownText.length && fullText.startsWith(shownText);
    const complete = !fullText.endsWith('\uFFFD') || ids.length - shown >= MAX_HELD_TOKENS;
    if (!force && !(extends_ && complete)) return '';
    const out = fullText.startsWith(shownText) ? fullText.slice(shownText.length) : fullText;
    // The tokens just emitted become the next window's context; older ids no longer matter.
    ids.splice(0, shown);
    shown = ids.length;
    return out;
  };

  return {
    push(id) {
      ids.push(id);
      return emitPending(false);
    },
    flush() {
      return emitPending(true);
    },
  };
}
