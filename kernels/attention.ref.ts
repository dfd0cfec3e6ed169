// CPU reference for kernels/attention.wgsl (float64): q [rows, qStride] (head h at h·hd), caches
// [maxSeq, nKv, hd], returns out [rows, nHeads, hd]; row t attends to positions 0..pos0+t, or with
// `rowPos` ([rows, 2] (kvBase, pos)) to cache rows kvBase..kvBase+pos.
export function attentionRef(
  s: { rows: number; pos0: number; nHeads: number; nKvHeads: number; headDim: number; qStride?: number },
  q: ArrayLike<number>, kCache: ArrayLike<number>, vCache: ArrayLike<number>, rowPos?: Uint32Array,
): Float64Array {
  const hd = s.headDim;
  const out = new Float64Array(s.rows * s.nHeads * hd);
  const group = s.nHeads / s.nKvHeads;
  for (let t = 0; t < s.rows; t++) {
    const n = (rowPos ? rowPos[2 * t + 1]! : s.pos0 + t) + 1;
    const base = rowPos ? rowPos[2 * t]! : 0;
    for (let h = 0; h < s.nHeads; h++) {
      const g = Math.floor(h / group);
      const qb = t * (s.qStride ?? s.nHeads * hd) + h * hd;
      const ob = (t * s.nHeads + h) * hd;
      const scores = new Float64Array(n);
      let mx = -Infinity;
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[qb + d]! * kCache[((base + j) * s.nKvHeads + g) * hd + d]!;
        scores[j] = dot / Math.sqrt(hd);
        mx = Math.max(mx, scores[j]!);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += (scores[j] = Math.exp(scores[j]! - mx));
      for (let j = 0; j < n; j++) {
        const w = scores[j]! / sum;
        for (let d = 0; d < hd; d++) out[ob + d] += w * vCache[((base + j) * s.nKvHeads + g) * hd + d]!;
      }
    }
  }
  return out;
}
