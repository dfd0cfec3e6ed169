// Memory traffic of decode: what the kernels of one decode step read and how many dispatches they
// issue, counted at the source while the executor runs (runtime/traffic.ts: every dispatch of every
// recorded op, with the bytes its kernel plan says it reads), beside the least any kernels could read
// for the same formats (idealDecodeBytes). Portable (no Node APIs); eval/profile-run.ts reports both.
import { lowRankInt8Bytes } from '../core/lowrank-int8.js';
import type { ModelConfig } from '../core/model.js';
import type { QuantizedLinear } from '../core/quantized.js';
import type { Executor } from '../runtime/executor.js';
import { TrafficCounter, type LabelTraffic } from '../runtime/traffic.js';

export interface DecodeTraffic {
  /** Dispatches of one decode step (the same every step). */
  dispatchesPerToken: number;
  /** Bytes the step's kernels read, mean over the steps (the KV-cache part grows with the position). */
  bytesPerToken: number;
  /** Per op label (summed over layers), per step. */
  byLabel: Record<string, LabelTraffic>;
  /** Dispatches per step whose plan stated no reads (bound bytes counted) or whose bytes are unknown (0 counted). */
  estimatedDispatches: number;
  unknownDispatches: number;
  /** Cache positions the counted steps decoded at: [first, last]. */
  positions: [number, number];
  steps: number;
}

/**
 * Counts `steps` decode steps after a prefill of `prompt` (the same tokens profileRound decodes):
 * dispatches and bytes read, per step.
 */
export async function decodeTraffic(ex: Executor, prompt: number[], steps: number): Promise<DecodeTraffic> {
  const counter = new TrafficCounter();
  ex.reset();
  await ex.forward(prompt);
  await ex.logits();
  const first = ex.position;
  ex.setTraffic(counter);
  let dispatches = -1;
  try {
    const byLabel: Record<string, LabelTraffic> = {};
    let bytes = 0, estimated = 0, unknown = 0;
    for (let i = 0; i < steps; i++) {
      await ex.forward([prompt[(i + 1) % prompt.length]!]);
      await ex.logits();
      const t = counter.take();
      if (dispatches >= 0 && t.dispatches !== dispatches) throw new Error(`decode step ${i} issued ${t.dispatches} dispatches, the first ${dispatches}`);
      dispatches = t.dispatches;
      bytes += t.bytes;
      estimated = Math.max(estimated, t.estimated);
      unknown = Math.max(unknown, t.unknown);
      for (const [label, l] of Object.entries(t.byLabel)) {
        const acc = (byLabel[label] ??= { dispatches: 0, bytes: 0 });
        acc.dispatches += l.dispatches / steps;
        acc.bytes += l.bytes / steps;
      }
    }
    return { dispatchesPerToken: dispatches, bytesPerToken: bytes / steps, byLabel, estimatedDispatches: estimated, unknownDispatches: unknown, positions: [first, first + steps - 1], steps };
  } finally {
    ex.setTraffic(undefined);
  }
}

/** The formats a variant stores its weights in, for idealDecodeBytes. */
export interface DecodeFormats {
  /** Bytes per value of the dense weights (block linears not in `quantized`, the classifier unless given). */
  denseBytes: number;
  /** Bytes per value of the classifier (default denseBytes). */
  classifierBytes?: number;
  /** A quantized classifier (int8/int4 weights + scales), counted instead of classifierBytes. */
  classifier?: QuantizedLinear;
  /** Bytes per value of the KV cache. */
  kvBytes: number;
  /** The quantized block linears by module name (model.layers.L.self_attn.q_proj …); the others are dense. */
  quantized?: ReadonlyMap<string, QuantizedLinear>;
  /** Bytes per value of f16/f32 L_A and L_B as stored (int8 factors are counted from the linear). */
  lowRankBytes?: number;
}

const KINDS: Array<[string, string]> = [
  ['self_attn', 'q_proj'], ['self_attn', 'k_proj'], ['self_attn', 'v_proj'], ['self_attn', 'o_proj'],
  ['mlp', 'gate_proj'], ['mlp', 'up_proj'], ['mlp', 'down_proj'],
];

