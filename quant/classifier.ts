// The classifier (lm_head, or the tied embedding) quantized for decode: per-output-channel symmetric
// RTN of its rows to int8 or int4, run by the same integer kernels as the block linears with 8-bit
// per-token activations and no side path. At LLaMA-3's 128256 × 4096 the f32 classifier is 2.1 GB read
// per decoded token — most of a token's bytes; int8 is a quarter of that, int4 an eighth.
// Rows are read and quantized a block at a time, so the f32 matrix never exists on the host.
import { bytesToF32 } from '../core/dtype.js';
import { packW4 } from '../core/w4-layout.js';
import { packW8 } from '../core/w8-layout.js';
import { CLASSIFIER_ACTIVATION_BITS, classifierWeightBits, type ClassifierFormat, type QuantizedLinear } from '../core/quantized.js';
import type { WeightRows } from '../runtime/weight-rows.js';
import { quantizeWeightsPerChannel } from './quantizers.js';
import { QuantizeError } from './errors.js';

/** Rows quantized per step: bounds the f32 rows widened on the host (2048 × 4096 × 4 B = 32 MiB). */
const ROWS_PER_STEP = 2048;

/** Quantizes classifier rows [vocab, dim] to `format` ('int8' | 'int4'); onRows reports rows done. */
export function quantizeClassifier(rows: WeightRows, format: ClassifierFormat, onRows?: (done: number, total: number) => void): QuantizedLinear {
  const bits = classifierWeightBits(format);
  if (bits === undefined) throw new QuantizeError(`classifier format ${format} is not an integer format`);
  const { rows: vocab, cols: dim } = rows;
  const q = new Int8Array(vocab * dim);
  const wScale = new Float32Array(vocab);
  for (let r0 = 0; r0 < vocab; r0 += ROWS_PER_STEP) {
    const n = Math.min(ROWS_PER_STEP, vocab - r0);
    const w = bytesToF32(rows.read(r0, n), rows.dtype);
    const part = quantizeWeightsPerChannel(w, n, dim, bits);
    q.set(part.q, r0 * dim);
    wScale.set(part.scale, r0);
    onRows?.(r0 + n, vocab);
  }
  return {
    inFeatures: dim,
    outFeatures: vocab,
    wBits: bits,
    aBits: CLASSIFIER_ACTIVATION_BITS,
    qweight: bits === 8 ? packW8(q, vocab, dim) : packW4(q, vocab, dim),
    wScale,
    rank: 0,
  };
}
