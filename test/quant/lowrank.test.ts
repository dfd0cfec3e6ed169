import { beforeAll, describe, expect, it } from 'vitest';
import { cholesky, gram, matrix, svd, type Mat } from '../../quant/linalg.js';
import {
  dampedCholesky, lowRankReconstruction, outputErrorSq, sandwich, weightedResidualSq,
} from '../../quant/lowrank.js';
import { effectiveRank, rankForAlpha, sidePathFlopsRatio } from '../../quant/rank.js';
import { ensureNativeBuilt, maxAbsDiff, naiveMatmul, randomMat, transposeOf } from './helpers.js';

beforeAll(ensureNativeBuilt);

/** tr(R H Rᵀ) by plain loops. */
function hNormSq(r: Mat, h: Mat): number {
  return naiveMatmul(naiveMatmul(r, h), transposeOf(r)).data.reduce((acc, v, i) => (i % (r.rows + 1) === 0 ? acc + v : acc), 0);
}

/** Correlated activations with a few loud channels: X = Z·A, channels 0 and 5 ×30. */
function activations(tokens: number, features: number, seed: number): Mat {
  const x = naiveMatmul(randomMat(tokens, features, seed), randomMat(features, features, seed + 1, 0.4));
  for (let t = 0; t < tokens; t++) {
    x.data[t * features] *= 30;
    x.data[t * features + 5] *= 30;
  }
  return x;
}

describe('whitened low-rank reconstruction', () => {
  for (const [out, inF] of [[12, 20], [20, 12]] as const) {
    it(`[${out}, ${inF}]: loss after rank r equals sqrt(Σ_{i>r} σ_i²) of E·S (Gram over ${out <= inF ? 'out' : 'in'}, seed 21)`, () => {
      const h = gram(activations(200, inF, 21), 'AtA');
      const e = randomMat(out, inF, 23, 0.01);
      // reference spectrum: dgesdd of E S, S = chol(H)
      const s = cholesky(h);
      const ref = svd(naiveMatmul(e, s), { vectors: false }).s;
      for (const r of [0, 1, 4, 9]) {
        const rec = lowRankReconstruction(e, { kind: 'hessian', h }, { rank: r });
        expect(rec.rank).toBe(r);
        expect(rec.gram).toBe(out <= inF ? 'out' : 'in');
        expect(maxAbsDiff(rec.sigma, ref) / ref[0]!).toBeLessThan(1e-9);
        // explicit residual R = E − L_Bᵀ L_Aᵀ, its H-norm by plain loops
        const resid = matrix(out, inF, e.data.slice());
        const ehat = naiveMatmul(transposeOf(rec.lb), rec.laT);
        for (let i = 0; i < resid.data.length; i++) resid.data[i] -= ehat.data[i]!;
        let tail = 0;
        for (let i = r; i < ref.length; i++) tail += ref[i]! ** 2;
        const loss = Math.sqrt(hNormSq(resid, h));
        expect(Math.abs(loss - Math.sqrt(tail)) / Math.sqrt(rec.errorSq)).toBeLessThan(1e-7);
        expect(Math.abs(Math.sqrt(rec.residualSq) - Math.sqrt(tail)) / Math.sqrt(rec.errorSq)).toBeLessThan(1e-7);
        expect(Math.abs(rec.errorSq - hNormSq(e, h)) / rec.errorSq).toBeLessThan(1e-10);
      }
    });
  }

  it('sandwich: E H Eᵀ through a triangular product and a rank-2k update, H left intact (seed 25)', () => {
    const h = gram(randomMat(90, 70, 25), 'AtA');
    const before = h.data.slice();
    const e = randomMat(9, 70, 26);
    const ref = naiveMatmul(naiveMatmul(e, h), transposeOf(e));
    expect(maxAbsDiff(sandwich(e, h).data, ref.data) / Math.abs(ref.data[0]!)).toBeLessThan(1e-12);
    expect(h.data).toEqual(before);
  });

  it('the α rule picks the rank from the full spectrum (seed 31)', () => {
    const h = gram(activations(100, 16, 31), 'AtA');
    const e = randomMat(16, 16, 33, 0.01);
    const rec = lowRankReconstruction(e, { kind: 'hessian', h }, { alpha: 0.5 });
    expect(rec.rank).toBe(rankForAlpha(rec.sigma, 0.5));
    expect(lowRankReconstruction(e, { kind: 'hessian', h }, { alpha: 0.5, maxRank: 2 }).rank).toBe(Math.min(2, rec.rank));
  });

  it('diagonal weighting (LoRC, L2QER) is the SVD of E·diag(s) (seed 41)', () => {
    const e = randomMat(10, 14, 41);
    const scale = Float64Array.from({ length: 14 }, (_, j) => 1 + j);
    const es = matrix(10, 14, e.data.map((v, i) => v * scale[i % 14]!));
    const ref = svd(es, { vectors: false }).s;
    for (const [out, m] of [[10, e], [14, transposeOf(e)]] as const) {
      const sc = out === 10 ? scale : Float64Array.from({ length: 10 }, () => 1);
      const rec = lowRankReconstruction(m, { kind: 'diagonal', scale: sc }, { rank: 3 });
      const want = out === 10 ? ref : svd(m, { vectors: false }).s;
      expect(maxAbsDiff(rec.sigma, want) / want[0]!).toBeLessThan(1e-9);
    }
  });

  it('a singular H is damped only on the Cholesky route, and the damping is reported (seed 51)', () => {
    const x = randomMat(5, 8, 51); // 5 tokens, 8 channels: H has rank 5
    const h = gram(x, 'AtA');
    const { damping } = dampedCholesky(h);
    expect(damping).toBeGreaterThan(0);
    const wide = lowRankReconstruction(randomMat(4, 8, 52), { kind: 'hessian', h }, { rank: 2 });
    expect(wide.dampingUsed).toBe(0);
    const tall = lowRankReconstruction(randomMat(12, 8, 53), { kind: 'hessian', h }, { rank: 2 });
    expect(tall.dampingUsed).toBe(damping);
    expect(Number.isFinite(tall.residualSq)).toBe(true);
  });

  it('weightedResidualSq equals the explicit H-norm of E − L_Bᵀ L_Aᵀ for arbitrary factors (seed 61)', () => {
    const h = gram(randomMat(40, 9, 61), 'AtA');
    const e = randomMat(7, 9, 62);
    const laT = randomMat(3, 9, 63);
    const lb = randomMat(3, 7, 64);
    const resid = matrix(7, 9, e.data.slice());
    const ehat = naiveMatmul(transposeOf(lb), laT);
    for (let i = 0; i < resid.data.length; i++) resid.data[i] -= ehat.data[i]!;
    const want = hNormSq(resid, h);
    expect(Math.abs(weightedResidualSq(outputErrorSq(e, h), e, h, laT, lb) - want) / want).toBeLessThan(1e-10);
  });
});

