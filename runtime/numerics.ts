/// <reference types="@webgpu/types" />
// The --check-numerics mode of the executor: every op output of a transformer block is copied to one
// readback buffer as the block runs (one submit and one readback per layer), then scanned in execution
// order, so a NaN/Inf is reported at the first layer and op that produced it. Debug-speed by design;
// when the mode is off none of this exists. Checks here report what they found (NonFiniteReport); the
// executor throws it as its NonFiniteError.
import { createBufferChecked } from './device.js';
import { READBACK } from './buffers.js';


/** Names the executor's tap points the way a user reads them. */
const OP_NAMES: Record<string, string> = {
  attn_in: 'input_layernorm',
  attn_out: 'attention',
  mlp_in: 'post_attention_layernorm (+ residual)',
  mlp_act: 'swiglu',
  residual: 'residual add (block output)',
};

/** A NaN/Inf found in a result: the error message and where it was found. */
export interface NonFiniteReport {
  message: string;
  where: { step?: number; position?: number; layer?: number; op?: string };
}

interface Tap {
  op: string;
  offset: number;
  cols: number;
}

export class NumericsChecker {
  private staging?: GPUBuffer;
  private taps: Tap[] = [];
  private used = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly modelId: string,
  ) {}

  /** Starts a layer whose taps total at most `bytes`. */
  async begin(bytes: number): Promise<void> {
    if (!this.staging || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = undefined;
      this.staging = await createBufferChecked(this.device, { size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: READBACK, label: 'check-numerics' });
    }
    this.taps = [];
    this.used = 0;
  }

  /** Where the next tap of `rows × cols` f32 goes; the caller records the copy. */
  reserve(op: string, rows: number, cols: number): { dst: GPUBuffer; offset: number; bytes: number } {
    const bytes = rows * cols * 4;
    const offset = this.used;
    this.taps.push({ op, offset, cols });
    this.used += bytes;
    return { dst: this.staging!, offset, bytes };
  }

  /** After the layer's submit: the layer and the first op with a NaN/Inf, or undefined when all are finite. */
  async check(layer: number, rows: number, firstPosition: number, step: number): Promise<NonFiniteReport | undefined> {
    const staging = this.staging!;
    await staging.mapAsync(GPUMapMode.READ, 0, this.used);
    try {
      const all = new Float32Array(staging.getMappedRange(0, this.used));
      for (const t of this.taps) {
        const v = all.subarray(t.offset / 4, t.offset / 4 + rows * t.cols);
        for (let i = 0; i < v.length; i++) {
          if (Number.isFinite(v[i]!)) continue;
          let bad = 0;
          for (let j = i; j < v.length; j++) if (!Number.isFinite(v[j]!)) bad++;
          const row = Math.floor(i / t.cols);
          return {
            message: `${this.modelId}: NaN/Inf in layer ${layer} at ${OP_NAMES[t.op] ?? t.op} output (${bad} of ${v.length} values; first at position ${firstPosition + row}, column ${i % t.cols}; step ${step})`,
            where: { layer, op: OP_NAMES[t.op] ?? t.op, step, position: firstPosition + row },
          };
        }
      }
      return undefined;
    } finally {
      staging.unmap();
    }
  }

  destroy(): void {
    this.staging?.destroy();
    this.staging = undefined;
  }
}
