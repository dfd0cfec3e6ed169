// L_A / L_B in 8 bits: symmetric int8 with one scale per rank index j (column j of L_A, row j of L_B).
// Both scales follow the rank index, so the kernels apply them to t (r values per token) instead of to
// every factor element: kernel A scales its partial t[j] by laScale[j], kernel B t[j] by lbScale[j].
// Portable (the quantizer, the artifact reader and the kernels' plans share it).
import type { LowRankInt8, QuantizedLinear } from './quantized.js';

const QMAX = 127;

/**
 * Quantizes `rows`×`cols` row-major values with a scale per column (perColumn) or per row: scale =
 * fl(absmax / 127), q = round(v / scale) (half away from zero), clamped to ±127; an all-zero line has
 * scale 0 and q 0.
 */
function quantizeLines(v: Float32Array, rows: number, cols: number, perColumn: boolean): { q: Int8Array; scale: Float32Array } {
  const lines = perColumn ? cols : rows;
  const len = perColumn ? rows : cols;
  const at = (line: number, i: number) => (perColumn ? i * cols + line : line * cols + i);
  const q = new Int8Array(rows * cols);
  const scale = new Float32Array(lines);
  for (let l = 0; l < lines; l++) {
    let amax = 0;
    for (let i = 0; i < len; i++) amax = Math.max(amax, Math.abs(v[at(l, i)]!));
    const s = Math.fround(amax / QMAX);
    scale[l] = s;
    if (s === 0) continue;
    for (let i = 0; i < len; i++) {
      const idx = at(l, i);
      q[idx] = Math.max(-QMAX, Math.min(QMAX, Math.round(v[idx]! / s)));
    }
  }
  return { q, scale };
}

/** int8 factors of L_A [in, rank] (scale per column) and L_B [rank, out] (scale per row). */
export function quantizeLowRankInt8(la: Float32Array, lb: Float32Array, inFeatures: number, outFeatures: number, rank: number): LowRankInt8 {
  const a = quantizeLines(la, inFeatures, rank, true);
  const b = quantizeLines(lb, rank, outFeatures, false);
  return { la: a.q, laScale: a.scale, lb: b.q, lbScale: b.scale };
}

/** The f32 values int8 factors stand for: L_A[k, j] = q·laScale[j], L_B[j, o] = q·lbScale[j] (each one f32 product). */
export function dequantizeLowRankInt8(f: LowRankInt8, inFeatures: number, outFeatures: number, rank: number): { la: Float32Array; lb: Float32Array } {
  const la = new Float32Array(inFeatures * rank);
  for (let k = 0; k < inFeatures; k++) for (let j = 0; j < rank; j++) la[k * rank + j] = f.la[k * rank + j]! * f.laScale[j]!;
  const lb = new Float32Array(rank * outFeatures);
  for (let j = 0; j < rank; j++) for (let o = 0; o < outFeatures; o++) lb[j * outFeatures + o] = f.lb[j * outFeatures + o]! * f.lbScale[j]!;
  return { la, lb };
}

/**
 * The linear with its side path in 8 bits: int8 factors, and la / lb replaced by the values they
 * stand for (what the artifact then stores and every reader sees). Rank 0 and already-int8 linears
 * come back as they are.
 */
export function withInt8LowRank(q: QuantizedLinear): QuantizedLinear {
  if (q.rank === 0 || q.lowRankInt8) return q;
  const f = quantizeLowRankInt8(q.la!, q.lb!, q.inFeatures, q.outFeatures, q.rank);
  return { ...q, ...dequantizeLowRankInt8(f, q.inFeatures, q.outFeatures, q.rank), lowRankInt8: f };
}

/** Bytes int8 side-path factors take: one byte a value and one f32 scale per rank index for each factor. */
export function lowRankInt8Bytes(inFeatures: number, outFeatures: number, rank: number): number {
  return rank * (inFeatures + outFeatures) + 2 * rank * 4;
}

/** int8 values packed 4 to a u32 word, little-endian (value i in byte i % 4 of word i / 4), zero padded. */
export function packInt8Words(v: Int8Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(v.length / 4));
  new Int8Array(words.buffer).set(v);
  return words;
}
