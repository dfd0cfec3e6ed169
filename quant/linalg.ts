// Double-precision linear algebra for the quantizer: typed row-major wrappers over the LAPACK/BLAS
// binding in quant/native (LAPACKE + OpenBLAS). LAPACK is column-major; a row-major matrix is the
// column-major storage of its transpose, so most calls below reinterpret buffers instead of copying.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { LinalgError, NotPositiveDefiniteError } from './errors.js';

/** A dense row-major matrix: element (i, j) at data[i * cols + j]. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

interface NativeLapack {
  potrf(uplo: 'L' | 'U', n: number, a: Float64Array): number;
  trtrs(uplo: 'L' | 'U', trans: 'N' | 'T', diag: 'N' | 'U', n: number, nrhs: number, a: Float64Array, b: Float64Array): number;
  gesdd(jobz: 'N' | 'S', m: number, n: number, a: Float64Array, s: Float64Array, u?: Float64Array, vt?: Float64Array): number;
  syevd(jobz: 'N' | 'V', n: number, a: Float64Array, w: Float64Array): number;
  syevr(n: number, a: Float64Array, il: number, iu: number, w: Float64Array, z: Float64Array): number;
  sytrd(n: number, a: Float64Array, d: Float64Array, e: Float64Array, tau: Float64Array): number;
  sterf(n: number, d: Float64Array, e: Float64Array): number;
  stemr(n: number, d: Float64Array, e: Float64Array, il: number, iu: number, w: Float64Array, z: Float64Array): number;
  ormtr(n: number, k: number, a: Float64Array, tau: Float64Array, z: Float64Array): number;
  gemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: Float64Array, lda: number,
    b: Float64Array, ldb: number, beta: number, c: Float64Array, ldc: number): void;
  syrk(trans: boolean, n: number, k: number, alpha: number, a: Float64Array, lda: number, beta: number, c: Float64Array, ldc: number): void;
  syr2k(n: number, k: number, alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number): void;
  symmRight(m: number, n: number, alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number,
    beta: number, c: Float64Array, ldc: number): void;
  trmm(side: 'L' | 'R', lower: boolean, transA: boolean, m: number, n: number, alpha: number, a: Float64Array, lda: number,
    b: Float64Array, ldb: number): void;
  threads(set?: number): number;
}

export const NATIVE_BUILD_HINT =
  'build it with `npm run build:native` (needs liblapacke-dev and libopenblas-dev: `bash scripts/install-system.sh` as root)';

/** Where the compiled addon lives, from quant/ (vitest, tsx) or dist/quant/ (compiled). */
export function nativeAddonPath(): string | undefined {
  const candidates = [
    new URL('./native/build/Release/aser_lapack.node', import.meta.url),
    new URL('../../quant/native/build/Release/aser_lapack.node', import.meta.url),
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  return undefined;
}

let native: NativeLapack | undefined;
function lapack(): NativeLapack {
  if (native) return native;
  const path = nativeAddonPath();
  if (!path) throw new LinalgError(`the LAPACK binding quant/native/build/Release/aser_lapack.node is missing: ${NATIVE_BUILD_HINT}`);
  try {
    native = createRequire(import.meta.url)(path) as NativeLapack;
  } catch (err) {
    throw new LinalgError(`cannot load the LAPACK binding ${path} (${(err as Error).message}); ${NATIVE_BUILD_HINT}`);
  }
  return native;
}

/** OpenBLAS worker threads (optionally setting them first). */
export function blasThreads(set?: number): number {
  return lapack().threads(set);
}

export function matrix(rows: number, cols: number, data?: Float64Array): Mat {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new LinalgError(`matrix: bad shape [${rows}, ${cols}]`);
  }
  if (data && data.length !== rows * cols) throw new LinalgError(`matrix: ${data.length} elements for shape [${rows}, ${cols}]`);
  return { rows, cols, data: data ?? new Float64Array(rows * cols) };
}

export function fromF32(rows: number, cols: number, data: Float32Array): Mat {
  if (data.length !== rows * cols) throw new LinalgError(`fromF32: ${data.length} elements for shape [${rows}, ${cols}]`);
  return { rows, cols, data: Float64Array.from(data) };
}

export function transpose(a: Mat): Mat {
  const t = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j]!;
  return t;
}

function checkSquare(a: Mat, what: string): number {
  if (a.rows !== a.cols) throw new LinalgError(`${what}: matrix must be square, got [${a.rows}, ${a.cols}]`);
  return a.rows;
}

