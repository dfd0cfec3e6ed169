/// <reference types="@webgpu/types" />
// Pieces shared by the dense and quantized LinearOps: the per-call bind-group cache and the token
// chunking that keeps every binding under maxStorageBufferBindingSize. Their typed error,
// LinearConfigError, lives in runtime/errors.ts.
import { LinearConfigError } from './errors.js';

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();
/** A small stable number per buffer (cache keys). */
export function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(b, id);
  }
  return id;
}

/**
 * Bind groups keyed by (x, y, tokens): the token count lives in the binding sizes (kernels read
 * tokens = arrayLength(&y) / out), so no uniform is rewritten between encodes and several encodes in
 * one submit never see each other's values. Bind groups hold no GPU memory, so eviction only drops a
 * reference; the cap bounds the map when prompt lengths vary.
 */
export class BindGroupCache<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly capacity = 32) {}

  get(x: GPUBuffer, y: GPUBuffer, tokens: number, make: () => T): T {
    const key = `${bufferId(x)}:${bufferId(y)}:${tokens}`;
    let v = this.map.get(key);
    if (v !== undefined) return v;
    v = make();
    if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, v);
    return v;
  }

  clear(): void {
    this.map.clear();
  }
}

export interface TokenChunk {
  /** First token of the chunk. */
  t0: number;
  /** Tokens in the chunk. */
  count: number;
}

/**
 * Splits `tokens` so that every per-chunk binding (rowBytes per token; pass the largest row size of
 * the bindings involved) stays under `maxBindingBytes`. Chunk starts are multiples of 64 tokens, so
 * byte offsets t0·rowBytes are multiples of 256 (WebGPU's largest minStorageBufferOffsetAlignment)
 * whenever rowBytes is a multiple of 4.
 */
export function tokenChunks(tokens: number, rowBytes: number, maxBindingBytes: number): TokenChunk[] {
  const perChunk = Math.floor(maxBindingBytes / rowBytes);
  if (tokens <= perChunk) return [{ t0: 0, count: tokens }];
  const step = Math.floor(perChunk / 64) * 64;
  if (step === 0) throw new RangeError(`a ${rowBytes}-byte row needs chunks of 64 tokens, over the ${maxBindingBytes}-byte binding limit`);
  const chunks: TokenChunk[] = [];
  for (let t0 = 0; t0 < tokens; t0 += step) chunks.push({ t0, count: Math.min(step, tokens - t0) });
  return chunks;
}

export function checkActivationBuffers(layer: string, x: GPUBuffer, y: GPUBuffer, tokens: number, inF: number, outF: number, maxTokens: number): void {
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > maxTokens) {
    throw new LinearConfigError(layer, `tokens = ${tokens} is outside 1..${maxTokens} (maxTokens)`);
  }
  if (x.size < tokens * inF * 4) throw new LinearConfigError(layer, `x buffer has ${x.size} bytes, needs ${tokens}×${inF} f32`);
  if (y.size < tokens * outF * 4) throw new LinearConfigError(layer, `y buffer has ${y.size} bytes, needs ${tokens}×${outF} f32`);
}
