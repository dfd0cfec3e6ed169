// Survives GPU device loss: wraps the engine of one device and, when that device is lost (driver
// reset, GPU removed, or destroyed by anyone but us), builds a new device, executor and engine through
// `open` while requests keep arriving. The request running at the loss and every request that was
// already queued behind it get a 503 `device_lost` error (their KV cache and queue slot belonged to
// the dead device); requests that arrive later wait for the new engine and are served normally.
import { ApiError } from './errors.js';
import type { GenerateParams, GenerationEngine, GenerationResult, SampledToken, StepStats } from './engine.js';
import type { TextTokenizer } from '../core/model.js';

/** One engine on one device. `close` frees everything (the device included). */
export interface DeviceEngine {
  engine: GenerationEngine;
  device: GPUDevice;
  close(): void;
}

export interface RecoveringEngineOptions {
  /** Called with one line per loss and restart. */
  log?: (line: string) => void;
  /** Attempts to build a new engine after a loss before giving up (default 3). */
  attempts?: number;
}

export function deviceLostError(detail: string): ApiError {
  return new ApiError(503, `the GPU device was lost (${detail}); the server is restarting it, retry the request`, 'server_error', 'device_lost');
}

export class RecoveringEngine implements GenerationEngine {
  readonly modelId: string;
  readonly contextLength: number;
  readonly tokenizer: TextTokenizer;
  readonly parallel?: number;
  private stepObserver?: (s: StepStats) => void;
  /** Incremented at every device loss; a request remembers the epoch it was accepted in. */
  deviceEpoch = 0;
  /** Device losses seen and restarts completed (for /health and tests). */
  losses = 0;
  restarts = 0;
  private current: DeviceEngine;
  private restarting?: Promise<void>;
  private lastLoss = '';
  private closed = false;

  constructor(
    first: DeviceEngine,
    private readonly open: () => Promise<DeviceEngine>,
    private readonly options: RecoveringEngineOptions = {},
  ) {
    this.current = first;
    this.modelId = first.engine.modelId;
    this.contextLength = first.engine.contextLength;
    this.tokenizer = first.engine.tokenizer;
    this.parallel = first.engine.parallel;
    this.watch(first);
  }

  observeSteps(fn: (s: StepStats) => void): void {
    this.stepObserver = fn;
    this.current.engine.observeSteps?.(fn);
  }

  /** The device requests currently run on (tests destroy it to simulate a loss). */
  get device(): GPUDevice {
    return this.current.device;
  }

  /** Resolves once no restart is in progress. */
  async ready(): Promise<void> {
    while (this.restarting) await this.restarting;
  }

  async generate(prompt: readonly number[], params: GenerateParams, onToken: (token: SampledToken) => boolean | void): Promise<GenerationResult> {
    if (params.deviceEpoch !== undefined && params.deviceEpoch !== this.deviceEpoch) throw deviceLostError(`${this.lastLoss}; this request was queued before the loss`);
    await this.ready();
    if (this.closed) throw new ApiError(503, 'the server is shutting down', 'server_error', 'shutting_down');
    const epoch = this.deviceEpoch;
    try {
      return await this.current.engine.generate(prompt, params, onToken);
    } catch (err) {
      if (epoch !== this.deviceEpoch || (err as Error)?.name === 'GpuDeviceLostError') {
        // The loss handler may not have run yet: make sure a restart is under way.
        if (epoch === this.deviceEpoch) this.onLost(this.current, (err as Error).message);
        throw deviceLostError(this.lastLoss);
      }
      throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.current.close();
  }

  private watch(de: DeviceEngine): void {
    de.device.lost.then((info) => {
      if (!this.closed && de === this.current) this.onLost(de, `${info.reason}${info.message ? `: ${info.message.split('\n')[0]}` : ''}`);
    });
  }

  private onLost(de: DeviceEngine, detail: string): void {
    if (de !== this.current || this.restarting) return;
    this.deviceEpoch++;
    this.losses++;
    this.lastLoss = detail;
    this.options.log?.(`GPU device lost (${detail}); re-creating the device and the model`);
    this.restarting = this.restart(de).finally(() => (this.restarting = undefined));
  }

  private async restart(dead: DeviceEngine): Promise<void> {
    try {
      dead.close();
    } catch {
      // Freeing resources of a dead device may fail; they are gone either way.
    }
    const attempts = this.options.attempts ?? 3;
    for (let i = 1; ; i++) {
      try {
        const next = await this.open();
        this.current = next;
        if (this.stepObserver) next.engine.observeSteps?.(this.stepObserver);
        this.restarts++;
        this.watch(next);
        this.options.log?.(`GPU device re-created (restart ${this.restarts})`);
        return;
      } catch (err) {
        this.options.log?.(`re-creating the GPU device failed (attempt ${i} of ${attempts}): ${(err as Error).message}`);
        if (i >= attempts) {
          this.closed = true;
          throw err;
        }
        await new Promise((r) => setTimeout(r, 500 * i));
      }
    }
  }
}