/** Copies the upper triangle onto the lower one (BLAS syrk/syr2k fill only one). */
export function symmetrizeFromUpper(a: Mat): Mat {
  const n = checkSquare(a, 'symmetrizeFromUpper');
  const d = a.data;
  // Tiled so the strided reads stay in cache (matters at n = 14336: 1.6 GB).
  const B = 64;
  for (let i0 = 0; i0 < n; i0 += B) {
    const i1 = Math.min(n, i0 + B);
    for (let j0 = 0; j0 <= i0; j0 += B) {
      const j1 = Math.min(n, j0 + B);
      for (let i = i0; i < i1; i++) {
        const row = i * n;
        const jEnd = Math.min(j1, i);
        for (let j = j0; j < jEnd; j++) d[row + j] = d[j * n + i]!;
      }
    }
  }
  return a;
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** Accumulate into `out` (C = alpha op(A) op(B) + beta C); default 0. */
  beta?: number;
  out?: Mat;
}

/** C = alpha · op(A) · op(B) (+ beta C), dgemm. */
export function matmul(a: Mat, b: Mat, opts: MatmulOptions = {}): Mat {
  const ta = opts.transA ?? false;
  const tb = opts.transB ?? false;
  const m = ta ? a.cols : a.rows;
  const k = ta ? a.rows : a.cols;
  const kb = tb ? b.cols : b.rows;
  const n = tb ? b.rows : b.cols;
  if (k !== kb) {
    throw new LinalgError(`matmul: inner dimensions differ: op(A) is [${m}, ${k}], op(B) is [${kb}, ${n}]`);
  }
  const c = opts.out ?? matrix(m, n);
  if (c.rows !== m || c.cols !== n) throw new LinalgError(`matmul: out is [${c.rows}, ${c.cols}], needs [${m}, ${n}]`);
  if (k === 0) {
    if (opts.beta === undefined || opts.beta === 0) c.data.fill(0);
    else c.data.forEach((v, i) => (c.data[i] = v * opts.beta!));
    return c;
  }
  lapack().gemm(ta, tb, m, n, k, opts.alpha ?? 1, a.data, Math.max(1, a.cols), b.data, Math.max(1, b.cols), opts.beta ?? 0, c.data, Math.max(1, n));
  return c;
}

/**
 * Gram matrix, full symmetric: 'AtA' → Aᵀ A ([cols, cols]), 'AAt' → A Aᵀ ([rows, rows]) (dsyrk).
 * With `into`, accumulates: into += alpha · gram (upper triangle only; call symmetrizeFromUpper after the last).
 */
export function gram(a: Mat, which: 'AtA' | 'AAt', opts: { alpha?: number; into?: Mat } = {}): Mat {
  const trans = which === 'AtA';
  const n = trans ? a.cols : a.rows;
  const k = trans ? a.rows : a.cols;
  const c = opts.into ?? matrix(n, n);
  if (c.rows !== n || c.cols !== n) throw new LinalgError(`gram: into is [${c.rows}, ${c.cols}], needs [${n}, ${n}]`);
  if (k > 0 && n > 0) lapack().syrk(trans, n, k, opts.alpha ?? 1, a.data, Math.max(1, a.cols), opts.into ? 1 : 0, c.data, Math.max(1, n));
  return opts.into ? c : symmetrizeFromUpper(c);
}

/** Symmetric rank-2k update: A Bᵀ + B Aᵀ (A, B [n, k]), full symmetric [n, n] (dsyr2k). */
export function symmetricRank2k(a: Mat, b: Mat): Mat {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new LinalgError(`symmetricRank2k: A is [${a.rows}, ${a.cols}], B is [${b.rows}, ${b.cols}]`);
  const n = a.rows;
  const c = matrix(n, n);
  if (n > 0 && a.cols > 0) lapack().syr2k(n, a.cols, 1, a.data, a.cols, b.data, b.cols, 0, c.data, n);
  return symmetrizeFromUpper(c);
}

/** C = B · A for symmetric A (only its upper triangle is read), dsymm. */
export function matmulSymmetricRight(b: Mat, a: Mat): Mat {
  const n = checkSquare(a, 'matmulSymmetricRight');
  if (b.cols !== n) throw new LinalgError(`matmulSymmetricRight: B is [${b.rows}, ${b.cols}], A is [${n}, ${n}]`);
  const c = matrix(b.rows, n);
  if (b.rows > 0 && n > 0) lapack().symmRight(b.rows, n, 1, a.data, n, b.data, n, 0, c.data, n);
  return c;
}

