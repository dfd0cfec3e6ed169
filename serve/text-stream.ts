// Turns sampled token ids into text that is safe to send: whole UTF-8 characters only, and never the
// start of a stop sequence until it is known not to be one. Also records where each token's text
// starts, so logprobs can be cut at the same place as the text.
import type { TextTokenizer } from '../core/model.js';
import { createDetokenizer, type Detokenizer } from '../loaders/detokenizer.js';
import { findStop, heldSuffix } from '../loaders/stop-strings.js';

export interface TextChunk {
  text: string;
  /**
   * Tokens reported with this chunk, in order: each one's index among the pushed tokens and its share
   * of the text. Reported tokens are contiguous and their texts add up to the text sent so far.
   */
  tokens: Array<{ index: number; text: string }>;
}

/**
 * The text of one completion: push tokens, take safe chunks, finish. After a stop sequence matches,
 * `stopped` is true and the text ends just before it.
 */
export class CompletionText {
  private readonly decoder: Detokenizer;
  private text = '';
  private sent = 0;
  private tokensSent = 0;
  private cut: number | null = null;
  /** Character offset (in the completion text) where each pushed token's text starts. */
  readonly offsets: number[] = [];

  private readonly stops: readonly string[];

  private readonly trimStart: boolean;

  /** `trimStart`: drop whitespace before the first visible character (a chat answer after "Assistant:"). */
  constructor(tokenizer: TextTokenizer, prompt: readonly number[], stops: readonly string[], options: { trimStart?: boolean } = {}) {
    this.trimStart = options.trimStart ?? false;
    // The prompt's last tokens are context: the first completion piece decodes as it would after them.
    this.decoder = createDetokenizer(tokenizer, prompt.slice(-8));
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.cut !== null;
  }

  /** Adds a sampled token; returns true if the text now contains a stop sequence. */
  push(id: number): boolean {
    if (this.cut !== null) return true;
    this.offsets.push(this.text.length);
    this.append(this.decoder.push(id));
    this.checkStop();
    return this.cut !== null;
  }

  /** The text that can be sent now and the tokens it covers. */
  take(): TextChunk {
    const end = this.cut ?? this.text.length - heldSuffix(this.text.slice(this.sent), this.stops);
    return this.advance(end, false);
  }

  /** Ends the completion: everything left (up to a stop sequence), and all tokens before the cut. */
  finish(): TextChunk {
    if (this.cut === null) {
      this.append(this.decoder.flush());
      this.checkStop();
    }
    return this.advance(this.cut ?? this.text.length, true);
  }

  /** The full completion text so far (after `finish`, the final text). */
  get value(): string {
    return this.text.slice(0, this.cut ?? this.text.length);
  }

  private append(piece: string): void {
    this.text += this.trimStart && this.text.length === 0 ? piece.trimStart() : piece;
  }

  private checkStop(): void {
    if (this.cut !== null || this.stops.length === 0) return;
    const at = findStop(this.text.slice(this.sent), this.stops);
    if (at >= 0) this.cut = this.sent + at;
  }

  private advance(end: number, final: boolean): TextChunk {
    const text = this.text.slice(this.sent, Math.max(end, this.sent));
    this.sent = Math.max(end, this.sent);
    const tokens: TextChunk['tokens'] = [];
    const limit = this.cut ?? this.text.length;
    const tokenEnd = (i: number) => Math.min(this.offsets[i + 1] ?? this.text.length, limit);
    // A token is reported once all its text has gone out; at the end, every token that starts before
    // the cut (or every token, when nothing was cut), its text clipped at the cut.
    for (let i = this.tokensSent; i < this.offsets.length; i++) {
      const start = this.offsets[i]!;
      const ready = final ? start < limit || this.cut === null : start < this.sent && tokenEnd(i) <= this.sent;
      if (!ready) break;
      tokens.push({ index: i, text: this.text.slice(start, tokenEnd(i)) });
      this.tokensSent = i + 1;
    }
    return { text, tokens };
  }
}
