// Shared by the quant tests: the native LAPACK build (built on demand), seeded data, small matrix utils.
import { execFileSync } from 'node:child_process';
import { nativeAddonPath, matrix, type Mat } from '../../quant/linalg.js';
import { seededRandom } from '../../quant/stats.js';

export function ensureNativeBuilt(): void {
  if (nativeAddonPath()) return;
  execFileSync('npx', ['node-gyp', 'rebuild', '-C', 'quant/native'], { stdio: 'inherit' });
}

/** Standard normal samples from a seeded PRNG (Box–Muller). */
export function gaussian(seed: number): () => number {
  const u = seededRandom(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export function randomMat(rows: number, cols: number, seed: number, scale = 1): Mat {
  const g = gaussian(seed);
  const m = matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = g() * scale;
  return m;
}

export function naiveMatmul(a: Mat, b: Mat): Mat {
  const c = matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k]!;
      for (let j = 0; j < b.cols; j++) c.data[i * b.cols + j] += v * b.data[k * b.cols + j]!;
    }
  return c;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function transposeOf(a: Mat): Mat {
  const t = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j]!;
  return t;
}