/** In place: B ← op(L) · B (side 'left') or B ← B · op(L) (side 'right'), L lower triangular (dtrmm). */
export function multiplyLowerInPlace(l: Mat, b: Mat, side: 'left' | 'right', transL = false): Mat {
  const n = checkSquare(l, 'multiplyLowerInPlace');
  if ((side === 'left' ? b.rows : b.cols) !== n) {
    throw new LinalgError(`multiplyLowerInPlace: L is [${n}, ${n}], B is [${b.rows}, ${b.cols}] (side ${side})`);
  }
  if (b.rows > 0 && b.cols > 0) lapack().trmm(side === 'left' ? 'L' : 'R', true, transL, b.rows, b.cols, 1, l.data, n, b.data, b.cols);
  return b;
}

/**
 * B · tril(L) (L's lower triangle, diagonal included; the rest is not read), as a new matrix. Column
 * blocks: a dtrmm on each diagonal block and a dgemm for the blocks below it, because OpenBLAS's gemm
 * runs about 1.5–2x faster per flop than its trmm on this machine.
 */
export function multiplyLowerBlocked(b: Mat, l: Mat, blockSize = 1024): Mat {
  const n = checkSquare(l, 'multiplyLowerBlocked');
  if (b.cols !== n) throw new LinalgError(`multiplyLowerBlocked: B is [${b.rows}, ${b.cols}], L is [${n}, ${n}]`);
  const m = b.rows;
  const p = matrix(m, n, Float64Array.from(b.data));
  if (m === 0 || n === 0) return p;
  const L = lapack();
  for (let j0 = 0; j0 < n; j0 += blockSize) {
    const j1 = Math.min(n, j0 + blockSize);
    const w = j1 - j0;
    // P[:, J] = B[:, J] · tril(L[J, J]) + B[:, J1:] · L[J1:, J]
    L.trmm('R', true, false, m, w, 1, l.data.subarray(j0 * n + j0), n, p.data.subarray(j0), n);
    if (j1 < n) L.gemm(false, false, m, w, n - j1, 1, b.data.subarray(j1), n, l.data.subarray(j1 * n + j0), n, 1, p.data.subarray(j0), n);
  }
  return p;
}

/**
 * Cholesky factor: lower-triangular L with A = L Lᵀ (A symmetric; only its lower triangle is read).
 * Throws NotPositiveDefiniteError naming the failing minor.
 */
export function cholesky(a: Mat): Mat {
  const n = checkSquare(a, 'cholesky');
  const l = matrix(n, n, Float64Array.from(a.data));
  // Row-major lower = column-major upper: dpotrf('U') on the same buffer yields L in row-major.
  const info = lapack().potrf('U', n, l.data);
  if (info > 0) throw new NotPositiveDefiniteError(n, info);
  for (let i = 0; i < n; i++) l.data.fill(0, i * n + i + 1, (i + 1) * n);
  return l;
}

/** Solves op(T) X = B for triangular T (dtrtrs); returns X, B untouched. */
export function solveTriangular(t: Mat, b: Mat, opts: { lower: boolean; trans?: boolean }): Mat {
  const n = checkSquare(t, 'solveTriangular');
  if (b.rows !== n) throw new LinalgError(`solveTriangular: T is [${n}, ${n}], B is [${b.rows}, ${b.cols}]`);
  // The row-major buffer of T is column-major Tᵀ: flip uplo and trans. B is transposed in and out.
  const uplo = opts.lower ? 'U' : 'L';
  const trans = opts.trans ? 'N' : 'T';
  const colMajorB = transpose(b);
  const info = lapack().trtrs(uplo, trans, 'N', n, b.cols, t.data, colMajorB.data);
  if (info > 0) throw new LinalgError(`solveTriangular: matrix is singular (zero diagonal element ${info})`, 'dtrtrs', info);
  return matrix(n, b.cols, transpose({ rows: b.cols, cols: n, data: colMajorB.data }).data);
}

export interface Svd {
  /** Singular values, descending, length min(m, n). */
  s: Float64Array;
  /** [m, k] left singular vectors as columns (absent when vectors: false). */
  u?: Mat;
  /** [k, n] right singular vectors as rows. */
  vt?: Mat;
}

/** Thin SVD A = U diag(s) Vᵀ by divide and conquer (dgesdd). A is not modified. */
export function svd(a: Mat, opts: { vectors?: boolean } = {}): Svd {
  const m = a.rows;
  const n = a.cols;
  const k = Math.min(m, n);
  const work = Float64Array.from(a.data);
  const s = new Float64Array(k);
  // Row-major A [m, n] is column-major Aᵀ [n, m] = U' S V'ᵀ, so A = V' S U'ᵀ: LAPACK's vt buffer read
  // row-major is our U [m, k], its u buffer read row-major is our Vᵀ [k, n].
  if (opts.vectors === false) {
    const info = lapack().gesdd('N', n, m, work, s);
    if (info > 0) throw new LinalgError(`svd: dgesdd did not converge (info ${info})`, 'dgesdd', info);
    return { s };
  }
  const vtBuf = new Float64Array(k * n);
  const uBuf = new Float64Array(m * k);
  const info = lapack().gesdd('S', n, m, work, s, vtBuf, uBuf);
  if (info > 0) throw new LinalgError(`svd: dgesdd did not converge (info ${info})`, 'dgesdd', info);
  return { s, u: matrix(m, k, uBuf), vt: matrix(k, n, vtBuf) };
}

