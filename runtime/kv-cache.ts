/// <reference types="@webgpu/types" />
// The attention KV cache: per layer one K and one V buffer of [maxSeqLen, nKvHeads·headDim] elements,
// f32 or f16. Allocated once per executor; positions past the current one are simply overwritten.
import { createBuffer } from './buffers.js';

export interface KvCacheShape {
  nLayers: number;
  maxSeqLen: number;
  /** nKvHeads · headDim, in elements. */
  kvDim: number;
  f16: boolean;
}

export class KvCache {
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  readonly bytesPerLayerBuffer: number;

  constructor(device: GPUDevice, readonly shape: KvCacheShape, label = 'kv') {
    this.bytesPerLayerBuffer = shape.maxSeqLen * shape.kvDim * (shape.f16 ? 2 : 4);
    for (let l = 0; l < shape.nLayers; l++) {
      this.k.push(createBuffer(device, this.bytesPerLayerBuffer, `${label}/k[${l}]`));
      this.v.push(createBuffer(device, this.bytesPerLayerBuffer, `${label}/v[${l}]`));
    }
  }

  get byteSize(): number {
    return this.k.reduce((n, b) => n + b.size, 0) + this.v.reduce((n, b) => n + b.size, 0);
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v]) b.destroy();
    this.k.length = 0;
    this.v.length = 0;
  }
}
