import { beforeAll, describe, expect, it } from 'vitest';
import {
  cholesky, gram, matmul, matmulSymmetricRight, matrix, multiplyLowerInPlace, multiplyLowerBlocked,
  solveTriangular, svd, symEig, symEigLargest, symEigTop, symmetricRank2k, symmetrizeFromUpper,
} from '../../quant/linalg.js';
import { ensureNativeBuilt, maxAbsDiff, naiveMatmul, randomMat, transposeOf } from './helpers.js';
import { LinalgError, NotPositiveDefiniteError } from '../../quant/errors.js';

beforeAll(ensureNativeBuilt);

function spd(n: number, seed: number) {
  const x = randomMat(3 * n, n, seed);
  return gram(x, 'AtA');
}

describe('linalg (LAPACK/BLAS through quant/native)', () => {
  it('matmul matches plain loops for every transpose combination (seed 1)', () => {
    const a = randomMat(5, 7, 1);
    const b = randomMat(7, 3, 2);
    const ref = naiveMatmul(a, b);
    expect(maxAbsDiff(matmul(a, b).data, ref.data)).toBeLessThan(1e-12);
    expect(maxAbsDiff(matmul(transposeOf(a), b, { transA: true }).data, ref.data)).toBeLessThan(1e-12);
    expect(maxAbsDiff(matmul(a, transposeOf(b), { transB: true }).data, ref.data)).toBeLessThan(1e-12);
    expect(maxAbsDiff(matmul(transposeOf(a), transposeOf(b), { transA: true, transB: true }).data, ref.data)).toBeLessThan(1e-12);
    expect(() => matmul(a, a)).toThrow(/inner dimensions differ/);
  });

  it('gram and symmetric/triangular products match plain loops (seed 3)', () => {
    const a = randomMat(6, 4, 3);
    expect(maxAbsDiff(gram(a, 'AtA').data, naiveMatmul(transposeOf(a), a).data)).toBeLessThan(1e-12);
    expect(maxAbsDiff(gram(a, 'AAt').data, naiveMatmul(a, transposeOf(a)).data)).toBeLessThan(1e-12);
    const h = spd(4, 4);
    expect(maxAbsDiff(matmulSymmetricRight(a, h).data, naiveMatmul(a, h).data)).toBeLessThan(1e-10);
    const l = cholesky(h);
    const b = randomMat(4, 3, 5);
    expect(maxAbsDiff(multiplyLowerInPlace(l, matrix(4, 3, b.data.slice()), 'left').data, naiveMatmul(l, b).data)).toBeLessThan(1e-10);
    expect(maxAbsDiff(multiplyLowerInPlace(l, matrix(4, 3, b.data.slice()), 'left', true).data, naiveMatmul(transposeOf(l), b).data)).toBeLessThan(1e-10);
    // B · tril(L) by blocks (3 does not divide 10), the upper triangle of the input never read
    const big = randomMat(10, 10, 17);
    const lower = matrix(10, 10, big.data.map((v, i) => (i % 10 <= Math.floor(i / 10) ? v : 0)));
    const bb = randomMat(5, 10, 18);
    expect(maxAbsDiff(multiplyLowerBlocked(bb, big, 3).data, naiveMatmul(bb, lower).data)).toBeLessThan(1e-12);
    const c = randomMat(3, 4, 6);
    expect(maxAbsDiff(multiplyLowerInPlace(l, matrix(3, 4, c.data.slice()), 'right').data, naiveMatmul(c, l).data)).toBeLessThan(1e-10);
  });

  it('symmetric rank-2k update and tiled symmetrization (n = 150 spans several tiles, seed 14)', () => {
    const a = randomMat(150, 5, 14);
    const b = randomMat(150, 5, 15);
    const ref = naiveMatmul(a, transposeOf(b));
    const c = symmetricRank2k(a, b);
    for (let i = 0; i < 150; i++) for (let j = 0; j < 150; j++) {
      expect(Math.abs(c.data[i * 150 + j]! - (ref.data[i * 150 + j]! + ref.data[j * 150 + i]!))).toBeLessThan(1e-12);
    }
    const u = randomMat(150, 150, 16);
    symmetrizeFromUpper(u);
    for (let i = 0; i < 150; i++) for (let j = 0; j < i; j++) expect(u.data[i * 150 + j]).toBe(u.data[j * 150 + i]);
  });

  it('cholesky gives lower L with L Lᵀ = A, and names the failing minor otherwise (seed 7)', () => {
    const h = spd(9, 7);
    const l = cholesky(h);
    for (let i = 0; i < 9; i++) for (let j = i + 1; j < 9; j++) expect(l.data[i * 9 + j]).toBe(0);
    expect(maxAbsDiff(naiveMatmul(l, transposeOf(l)).data, h.data)).toBeLessThan(1e-10);
    const bad = matrix(3, 3, Float64Array.from([1, 2, 0, 2, 1, 0, 0, 0, 1]));
    let caught: unknown;
    try {
      cholesky(bad);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NotPositiveDefiniteError);
    expect((caught as NotPositiveDefiniteError).minor).toBe(2);
    expect(() => cholesky(matrix(2, 3))).toThrow(LinalgError);
  });

  it('solveTriangular solves L X = B and Lᵀ X = B (seed 8)', () => {
    const l = cholesky(spd(6, 8));
    const b = randomMat(6, 2, 9);
    const x = solveTriangular(l, b, { lower: true });
    expect(maxAbsDiff(naiveMatmul(l, x).data, b.data)).toBeLessThan(1e-9);
    const xt = solveTriangular(l, b, { lower: true, trans: true });
    expect(maxAbsDiff(naiveMatmul(transposeOf(l), xt).data, b.data)).toBeLessThan(1e-9);
  });

  it('svd reconstructs A with orthonormal factors, descending values (seed 10)', () => {
    for (const [m, n] of [[7, 4], [4, 7]] as const) {
      const a = randomMat(m, n, 10 + m);
      const { u, s, vt } = svd(a);
      const k = Math.min(m, n);
      expect(u!.rows).toBe(m);
      expect(vt!.cols).toBe(n);
      const us = matrix(m, k);
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us.data[i * k + j] = u!.data[i * k + j]! * s[j]!;
      expect(maxAbsDiff(naiveMatmul(us, vt!).data, a.data)).toBeLessThan(1e-10);
      for (let j = 1; j < k; j++) expect(s[j]!).toBeLessThanOrEqual(s[j - 1]!);
      expect(maxAbsDiff(svd(a, { vectors: false }).s, s)).toBeLessThan(1e-12);
    }
  });

  it('symEig, symEigTop and symEigLargest agree with each other and with svd (seed 12)', () => {
    const a = randomMat(12, 8, 12);
    const g = gram(a, 'AtA');
    const full = symEig(g);
    const s = svd(a, { vectors: false }).s;
    expect(maxAbsDiff(full.values.map(Math.sqrt), s)).toBeLessThan(1e-10);
    let seen: Float64Array | undefined;
    const top = symEigTop(g, (values) => {
      seen = values;
      return 3;
    });
    expect(maxAbsDiff(seen!, full.values)).toBeLessThan(1e-10);
    expect(top.vectors.rows).toBe(3);
    const largest = symEigLargest(g, 3);
    expect(maxAbsDiff(largest.values, full.values.subarray(0, 3))).toBeLessThan(1e-10);
    for (let r = 0; r < 3; r++) {
      // eigenvectors are defined up to sign: compare |⟨v_top, v_full⟩| = 1 and check A v = λ v
      let dot = 0;
      let dot2 = 0;
      for (let j = 0; j < 8; j++) {
        dot += top.vectors.data[r * 8 + j]! * full.vectors!.data[r * 8 + j]!;
        dot2 += largest.vectors.data[r * 8 + j]! * full.vectors!.data[r * 8 + j]!;
      }
      expect(Math.abs(dot)).toBeCloseTo(1, 9);
      expect(Math.abs(dot2)).toBeCloseTo(1, 9);
    }
  });

  it('bad shapes are LinalgErrors or TypeErrors, never crashes', () => {
    expect(() => symEigTop(matrix(3, 3), 4)).toThrow(LinalgError);
    expect(() => matrix(2, 2, new Float64Array(3))).toThrow(LinalgError);
    expect(() => matmul(matrix(2, 2), matrix(2, 2), { out: matrix(3, 3) })).toThrow(/out is/);
  });
});
