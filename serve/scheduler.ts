// Several clients, one executor: a strict first-in-first-out queue with a bounded number of waiting
// requests. Up to `concurrency` jobs run at once (1 for an executor with one KV cache; the slot count
// for a batching engine); a job cancelled while it waits leaves the queue at once, so a disconnected
// client never costs GPU time.
import { ApiError } from './errors.js';

interface Waiting {
  start: () => void;
  signal?: AbortSignal;
  onAbort: () => void;
}

export class FifoScheduler {
  private readonly waiting: Waiting[] = [];
  private running = 0;

  /** `maxWaiting`: requests allowed to wait behind the running ones before `submit` refuses with 429. */
  constructor(
    readonly maxWaiting: number,
    private readonly onChange: (waiting: number, running: number) => void = () => {},
    readonly concurrency = 1,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`FifoScheduler: concurrency ${concurrency} must be a positive integer`);
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  get runningCount(): number {
    return this.running;
  }

  private get busy(): boolean {
    return this.running >= this.concurrency;
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
        this.running++;
        this.changed();
        // The slot is free before the caller hears the result, so counts are right when it looks.
        const release = () => {
          this.running--;
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
    const entry = this.busy ? undefined : this.waiting.shift();
    if (entry) entry.start();
    else this.changed();
  }

  private changed(): void {
    this.onChange(this.waiting.length, this.runningCount);
  }
}
