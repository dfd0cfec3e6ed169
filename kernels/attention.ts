// Plan for kernels/attention.wgsl: causal GQA attention of a chunk of query rows over the KV cache.
import { grid1d, packUniforms, MAX_WORKGROUPS_PER_DIM, type KernelPlan } from './kernel_plan.js';

/** `keys`: keys spread over a workgroup (entry main); `rows`: one invocation per (row, head) (main_rows). */
export type AttentionVariant = 'keys' | 'rows';

/**
 * Invocations per workgroup. For `keys` it is also the key tile (a power of two for the reductions);
 * for `rows`, 64 neighbouring rows of a head share their key reads.
 */
export const ATTENTION_WG = 64;

/**
 * Query rows from which `rows` beats `keys` on GPUs: with ≥ 64 rows × heads the serial-key variant
 * already fills whole workgroups and re-reads nothing, while `keys` pays two reductions per tile.
 * CPU adapters (llvmpipe: every barrier is a coroutine switch per 8 lanes) always use `rows`.
 */
export const ATTENTION_ROWS_MIN = 16;

export interface AttentionShape {
  rows: number;
  pos0: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  kvF16: boolean;
  /** Default: 'rows' from ATTENTION_ROWS_MIN rows on, else 'keys'. */
  variant?: AttentionVariant;
  /** Elements between query rows of q (default nHeads·headDim; more when q lives in a fused q|k|v buffer). */
  qStride?: number;
  /** Per-row (kvBase, pos) from the row_pos binding instead of pos0 + t (continuous batching). */
  rowPositions?: boolean;
}

export function attentionVariant(rows: number, cpuAdapter: boolean): AttentionVariant {
  return cpuAdapter || rows >= ATTENTION_ROWS_MIN ? 'rows' : 'keys';
}

/** attention.wgsl's bindings by name (both entry points). */
export type AttentionBinding = 'params' | 'q' | 'k_cache' | 'v_cache' | 'out' | 'row_pos';

export function planAttention(s: AttentionShape): KernelPlan<AttentionBinding> {
  if (s.nHeads % s.nKvHeads !== 0) throw new RangeError(`attention: ${s.nHeads} heads is not a multiple of ${s.nKvHeads} kv heads`);
  const variant = s.variant ?? attentionVariant(s.rows, false);
  if (variant === 'keys' && (s.rows > MAX_WORKGROUPS_PER_DIM || s.nHeads > MAX_WORKGROUPS_PER_DIM)) {
    throw new RangeError(`attention: ${s.rows} rows × ${s.nHeads} heads exceed the dispatch limit`);
  }
  const acc = Math.ceil(s.headDim / ATTENTION_WG);
  const kvRead = (s.pos0 + s.rows) * s.nKvHeads * s.headDim * (s.kvF16 ? 2 : 4);
  return {
    spec: {
      shader: 'attention.wgsl',
      entryPoint: variant === 'keys' ? 'main' : 'main_rows',
      defines: { WG: ATTENTION_WG, HEAD_DIM: s.headDim, ACC: acc, KV_F16: s.kvF16, ROW_POSITIONS: !!s.rowPositions },
      label: `attention_${variant}_hd${s.headDim}_${s.kvF16 ? 'f16' : 'f32'}kv${s.rowPositions ? '_rowpos' : ''}`,
    },
    workgroups: variant === 'keys' ? [s.nHeads, Math.max(1, s.rows), 1] : grid1d(Math.ceil((s.rows * s.nHeads) / ATTENTION_WG)),
    uniforms: packUniforms([s.rows, s.pos0, s.nHeads, s.nKvHeads, 1 / Math.sqrt(s.headDim), s.qStride ?? s.nHeads * s.headDim], 'uuuufu'),
    bindings: ['params', 'q', 'k_cache', 'v_cache', 'out', ...(s.rowPositions ? ['row_pos' as const] : [])],
    // q may sit in a wider fused q|k|v buffer (bound whole): its rows' q part; K and V up to the last position.
    // With row positions the keys read depend on each row's pos; pos0 + rows stands in for them.
    reads: { q: s.rows * s.nHeads * s.headDim * 4, k_cache: kvRead, v_cache: kvRead, out: 0, row_pos: s.rowPositions ? s.rows * 8 : 0 },
  };
}
