// Plan for kernels/embedding.wgsl: gather embedding rows for a chunk of token ids.
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

/** Invocations per workgroup: one element each; 256 is a safe size on every adapter. */
export const EMBEDDING_WG = 256;

export interface EmbeddingShape {
  rows: number;
  dim: number;
  /** Vocabulary rows [rowStart, rowStart + rowCount) held by the bound table buffer. */
  rowStart: number;
  rowCount: number;
  tableF16: boolean;
}

/** embedding.wgsl's bindings by name. */
export type EmbeddingBinding = 'params' | 'ids' | 'table' | 'out';

export function planEmbedding(s: EmbeddingShape): KernelPlan<EmbeddingBinding> {
  const flags = s.tableF16 ? 'f16' : 'f32';
  return {
    spec: { shader: 'embedding.wgsl', defines: { WG: EMBEDDING_WG, TABLE_F16: s.tableF16 }, label: `embedding_${flags}` },
    workgroups: grid1d(Math.ceil((s.rows * s.dim) / EMBEDDING_WG)),
    uniforms: packUniforms([s.rows, s.dim, s.rowStart, s.rowCount], 'uuuu'),
    bindings: ['params', 'ids', 'table', 'out'],
    // At most one table row per id falls in this part (the whole call's rows when the table is one part).
    reads: { ids: s.rows * 4, table: Math.min(s.rows, s.rowCount) * s.dim * (s.tableF16 ? 2 : 4), out: 0 },
  };
}

/**
 * Splits a [vocab, dim] table into row ranges that each fit one storage binding.
 * `elementBytes` is 4 (f32) or 2 (f16).
 */
export function embeddingParts(vocab: number, dim: number, elementBytes: number, maxBindingBytes: number): Array<{ rowStart: number; rowCount: number }> {
  const rowsPerPart = Math.floor(maxBindingBytes / (dim * elementBytes));
  if (rowsPerPart < 1) throw new RangeError(`one embedding row (${dim} × ${elementBytes} B) exceeds the storage binding limit ${maxBindingBytes}`);
  const parts: Array<{ rowStart: number; rowCount: number }> = [];
  for (let r = 0; r < vocab; r += rowsPerPart) parts.push({ rowStart: r, rowCount: Math.min(rowsPerPart, vocab - r) });
  return parts;
}
