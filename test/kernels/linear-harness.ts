// Test harness for LinearOps: seeded inputs, one encode, readback. Not a test file itself.
import type { GpuContext } from '../../core/gpu.js';
import type { LinearOp } from '../../runtime/linear.js';
import { createBuffer, readF32, uploadBuffer } from '../../runtime/buffers.js';

/** Deterministic uniform values in [-scale, scale) (LCG; the seed is part of each test's name). */
export function seededFloats(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 2 ** 24 * 2 - 1) * scale;
  }
  return out;
}

/** Runs op on x ([tokens, in]) and returns y ([tokens, out]). `encodes` > 1 repeats the same encode (steady state). */
export async function runLinear(gpu: GpuContext, op: LinearOp, x: Float32Array, tokens: number, encodes = 1): Promise<Float32Array> {
  const { device } = gpu;
  const xb = uploadBuffer(device, x, 'test/x');
  const yb = createBuffer(device, tokens * op.outFeatures * 4, 'test/y');
  try {
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < encodes; i++) op.encode(pass, xb, yb, tokens);
    pass.end();
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`${op.label}: ${err.message}`);
    return await readF32(device, yb, tokens * op.outFeatures);
  } finally {
    xb.destroy();
    yb.destroy();
  }
}

/** Largest |a-b| / (scale + floor) over all elements, with scale[i] the size of the sum's terms. */
export function maxScaledError(a: Float32Array, b: Float32Array, scale: Float32Array, floor = 1e-30): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!) / (scale[i]! + floor);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}
