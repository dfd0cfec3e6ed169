// Row-addressable weight sources for streamed loading: a weight is read a block of rows at a time in its
// stored dtype (bf16 from Hugging Face checkpoints), never widened to f32 on the host as a whole.
// Portable: bytes come from TensorRef.readRange (loaders/ implement it with positioned file reads).
import type { GgmlBlockRows, TensorDType, TensorRef } from '../core/model.js';
import { dequantizeGgmlBlocks } from '../core/ggml-blocks.js';
import { DTYPE_BYTES, bytesToF32 } from '../core/dtype.js';

export interface WeightRows {
  rows: number;
  cols: number;
  dtype: TensorDType;
  /** Raw little-endian bytes of rows [rowStart, rowStart + rowCount), rowCount·cols values of `dtype`. */
  read(rowStart: number, rowCount: number): Uint8Array;
  /** The same rows as stored block-quantized (GGUF), for dequantizing on the GPU; `dtype` is then 'f32'. */
  blocks?: GgmlBlockRows;
}

function checkRange(w: WeightRows, rowStart: number, rowCount: number, what: string): void {
  if (!(Number.isInteger(rowStart) && Number.isInteger(rowCount) && rowStart >= 0 && rowCount >= 0 && rowStart + rowCount <= w.rows)) {
    throw new RangeError(`${what}: rows [${rowStart}, ${rowStart + rowCount}) outside 0..${w.rows}`);
  }
}

/**
 * A 2-D tensor [rows, cols] (a 1-D one is one row). With readRange each read touches only its rows;
 * without it (in-memory sources) the whole tensor is read once on first use and kept by this object.
 */
export function tensorRows(t: TensorRef): WeightRows {
  const [rows, cols] = t.shape.length === 1 ? [1, t.shape[0]!] : [t.shape[0]!, t.shape.slice(1).reduce((a, b) => a * b, 1)];
  if (t.blocks) return blockRows(t.name, rows, cols, t.blocks);
  const rowBytes = cols * DTYPE_BYTES[t.dtype];
  let whole: Uint8Array | undefined;
  const w: WeightRows = {
    rows,
    cols,
    dtype: t.dtype,
    read(rowStart, rowCount) {
      checkRange(w, rowStart, rowCount, t.name);
      if (t.readRange) return t.readRange(rowStart * rowBytes, rowCount * rowBytes);
      whole ??= t.read();
      return whole.subarray(rowStart * rowBytes, (rowStart + rowCount) * rowBytes);
    },
  };
  return w;
}

/** Block-quantized rows: `read` dequantizes on the host (f32), `blocks` hands out the raw rows. */
function blockRows(name: string, rows: number, cols: number, blocks: GgmlBlockRows): WeightRows {
  const w: WeightRows = {
    rows,
    cols,
    dtype: 'f32',
    blocks,
    read(rowStart, rowCount) {
      checkRange(w, rowStart, rowCount, name);
      const f = dequantizeGgmlBlocks(blocks.format, blocks.readRows(rowStart, rowCount), rowCount * cols);
      return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    },
  };
  return w;
}

/** Tensors with the same column count stacked by rows (q|k|v, gate|up); mixed dtypes are read as f32. */
export function stackRows(parts: WeightRows[]): WeightRows {
  if (parts.length === 1) return parts[0]!;
  const cols = parts[0]!.cols;
  if (parts.some((p) => p.cols !== cols)) throw new RangeError(`stackRows: column counts differ (${parts.map((p) => p.cols).join(', ')})`);
  const sameDtype = parts.every((p) => p.dtype === parts[0]!.dtype);
  const dtype: TensorDType = sameDtype ? parts[0]!.dtype : 'f32';
  const src = sameDtype ? parts : parts.map(asF32Rows);
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const format = parts[0]!.blocks?.format;
  if (format && parts.every((p) => p.blocks?.format === format)) {
    // All in one block format (q|k|v of a Q4_0 file): stacked raw rows, dequantized where they land.
    const rowBytes = parts[0]!.blocks!.rowBytes;
    const stacked: GgmlBlockRows = {
      format,
      rowBytes,
      readRows: (rowStart, rowCount) => concatRows(parts.map((p) => ({ rows: p.rows, read: (a: number, n: number) => p.blocks!.readRows(a, n) })), rowStart, rowCount, rowBytes),
    };
    return blockRows('stackRows', rows, cols, stacked);
  }
  const elem = DTYPE_BYTES[dtype];
  const w: WeightRows = {
    rows,
    cols,
    dtype,
    read(rowStart, rowCount) {
      checkRange(w, rowStart, rowCount, 'stackRows');
      const out = new Uint8Array(rowCount * cols * elem);
      let base = 0, at = 0;
      for (const p of src) {
        const lo = Math.max(rowStart, base), hi = Math.min(rowStart + rowCount, base + p.rows);
        if (hi > lo) {
          out.set(p.read(lo - base, hi - lo), at);
          at += (hi - lo) * cols * elem;
        }
        base += p.rows;
      }
      return out;
    },
  };
  return w;
}

/** Rows [rowStart, rowStart + rowCount) of parts stacked by rows, each row `rowBytes` bytes. */
function concatRows(parts: Array<{ rows: number; read(rowStart: number, rowCount: number): Uint8Array }>, rowStart: number, rowCount: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(rowCount * rowBytes);
  let base = 0, at = 0;
  for (const p of parts) {
    const lo = Math.max(rowStart, base), hi = Math.min(rowStart + rowCount, base + p.rows);
    if (hi > lo) {
      out.set(p.read(lo - base, hi - lo), at);
      at += (hi - lo) * rowBytes;
    }
    base += p.rows;
  }
  return out;
}

/** The same rows widened to f32 on read. */
export function asF32Rows(w: WeightRows): WeightRows {
  if (w.dtype === 'f32') return w;
  return {
    rows: w.rows,
    cols: w.cols,
    dtype: 'f32',
    read(rowStart, rowCount) {
      const f = bytesToF32(w.read(rowStart, rowCount), w.dtype);
      return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    },
  };
}
