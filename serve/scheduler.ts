// Several clients, one executor: a strict first-in-first-out queue with a bounded number of waiting
// requests. One job runs at a time (the executor holds one KV cache); a job cancelled while it waits
// leaves the queue at once, so a disconnected client never costs GPU time.
import { ApiError } from './errors.js';

interface Waiting {
  start: () => void;
  signal?: AbortSignal;
  onAbort: () => void;
}

export class FifoScheduler {
  private readonly waiting: Waiting[] = [];
  private busy = false;

  /** `maxWaiting`: requests allowed to wait behind the running one before `submit` refuses with 429. */
  constructor(
    readonly maxWaiting: number,
    private readonly onChange: (waiting: number, running: number) => void = () => {},
  ) {}

  get waitingCount(): number {
    return this.waiting.length;
  }

  get runningCount(): number {
    return this.busy ? 1 : 0;
  }

  /** Whether a new request would be refused right now. */
  get full(): boolean {
    return this.busy && this.waiting.length >= this.maxWaiting;
  }

  /**
   * Runs `job` when its turn comes. Throws a 429 ApiError synchronously when the queue is full, so the
   * caller can answer before writing any headers. If `signal` aborts while waiting, the returned
   * promise rejects with the signal's reason and the job never runs.
   */
  submit<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.full) {
      throw new ApiError(429, `server busy: ${this.waiting.length} requests already waiting (limit ${this.maxWaiting}); retry later`, 'rate_limit_error', 'queue_full');
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const run = () => {
        this.busy = true;
        this.changed();
        // The slot is free before the caller hears the result, so counts are right when it looks.
        const release = () => {
          this.busy = false;
          this.next();
        };
        job().then(
          (value) => {
            release();
            resolve(value);
          },
          (err: unknown) => {
            release();
            reject(err);
          },
        );
      };
      if (!this.busy) {
        run();
        return;
      }
      const entry: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', entry.onAbort);
          run();
        },
        signal,
        onAbort: () => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) this.waiting.splice(at, 1);
          this.changed();
          reject(signal!.reason);
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
      this.changed();
    });
  }

  private next(): void {
    const entry = this.waiting.shift();
    if (entry) entry.start();
    else this.changed();
  }

  private changed(): void {
    this.onChange(this.waiting.length, this.runningCount);
  }
}
