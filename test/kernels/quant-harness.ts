// Synthetic quantized layers and GPU readback for the w4a8 kernel tests. Not a test file itself.
import type { GpuContext } from '../../core/gpu.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import type { QuantizedLinearOp } from '../../runtime/quantized-linear.js';
import { createBuffer, readBuffer, readF32, uploadBuffer } from '../../runtime/buffers.js';
import { packW4 } from '../../core/w4-layout.js';
import { packW8, W8_QMAX } from '../../core/w8-layout.js';
import { seededFloats } from './linear-harness.js';

export interface SyntheticLayer {
  inF: number;
  outF: number;
  rank: number;
  aBits?: number;
  smooth?: boolean;
  bias?: boolean;
  /** 4 (default) or 8: per-channel int8 weights in core/w8-layout.ts. */
  wBits?: 4 | 8;
}

export function syntheticQuantizedLinear(s: SyntheticLayer, seed: number): QuantizedLinear {
  const u = seededFloats(s.outF * s.inF, seed, 1);
  const qmax = s.wBits === 8 ? W8_QMAX : 7;
  const q = new Int8Array(u.length);
  for (let i = 0; i < u.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(u[i]! * (qmax + 0.49))));
  const wScale = seededFloats(s.outF, seed + 1, 0.05).map((v) => Math.abs(v) + 0.01);
  return {
    inFeatures: s.inF,
    outFeatures: s.outF,
    wBits: s.wBits ?? 4,
    aBits: s.aBits ?? 8,
    qweight: s.wBits === 8 ? packW8(q, s.outF, s.inF) : packW4(q, s.outF, s.inF),
    wScale,
    smooth: s.smooth ? seededFloats(s.inF, seed + 2, 1).map((v) => 0.5 + 1.75 * (v + 1)) : undefined,
    rank: s.rank,
    la: s.rank ? seededFloats(s.inF * s.rank, seed + 3, 0.2) : undefined,
    lb: s.rank ? seededFloats(s.rank * s.outF, seed + 4, 0.2) : undefined,
    bias: s.bias ? seededFloats(s.outF, seed + 5, 1) : undefined,
  };
}

export interface QuantRun {
  y: Float32Array;
  xq: Uint32Array;
  sx: Float32Array;
  /** Σ over splits of kernel A's partial t, [tokens, rank] (fused, rank > 0). */
  t?: Float64Array;
  acc?: Int32Array;
  /** The rstd kernel A normed each row with (fused norm). */
  rstd?: Float32Array;
}

/**
 * Encodes op once for x [tokens, in] and reads back y and every intermediate. With `fused`: through
 * encodeFused, a norm weight uploaded for it, and y starting as `y0` (the residual stream).
 */
export async function runQuantized(
  gpu: GpuContext, op: QuantizedLinearOp, x: Float32Array, tokens: number,
  fused?: { norm?: { weight: Float32Array; eps: number }; residual?: boolean; swiglu?: boolean; y0?: Float32Array },
): Promise<QuantRun> {
  const { device } = gpu;
  const xb = uploadBuffer(device, x, 'test/x');
  const yb = fused?.y0 ? uploadBuffer(device, fused.y0, 'test/y') : createBuffer(device, tokens * op.outFeatures * 4, 'test/y');
  const wb = fused?.norm ? uploadBuffer(device, fused.norm.weight, 'test/norm') : undefined;
  try {
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    if (fused) op.encodeFused!(pass, xb, yb, tokens, { norm: fused.norm && { weight: wb!, eps: fused.norm.eps }, residual: fused.residual, swiglu: fused.swiglu });
    else op.encode(pass, xb, yb, tokens);
    pass.end();
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`${op.label}: ${err.message}`);
    const d = op.debug;
    const y = await readF32(device, yb, tokens * op.outFeatures);
    const xq = new Uint32Array(await readBuffer(device, d.xq, tokens * d.wordsPerRow * 4));
    const sx = await readF32(device, d.sx, tokens);
    let t: Float64Array | undefined;
    if (d.tpart) {
      const splits = d.splits(tokens);
      const part = await readF32(device, d.tpart, tokens * splits * d.rankPad);
      t = new Float64Array(tokens * op.rank);
      for (let tok = 0; tok < tokens; tok++)
        for (let s = 0; s < splits; s++)
          for (let j = 0; j < op.rank; j++) t[tok * op.rank + j]! += part[(tok * splits + s) * d.rankPad + j]!;
    }
    const acc = d.acc ? new Int32Array(await readBuffer(device, d.acc, tokens * op.outFeatures * 4)) : undefined;
    const rstd = fused?.norm ? await readF32(device, d.rstd, tokens) : undefined;
    return { y, xq, sx, t, acc, rstd };
  } finally {
    xb.destroy();
    yb.destroy();
    wb?.destroy();
  }
}

/** Index of the first differing element, or -1. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

/** Bit patterns of f32 values (so -0 vs 0 and NaN payloads count as differences). */
export function f32Bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** Σ_k |x̃[t,k] · L_A[k,j]|: the scale of f32 error in t. */
export function tAbsScale(xs: Float32Array, la: Float32Array, tokens: number, inF: number, rank: number): Float64Array {
  const out = new Float64Array(tokens * rank);
  for (let t = 0; t < tokens; t++)
    for (let j = 0; j < rank; j++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += Math.abs(xs[t * inF + k]! * la[k * rank + j]!);
      out[t * rank + j] = s;
    }
  return out;
}