/** [out, in] of each block linear kind. */
function linearShape(c: ModelConfig, kind: string): [number, number] {
  const q = c.nHeads * c.headDim, kv = c.nKvHeads * c.headDim;
  switch (kind) {
    case 'q_proj': return [q, c.dim];
    case 'k_proj': case 'v_proj': return [kv, c.dim];
    case 'o_proj': return [c.dim, q];
    case 'gate_proj': case 'up_proj': return [c.hiddenDim, c.dim];
    default: return [c.dim, c.hiddenDim];
  }
}

/**
 * Bytes of one quantized linear in its formats: int4 weights (0.5 B/value), f32 scales, side path
 * (`lowRankBytes` per value, or int8 factors with their scales when the linear has them), smoothing, bias.
 */
export function quantizedLinearBytes(q: Pick<QuantizedLinear, 'inFeatures' | 'outFeatures' | 'rank' | 'smooth' | 'bias' | 'lowRankInt8'> & { wBits?: number }, lowRankBytes: number): number {
  const { inFeatures: K, outFeatures: N } = q;
  const side = q.lowRankInt8 ? lowRankInt8Bytes(K, N, q.rank) : q.rank * (K + N) * lowRankBytes;
  return (N * K * (q.wBits ?? 4)) / 8 + N * 4 + side + (q.smooth ? K * 4 : 0) + (q.bias ? N * 4 : 0);
}

/**
 * The least one decode step at cache position `pos` (0-based, the token's own row included) can read
 * in these formats, whatever the kernels: every weight once (int4 at 0.5 B/value with its scales, side
 * path, smoothing; dense ones in their dtype), the norms, the classifier, one embedding row, and the KV
 * cache rows 0..pos of every layer once. Activations are not counted (they could stay on chip).
 */
export function idealDecodeBytes(c: ModelConfig, f: DecodeFormats, pos: number): number {
  let bytes = 0;
  for (let l = 0; l < c.nLayers; l++) {
    for (const [block, kind] of KINDS) {
      const q = f.quantized?.get(`model.layers.${l}.${block}.${kind}`);
      const [out, inF] = linearShape(c, kind);
      const bias = c.attentionBias && (kind === 'q_proj' || kind === 'k_proj' || kind === 'v_proj') ? out * 4 : 0;
      bytes += q ? quantizedLinearBytes(q, f.lowRankBytes ?? 2) : out * inF * f.denseBytes + bias;
    }
    bytes += 2 * c.dim * 4; // input and post-attention norms
    bytes += 2 * (pos + 1) * c.nKvHeads * c.headDim * f.kvBytes; // K and V up to the position
  }
  bytes += c.dim * 4; // final norm
  bytes += f.classifier ? quantizedLinearBytes(f.classifier, 0) : c.vocabSize * c.dim * (f.classifierBytes ?? f.denseBytes);
  bytes += c.dim * f.denseBytes; // the token's embedding row
  return bytes;
}

/** idealDecodeBytes averaged over the positions [first, last] (linear in the position: its midpoint). */
export function idealDecodeBytesOver(c: ModelConfig, f: DecodeFormats, positions: [number, number]): number {
  return (idealDecodeBytes(c, f, positions[0]) + idealDecodeBytes(c, f, positions[1])) / 2;
}

export interface VariantTraffic extends DecodeTraffic {
  /** idealDecodeBytes over the same positions, for the executor's formats and these quantized linears. */
  idealBytesPerToken: number;
}

/** decodeTraffic of an executor beside the ideal for its formats (dense dtype, KV dtype, the quantized linears it runs). */
export async function variantTraffic(
  ex: Executor, quantized: ReadonlyMap<string, QuantizedLinear> | undefined, prompt: number[], steps: number, classifier?: QuantizedLinear | 'f16',
): Promise<VariantTraffic> {
  const t = await decodeTraffic(ex, prompt, steps);
  const formats: DecodeFormats = {
    denseBytes: ex.dtype === 'f16' ? 2 : 4, kvBytes: ex.kvDtype === 'f16' ? 2 : 4, quantized, lowRankBytes: 2,
    classifier: classifier === 'f16' ? undefined : classifier, classifierBytes: classifier === 'f16' ? 2 : undefined,
  };
  return { ...t, idealBytesPerToken: idealDecodeBytesOver(ex.config, formats, t.positions) };
}
