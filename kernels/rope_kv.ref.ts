// CPU reference for kernels/rope_kv.wgsl. q [rows, nHeads, hd] is rotated in place; k/v [rows, nKv, hd]
// are written (k rotated) into kCache/vCache [maxSeq, nKv, hd] at positions pos0.. . table as ropeTable().
// With `rowPos` ([rows, 2] (kvBase, pos)), row t is rotated by its pos and written at cache row kvBase + pos.
import type { RopeStyle } from '../core/model.js';

export function ropeKvRef(
  s: { rows: number; pos0: number; nHeads: number; nKvHeads: number; headDim: number; style: RopeStyle },
  q: Float64Array, k: Float32Array, v: Float32Array, table: Float32Array, kCache: Float64Array, vCache: Float64Array,
  rowPos?: Uint32Array,
): void {
  const half = s.headDim / 2;
  const pair = (j: number): [number, number] => (s.style === 'interleaved' ? [2 * j, 2 * j + 1] : [j, j + half]);
  for (let t = 0; t < s.rows; t++) {
    const pos = rowPos ? rowPos[2 * t + 1]! : s.pos0 + t;
    const cacheRow = rowPos ? rowPos[2 * t]! + pos : pos;
    for (let j = 0; j < half; j++) {
      const c = table[(pos * half + j) * 2]!;
      const sn = table[(pos * half + j) * 2 + 1]!;
      const [a, b] = pair(j);
      for (let h = 0; h < s.nHeads; h++) {
        const base = (t * s.nHeads + h) * s.headDim;
        const xa = q[base + a]!, xb = q[base + b]!;
        q[base + a] = xa * c - xb * sn;
        q[base + b] = xa * sn + xb * c;
      }
      for (let g = 0; g < s.nKvHeads; g++) {
        const src = (t * s.nKvHeads + g) * s.headDim;
        const dst = (cacheRow * s.nKvHeads + g) * s.headDim;
        const xa = k[src + a]!, xb = k[src + b]!;
        kCache[dst + a] = xa * c - xb * sn;
        kCache[dst + b] = xa * sn + xb * c;
        vCache[dst + a] = v[src + a]!;
        vCache[dst + b] = v[src + b]!;
      }
    }
  }
}