export interface SymEig {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** Eigenvectors as rows, [count, n], row i belonging to values[i]. */
  vectors?: Mat;
}

function rowsDescending(ascendingRows: Float64Array, count: number, n: number): Mat {
  const out = matrix(count, n);
  for (let i = 0; i < count; i++) out.data.set(ascendingRows.subarray((count - 1 - i) * n, (count - i) * n), i * n);
  return out;
}

/** All eigenvalues (and, optionally, all eigenvectors) of a symmetric matrix (dsyevd). A is not modified. */
export function symEig(a: Mat, opts: { vectors?: boolean } = {}): SymEig {
  const n = checkSquare(a, 'symEig');
  const work = Float64Array.from(a.data);
  const w = new Float64Array(n);
  const vectors = opts.vectors ?? true;
  const info = lapack().syevd(vectors ? 'V' : 'N', n, work, w);
  if (info > 0) throw new LinalgError(`symEig: dsyevd did not converge (info ${info})`, 'dsyevd', info);
  const values = w.slice().reverse();
  // Column-major eigenvector columns are row-major rows.
  return vectors ? { values, vectors: rowsDescending(work, n, n) } : { values };
}

/**
 * All eigenvalues (descending) and the eigenvectors of the `k` largest (rows of `vectors`, [k, n]),
 * with one tridiagonal reduction: dsytrd, then dsterf for every eigenvalue (O(n²)), then dstemr +
 * dormtr for only the wanted vectors. `k` may be a function of the eigenvalues (descending), so a rank
 * rule that needs the whole spectrum picks the count before any vector is computed. A is not modified.
 */
export function symEigTop(a: Mat, k: number | ((valuesDescending: Float64Array) => number)): Required<SymEig> {
  const n = checkSquare(a, 'symEigTop');
  if (n === 0) return { values: new Float64Array(0), vectors: matrix(0, 0) };
  const L = lapack();
  const reflectors = Float64Array.from(a.data);
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(1, n - 1));
  const tau = new Float64Array(Math.max(1, n - 1));
  L.sytrd(n, reflectors, d, e, tau);
  const w = Float64Array.from(d);
  const info = L.sterf(n, w, Float64Array.from(e));
  if (info > 0) throw new LinalgError(`symEigTop: dsterf did not converge (info ${info})`, 'dsterf', info);
  const values = w.reverse();
  const count = typeof k === 'number' ? k : k(values);
  if (!Number.isInteger(count) || count < 0 || count > n) throw new LinalgError(`symEigTop: k = ${count} outside 0..${n}`);
  if (count === 0) return { values, vectors: matrix(0, n) };
  const z = new Float64Array(n * count);
  const eFull = new Float64Array(n);
  eFull.set(e.subarray(0, n - 1));
  const found = L.stemr(n, Float64Array.from(d), eFull, n - count + 1, n, new Float64Array(n), z);
  if (found !== count) throw new LinalgError(`symEigTop: dstemr found ${found} of ${count} eigenvectors`, 'dstemr', found);
  L.ormtr(n, count, reflectors, tau, z);
  return { values, vectors: rowsDescending(z, count, n) };
}

/** The eigenpairs of the `k` largest eigenvalues only (dsyevr, MRRR): values descending, vectors as rows. */
export function symEigLargest(a: Mat, k: number): Required<SymEig> {
  const n = checkSquare(a, 'symEigLargest');
  if (!Number.isInteger(k) || k < 1 || k > n) throw new LinalgError(`symEigLargest: k = ${k} outside 1..${n}`);
  const work = Float64Array.from(a.data);
  const w = new Float64Array(n);
  const z = new Float64Array(n * k);
  const found = lapack().syevr(n, work, n - k + 1, n, w, z);
  if (found !== k) throw new LinalgError(`symEigLargest: dsyevr found ${found} of ${k} eigenpairs`, 'dsyevr', found);
  return { values: w.subarray(0, k).slice().reverse(), vectors: rowsDescending(z, k, n) };
}

/** Frobenius inner product ⟨A, B⟩ = Σ A_ij B_ij. */
export function frobeniusDot(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) throw new LinalgError(`frobeniusDot: lengths ${a.length} and ${b.length} differ`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