describe('rank rule and effective rank', () => {
  it('smallest r with Σ_{i≤r} σ_i ≥ α Σσ', () => {
    const s = [4, 3, 2, 1]; // Σ = 10
    expect(rankForAlpha(s, 0.4)).toBe(1);
    expect(rankForAlpha(s, 0.41)).toBe(2);
    expect(rankForAlpha(s, 0.7)).toBe(2);
    expect(rankForAlpha(s, 0.9)).toBe(3);
    expect(rankForAlpha(s, 1)).toBe(4);
    expect(rankForAlpha([0, 0], 0.5)).toBe(0);
    expect(() => rankForAlpha(s, 0)).toThrow(RangeError);
    expect(() => rankForAlpha(s, 1.5)).toThrow(RangeError);
  });

  it('paper Table 4 (Qwen-7B, d = 4096): mean ranks give the "+FLOPs" column as 2r/d', () => {
    const table: Array<[number, number]> = [[59.93, 2.93], [49.6, 2.42], [30.58, 1.49], [14.0, 0.68], [5.41, 0.26]];
    for (const [r, pct] of table) expect(sidePathFlopsRatio(r, 4096, 4096) * 100).toBeCloseTo(pct, 2);
  });

  it('paper Table 4 sanity: on a flat-topped long-tailed spectrum of 4096 values, α = 0.1 … 0.015 give ranks in the same order and spread', () => {
    // σ_i = i^-0.3 (a long tail, as Fig. 2 shows for whitened errors)
    const s = Array.from({ length: 4096 }, (_, i) => Math.pow(i + 1, -0.3));
    const ranks = [0.1, 0.075, 0.05, 0.03, 0.015].map((a) => rankForAlpha(s, a));
    expect(ranks).toEqual([156, 105, 60, 30, 12]);
    // Table 4's mean ranks fall monotonically too, by a factor of ~11 from α = 0.1 to 0.015 (here 13).
    expect(ranks[0]! / ranks[4]!).toBeGreaterThan(5);
  });

  it('effective rank: exp of the entropy of σ/Σσ', () => {
    expect(effectiveRank([1, 1, 1, 1])).toBeCloseTo(4, 12);
    expect(effectiveRank([5, 0, 0])).toBeCloseTo(1, 12);
    expect(effectiveRank([])).toBe(0);
    const p = [0.5, 0.25, 0.25];
    expect(effectiveRank([2, 1, 1])).toBeCloseTo(Math.exp(-p.reduce((a, v) => a + v * Math.log(v), 0)), 12);
  });
});
