// Server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk, then `data: [DONE]`.
import type { ServerResponse } from 'node:http';

export class SseStream {
  private started = false;

  constructor(private readonly res: ServerResponse) {}

  /** Sends the 200 headers now, so a client waiting in the queue sees the stream open. */
  open(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.res.flushHeaders();
  }

  get isOpen(): boolean {
    return this.started;
  }

  send(data: unknown): void {
    this.open();
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream with the `[DONE]` sentinel. */
  close(): void {
    this.open();
    if (!this.res.writableEnded && !this.res.destroyed) this.res.end('data: [DONE]\n\n');
  }
}
