/// <reference types="@webgpu/types" />
// Scratch buffers shared by ops that run one after another (the quantized linears of a model: kernel
// A's quantized activations, s_x and partial t): one buffer per name, sized for the largest need
// reserved so far. The executor owns one per model and hands it to its linear factory; an op made on
// its own (tests, benchmarks) makes its own.
import { createBuffer } from './buffers.js';

export class ScratchPool {
  private readonly sizes = new Map<string, number>();
  private buffers?: Record<string, GPUBuffer>;
  /** Bumped whenever the buffers are re-created or freed: bind groups made before it are stale. */
  generation = 0;

  constructor(
    private readonly device: GPUDevice,
    /** Buffer labels are `${label}/${name}`. */
    private readonly label = 'scratch',
  ) {}

  /** Grows the named buffers to at least these bytes (re-creating them, if they exist, when one grows). */
  reserve(need: Readonly<Record<string, number>>): void {
    let grew = false;
    for (const [name, bytes] of Object.entries(need)) {
      if (bytes > (this.sizes.get(name) ?? 0)) {
        this.sizes.set(name, bytes);
        grew = true;
      }
    }
    // Only happens while ops are being created (before a forward is encoded).
    if (grew && this.buffers) this.free();
  }

  /** The buffers by name, created at first use. */
  get(): Readonly<Record<string, GPUBuffer>> {
    if (!this.buffers) {
      const b: Record<string, GPUBuffer> = {};
      for (const [name, bytes] of this.sizes) b[name] = createBuffer(this.device, bytes, `${this.label}/${name}`);
      this.buffers = b;
    }
    return this.buffers;
  }

  /** GPU bytes held now (0 before the first use and after release). */
  get byteSize(): number {
    return this.buffers ? Object.values(this.buffers).reduce((n, b) => n + b.size, 0) : 0;
  }

  /** Frees the buffers (once every op using them is destroyed or idle); a later use re-creates them. */
  release(): void {
    this.free();
  }

  private free(): void {
    if (this.buffers) for (const b of Object.values(this.buffers)) b.destroy();
    this.buffers = undefined;
    this.generation++;
  }
}
