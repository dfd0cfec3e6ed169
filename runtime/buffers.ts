/// <reference types="@webgpu/types" />
// Small helpers for creating, filling and reading GPU buffers. Sizes are rounded up to 4 bytes
// because WebGPU copies and storage bindings require it.

// Usage flags as literals: the GPU globals may not exist yet at import time.
/** GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST */
export const STORAGE = 0x80 | 0x04 | 0x08;
/** GPUBufferUsage.MAP_READ | COPY_DST: staging for readbacks. */
export const READBACK = 0x0001 | 0x0008;
/** GPUBufferUsage.UNIFORM | COPY_DST */
export const UNIFORM = 0x0040 | 0x0008;

export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

export function createBuffer(device: GPUDevice, byteLength: number, label: string, usage: number = STORAGE): GPUBuffer {
  return device.createBuffer({ size: Math.max(4, align4(byteLength)), usage, label });
}

/** Creates a storage buffer holding `data` (padded to a multiple of 4 bytes). */
export function uploadBuffer(device: GPUDevice, data: ArrayBufferView, label: string, usage: number = STORAGE): GPUBuffer {
  const buffer = createBuffer(device, data.byteLength, label, usage);
  writeBuffer(device, buffer, data);
  return buffer;
}

export function writeBuffer(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const whole = bytes.byteLength - (bytes.byteLength % 4);
  if (whole) device.queue.writeBuffer(buffer, offset, bytes as Uint8Array<ArrayBuffer>, 0, whole);
  if (whole !== bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    device.queue.writeBuffer(buffer, offset + whole, tail);
  }
}

/** Copies `byteLength` bytes of `buffer` (from `offset`) back to the CPU. */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, byteLength = buffer.size, offset = 0): Promise<ArrayBuffer> {
  const size = align4(byteLength);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  try {
    const encoder = device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, byteLength);
  } finally {
    staging.destroy();
  }
}

export async function readF32(device: GPUDevice, buffer: GPUBuffer, count?: number, offsetElems = 0): Promise<Float32Array> {
  const n = count ?? buffer.size / 4 - offsetElems;
  return new Float32Array(await readBuffer(device, buffer, n * 4, offsetElems * 4));
}

/** The first `byteLength` bytes of a MAP_READ buffer the caller owns (already written), as f32; unmapped again. */
export async function readMappedF32(buffer: GPUBuffer, byteLength: number): Promise<Float32Array> {
  await buffer.mapAsync(GPUMapMode.READ, 0, byteLength);
  const out = new Float32Array(buffer.getMappedRange(0, byteLength).slice(0));
  buffer.unmap();
  return out;
}

/** The first `byteLength` bytes of a MAP_READ buffer the caller owns (already written), as u32; unmapped again. */
export async function readMappedU32(buffer: GPUBuffer, byteLength: number): Promise<Uint32Array> {
  await buffer.mapAsync(GPUMapMode.READ, 0, byteLength);
  const out = new Uint32Array(buffer.getMappedRange(0, byteLength).slice(0));
  buffer.unmap();
  return out;
}

/** Uniform buffer from a list of 32-bit fields; `types` says how each field is stored. */
export function uniformBuffer(device: GPUDevice, fields: number[], types: string, label: string): GPUBuffer {
  const data = new ArrayBuffer(Math.max(16, align4(fields.length * 4)));
  const view = new DataView(data);
  fields.forEach((v, i) => {
    const t = types[i] ?? 'u';
    if (t === 'f') view.setFloat32(i * 4, v, true);
    else if (t === 'i') view.setInt32(i * 4, v, true);
    else view.setUint32(i * 4, v, true);
  });
  const buffer = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** Uniform buffer holding a plan's packed `uniforms` bytes (kernels/kernel_plan.ts packUniforms). */
export function uniformBufferFrom(device: GPUDevice, bytes: ArrayBuffer, label: string): GPUBuffer {
  const buffer = device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label });
  device.queue.writeBuffer(buffer, 0, bytes);
  return buffer;
}
