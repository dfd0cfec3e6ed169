// Prometheus text exposition (format 0.0.4) for the server: request and token counters, queue depth,
// a recent tokens/s rate, and latency histograms. Hand-written: the format is a few lines of text.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

export class Gauge {
  value = 0;
  constructor(readonly name: string, readonly help: string, private readonly read?: () => number) {}

  set(v: number): void {
    this.value = v;
  }

  render(): string {
    const v = this.read ? this.read() : this.value;
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${num(v)}`].join('\n');
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** `buckets`: ascending upper bounds; +Inf is implied. */
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = new Array(buckets.length).fill(0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }

  get observations(): number {
    return this.count;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${num(b)}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${num(this.sum)}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

/** Tokens per second over a sliding window, from timestamps of recent tokens. */
export class RateWindow {
  private readonly stamps: number[] = [];
  constructor(private readonly windowMs: number, private readonly now: () => number = () => performance.now()) {}

  record(n = 1): void {
    const t = this.now();
    for (let i = 0; i < n; i++) this.stamps.push(t);
    this.trim(t);
  }

  perSecond(): number {
    const t = this.now();
    this.trim(t);
    return this.stamps.length / (this.windowMs / 1000);
  }

  private trim(t: number): void {
    let drop = 0;
    while (drop < this.stamps.length && this.stamps[drop]! < t - this.windowMs) drop++;
    if (drop) this.stamps.splice(0, drop);
  }
}

// Latency buckets in seconds: llvmpipe decode sits in the 10–100 ms range, a real GPU in 1–10 ms.
const TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ROW_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
const REQUEST_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class ServerMetrics {
  readonly requests = new Counter('aser_http_requests_total', 'HTTP requests answered, by route and status code');
  readonly promptTokens = new Counter('aser_prompt_tokens_total', 'Prompt tokens received in generation requests');
  readonly generatedTokens = new Counter('aser_generated_tokens_total', 'Tokens sampled');
  readonly cancelled = new Counter('aser_generations_cancelled_total', 'Generations ended early, by reason (disconnect, timeout)');
  readonly queueDepth = new Gauge('aser_queue_depth', 'Requests waiting for the executor');
  readonly running = new Gauge('aser_requests_running', 'Requests being generated now');
  readonly timeToFirstToken = new Histogram('aser_time_to_first_token_seconds', 'From request arrival (queue wait included) to the first sampled token', REQUEST_BUCKETS);
  readonly interTokenLatency = new Histogram('aser_inter_token_latency_seconds', 'Time between consecutive sampled tokens of one request', TOKEN_BUCKETS);
  readonly requestDuration = new Histogram('aser_request_duration_seconds', 'From arrival to the end of a generation request', REQUEST_BUCKETS);
  readonly queueTime = new Histogram('aser_queue_time_seconds', 'From request arrival to the start of its generation (waiting for a free slot)', REQUEST_BUCKETS);
  readonly slots = new Gauge('aser_slots', 'Sequences the engine decodes together (--parallel)');
  readonly slotsBusy = new Gauge('aser_slots_busy', 'Slots holding a sequence at the last step');
  readonly stepRows = new Histogram('aser_step_rows', 'Rows per batched forward step (decode rows plus prompt rows)', ROW_BUCKETS);
  readonly stepDecodeRows = new Counter('aser_step_rows_total', 'Rows run in batched forward steps, by kind (decode, prefill)');
  private readonly rate = new RateWindow(10_000);
  readonly tokensPerSecond = new Gauge('aser_generation_tokens_per_second', 'Tokens sampled per second over the last 10 s', () => this.rate.perSecond());

  recordToken(): void {
    this.generatedTokens.inc();
    this.rate.record();
  }

  render(): string {
    const parts = [
      this.requests, this.promptTokens, this.generatedTokens, this.tokensPerSecond, this.cancelled, this.queueDepth, this.running,
      this.timeToFirstToken, this.interTokenLatency, this.requestDuration, this.queueTime, this.slots, this.slotsBusy, this.stepRows, this.stepDecodeRows,
    ];
    return parts.map((m) => m.render()).join('\n') + '\n';
  }
}
