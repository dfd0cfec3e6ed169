// Stop sequences in streamed text: where the first one matches, and how much of the text's end must
// be held back because it could still become one (shared by the server's streams and `aser generate --stop`).

/** Index of the earliest stop-sequence match in `text`, or -1. */
export function findStop(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (best < 0 || at < best)) best = at;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop sequence. */
export function heldSuffix(text: string, stops: readonly string[]): number {
  let held = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > held; k--) {
      if (text.endsWith(s.slice(0, k))) {
        held = k;
        break;
      }
    }
  }
  return held;
}

/**
 * Text pieces in, safe text out: push() returns what can be shown now (never the start of a possible
 * stop sequence); after a match `stopped` is true and nothing from the match on is ever returned.
 */
export class StopText {
  private text = '';
  private sent = 0;
  private cut: number | null = null;
  constructor(private readonly stops: readonly string[]) {}

  get stopped(): boolean {
    return this.cut !== null;
  }

  push(piece: string): string {
    if (this.cut !== null) return '';
    this.text += piece;
    const at = findStop(this.text.slice(this.sent), this.stops);
    if (at >= 0) this.cut = this.sent + at;
    const end = this.cut ?? this.text.length - heldSuffix(this.text.slice(this.sent), this.stops);
    const out = this.text.slice(this.sent, Math.max(end, this.sent));
    this.sent = Math.max(end, this.sent);
    return out;
  }

  /** The rest at the end (held text that never became a stop sequence). */
  flush(): string {
    const end = this.cut ?? this.text.length;
    const out = this.text.slice(this.sent, Math.max(end, this.sent));
    this.sent = Math.max(end, this.sent);
    return out;
  }
}
