// Plan for kernels/rope_kv.wgsl (RoPE on q and k fused with the KV-cache write) and the host-side
// cos/sin table it reads.
import type { RopeScaling, RopeStyle } from '../core/model.js';
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

/** One rotation pair per invocation; 256 is a safe size on every adapter. */
export const ROPE_KV_WG = 256;

export interface RopeKvShape {
  rows: number;
  pos0: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  style: RopeStyle;
  kvF16: boolean;
  /** q, k, v in one fused [rows, nHeads + 2·nKvHeads, headDim] buffer; q rotated in place there. */
  qkvFused?: boolean;
  /** Per-row (kvBase, pos) from the row_pos binding instead of pos0 + t (continuous batching). */
  rowPositions?: boolean;
}

/** rope_kv.wgsl's bindings by name (qkv with qkvFused, else q, k, v). */
export type RopeKvBinding = 'params' | 'q' | 'k' | 'v' | 'qkv' | 'table' | 'k_cache' | 'v_cache' | 'row_pos';

export function planRopeKv(s: RopeKvShape): KernelPlan<RopeKvBinding> {
  const half = s.headDim / 2;
  const kv = s.rows * s.nKvHeads * s.headDim * 4;
  return {
    spec: {
      shader: 'rope_kv.wgsl',
      defines: { WG: ROPE_KV_WG, ROPE_INTERLEAVED: s.style === 'interleaved', KV_F16: s.kvF16, QKV_FUSED: !!s.qkvFused, ROW_POSITIONS: !!s.rowPositions },
      label: `rope_kv_${s.style}_${s.kvF16 ? 'f16' : 'f32'}kv${s.qkvFused ? '_qkv' : ''}${s.rowPositions ? '_rowpos' : ''}`,
    },
    workgroups: grid1d(Math.ceil((s.rows * (s.nHeads + s.nKvHeads) * half) / ROPE_KV_WG)),
    uniforms: packUniforms([s.rows, s.pos0, s.nHeads, s.nKvHeads, s.headDim], 'uuuuu'),
    // With qkvFused bindings 1 and 3 are unused (q, k, v all live in binding 2).
    bindings: [
      ...(s.qkvFused ? ['params', '', 'qkv', ''] as const : ['params', 'q', 'k', 'v'] as const),
      'table', 'k_cache', 'v_cache', ...(s.rowPositions ? ['row_pos'] as const : []),
    ],
    // The rows' q, k, v (rotated in place, v copied), their positions' table rows; the cache is only written.
    reads: {
      q: s.rows * s.nHeads * s.headDim * 4, k: kv, v: kv, qkv: s.rows * (s.nHeads + 2 * s.nKvHeads) * s.headDim * 4,
      table: s.rows * half * 8, k_cache: 0, v_cache: 0, row_pos: s.rows * 8,
    },
  };
}

/**
 * Inverse frequencies θ^(-2j/headDim), j < headDim/2, in float64, with Llama 3's scaling when given:
 * long wavelengths (> original context / lowFreqFactor) are divided by `factor`, short ones
 * (< original context / highFreqFactor) kept, and the band between interpolated smoothly.
 */
export function ropeInvFrequencies(headDim: number, theta: number, scaling?: RopeScaling): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let j = 0; j < half; j++) {
    const f = Math.pow(theta, (-2 * j) / headDim);
    if (!scaling) {
      inv[j] = f;
      continue;
    }
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: ctx } = scaling;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < ctx / highFreqFactor) inv[j] = f;
    else if (wavelen > ctx / lowFreqFactor) inv[j] = f / factor;
    else {
      const smooth = (ctx / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      inv[j] = (1 - smooth) * (f / factor) + smooth * f;
    }
  }
  return inv;
}

/** (cos, sin) of pos · invFreq[j] for pos < maxSeqLen: [maxSeqLen, headDim/2, 2] f32, angles in float64. */
export function ropeTable(headDim: number, theta: number, maxSeqLen: number, scaling?: RopeScaling): Float32Array {
  const inv = ropeInvFrequencies(headDim, theta, scaling);
  const half = headDim / 2;
  const table = new Float32Array(maxSeqLen * half * 2);
  for (let pos = 0; pos < maxSeqLen; pos++) {
    for (let j = 0; j < half; j++) {
      const angle = pos * inv[j]!;
      table[(pos * half + j) * 2] = Math.cos(angle);
      table[(pos * half + j) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}
