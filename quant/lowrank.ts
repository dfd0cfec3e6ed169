// Low-rank reconstruction of a weight error E ([out, in]) that is optimal in a weighted norm ‖E S‖_F,
// S Sᵀ = H: whitening SVD (ASER, S = Cholesky factor of H = XᵀX, so ‖E S‖ = ‖X Eᵀ‖), L2QER
// (S = diag(s)) and LoRC (S = I) are the same computation with a different S.
//
// With G = E S = U Σ Vᵀ, the best rank-r approximation of G is U_r U_rᵀ G, so the reconstruction is
// Ê = U_r U_rᵀ E: a projection of E's columns onto the top-r left singular vectors of G. In the
// Y = X Wᵀ convention the side path is (X L_A) L_B with L_A = Eᵀ U_r ([in, r]) and L_B = U_rᵀ ([r, out]).
// Neither factor contains S⁻¹, so an ill-conditioned H never blows the factors up.
//
// U_r and all singular values come from the eigendecomposition of the smaller Gram matrix (σ_i² are its
// eigenvalues), one tridiagonal reduction serving the whole spectrum and the r wanted vectors:
//   out ≤ in:  G Gᵀ = E H Eᵀ            ([out, out]; needs no factorization of H at all; see sandwich())
//   out > in:  Gᵀ G = Sᵀ (EᵀE) S         ([in, in]; S = chol(H + δI)), then U_r = G V_r Σ_r⁻¹
// On this 2-core machine that is 4–8x faster than dgesdd on G (docs/quantization.md has the numbers).
// The eigenvalues of a Gram matrix carry an absolute error ~ ε·σ_1², so σ_i below ~1e-7·σ_1 are noise;
// they still enter Σσ for the rank rule (harmlessly) but are never chosen as reconstruction directions.
import {
  cholesky, gram, matmul, matrix, multiplyLowerBlocked, multiplyLowerInPlace, symEigTop, transpose, type Mat,
} from './linalg.js';
import { rankForAlpha } from './rank.js';
import { LinalgError, NotPositiveDefiniteError } from './errors.js';

/** How the error is weighted: by a full second-moment matrix H (whitening), or by a diagonal scale. */
export type ErrorWeighting =
  /** ‖E S‖ with S Sᵀ = H + δ·I, δ = damping · mean(diag H) (raised on Cholesky failure). */
  | { kind: 'hessian'; h: Mat; damping?: number }
  /** ‖E diag(scale)‖ (LoRC: all ones; L2QER: activation-induced scale). */
  | { kind: 'diagonal'; scale: Float64Array };

/** Rank: fixed, or the threshold rule (paper Eq. 9), optionally capped. */
export type RankChoice = { rank: number } | { alpha: number; maxRank?: number };

export interface LowRankReconstruction {
  /** Chosen rank r (≤ requested: directions with σ_i ≤ 1e-7·σ_1 are never taken). */
  rank: number;
  /** L_Aᵀ = U_rᵀ E, [r, in] (double precision). */
  laT: Mat;
  /** L_B = U_rᵀ, [r, out]. */
  lb: Mat;
  /** Every singular value of E S, descending (min(out, in) of them). */
  sigma: Float64Array;
  /** ‖E S₀‖² with the undamped weighting (= tr(E H Eᵀ) = ‖X Eᵀ‖² for 'hessian'). */
  errorSq: number;
  /** ‖(E − Ê) S₀‖², undamped weighting, before any rounding of the factors. */
  residualSq: number;
  /** Damping λ actually used (relative to mean diag H); 0 when none was needed. */
  dampingUsed: number;
  /** Which Gram matrix was decomposed. */
  gram: 'out' | 'in';
}

/** Relative size under which a singular value is treated as numerical noise of the Gram route. */
const SIGMA_NOISE = 1e-7;
/** Damping ladder (× mean diag H) tried in order when Cholesky fails; the first entry is the caller's. */
const DAMPING_LADDER = [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1];

function pickRank(sigma: Float64Array, choice: RankChoice, limit: number): number {
  let r: number;
  if ('rank' in choice) {
    if (!Number.isInteger(choice.rank) || choice.rank < 0) throw new RangeError(`rank must be a non-negative integer, got ${choice.rank}`);
    r = choice.rank;
  } else {
    r = rankForAlpha(sigma, choice.alpha);
    if (choice.maxRank !== undefined) r = Math.min(r, choice.maxRank);
  }
  const floor = (sigma[0] ?? 0) * SIGMA_NOISE;
  let usable = 0;
  while (usable < sigma.length && sigma[usable]! > floor && sigma[usable]! > 0) usable++;
  return Math.min(r, usable, limit);
}

function meanDiagonal(h: Mat): number {
  let s = 0;
  for (let i = 0; i < h.rows; i++) s += h.data[i * h.cols + i]!;
  return h.rows > 0 ? s / h.rows : 0;
}

/** Cholesky of H + λ·mean(diag H)·I, raising λ along the ladder until it succeeds. */
export function dampedCholesky(h: Mat, damping = 0): { l: Mat; damping: number } {
  const mean = meanDiagonal(h);
  const ladder = [damping, ...DAMPING_LADDER.filter((l) => l > damping)];
  let lastError: unknown;
  for (const lambda of ladder) {
    const shifted = matrix(h.rows, h.cols, Float64Array.from(h.data));
    const delta = lambda * mean;
    for (let i = 0; i < h.rows; i++) shifted.data[i * h.cols + i] += delta;
    try {
      return { l: cholesky(shifted), damping: lambda };
    } catch (err) {
      if (!(err instanceof NotPositiveDefiniteError)) throw err;
      lastError = err;
    }
  }
  throw new LinalgError(`H is not positive definite even with damping ${ladder[ladder.length - 1]}·mean(diag H) (${(lastError as Error).message})`);
}

function sqrtSpectrum(eigenvaluesDescending: Float64Array): Float64Array {
  return eigenvaluesDescending.map((v) => Math.sqrt(Math.max(0, v)));
}

function scaleRows(m: Mat, factor: (row: number) => number): Mat {
  for (let i = 0; i < m.rows; i++) {
    const f = factor(i);
    for (let j = 0; j < m.cols; j++) m.data[i * m.cols + j] *= f;
  }
  return m;
}

function trace(m: Mat): number {
  let s = 0;
  for (let i = 0; i < m.rows; i++) s += m.data[i * m.cols + i]!;
  return s;
}

/** The optimal rank-r reconstruction of E under the weighting, with the full spectrum it was chosen from. */
export function lowRankReconstruction(e: Mat, weighting: ErrorWeighting, choice: RankChoice): LowRankReconstruction {
  const out = e.rows;
  const inF = e.cols;
  const limit = Math.min(out, inF);
  if (weighting.kind === 'hessian' && (weighting.h.rows !== inF || weighting.h.cols !== inF)) {
    throw new LinalgError(`lowRankReconstruction: H is [${weighting.h.rows}, ${weighting.h.cols}], E is [${out}, ${inF}]`);
  }
  if (weighting.kind === 'diagonal' && weighting.scale.length !== inF) {
    throw new LinalgError(`lowRankReconstruction: scale has ${weighting.scale.length} entries, E has ${inF} columns`);
  }
  let dampingUsed = 0;
  let errorSq: number;
  let sigma: Float64Array;
  let rank = 0;
  let ut: Mat; // U_rᵀ, [r, out]

  if (out <= inF) {
    let k: Mat;
    if (weighting.kind === 'hessian') {
      k = sandwich(e, weighting.h);
      errorSq = trace(k);
      const lambda = weighting.damping ?? 0;
      if (lambda > 0) {
        gram(e, 'AAt', { alpha: lambda * meanDiagonal(weighting.h), into: k });
        dampingUsed = lambda;
      }
    } else {
      const f = scaleColumns(e, weighting.scale);
      k = gram(f, 'AAt');
      errorSq = trace(k);
    }
    const eig = symEigTop(k, (values) => (rank = pickRank(sqrtSpectrum(values), choice, limit)));
    sigma = sqrtSpectrum(eig.values);
    ut = eig.vectors;
  } else {
    let k: Mat;
    let rightFactor: (vt: Mat) => Mat; // V_rᵀ ↦ V_rᵀ Sᵀ = (S V_r)ᵀ
    if (weighting.kind === 'hessian') {
      const ete = gram(e, 'AtA');
      errorSq = frobeniusDotSym(weighting.h, ete);
      const { l, damping } = dampedCholesky(weighting.h, weighting.damping ?? 0);
      dampingUsed = damping;
      // K = Sᵀ A S with A = EᵀE symmetric: C = A S, then K = Cᵀ S (both at gemm speed)
      k = multiplyLowerBlocked(transpose(multiplyLowerBlocked(ete, l)), l);
      rightFactor = (vt) => multiplyLowerInPlace(l, vt, 'right', true);
    } else {
      const f = scaleColumns(e, weighting.scale);
      k = gram(f, 'AtA');
      errorSq = trace(k);
      rightFactor = (vt) => scaleColumnsInPlace(vt, weighting.scale);
    }
    const eig = symEigTop(k, (values) => (rank = pickRank(sqrtSpectrum(values), choice, limit)));
    sigma = sqrtSpectrum(eig.values);
    // U_rᵀ = Σ_r⁻¹ V_rᵀ Sᵀ Eᵀ
    const svt = rightFactor(eig.vectors);
    ut = scaleRows(matmul(svt, e, { transB: true }), (i) => 1 / sigma[i]!);
  }
  const laT = rank > 0 ? matmul(ut, e) : matrix(0, inF);
  let captured = 0;
  for (let i = 0; i < rank; i++) captured += sigma[i]! ** 2;
  // With damping the chosen directions are optimal for H + δI; the residual is still reported for H.
  const residualSq = dampingUsed > 0 && weighting.kind === 'hessian'
    ? Math.max(0, weightedResidualSq(errorSq, e, weighting.h, laT, ut))
    : Math.max(0, errorSq - captured);
  return { rank, laT, lb: ut, sigma, errorSq, residualSq, dampingUsed, gram: out <= inF ? 'out' : 'in' };
}

/**
 * E H Eᵀ for symmetric H as M + Mᵀ with M = P Eᵀ, P = E (L + D/2) (L: strict lower triangle, D: the
 * diagonal of H): out·in²/2 multiply-adds for P (multiplyLowerBlocked) and out²·in for M, against
 * out·in² + out²·in for E·H·Eᵀ. H's diagonal is halved in place for the product and restored.
 */
export function sandwich(e: Mat, h: Mat): Mat {
  const n = h.rows;
  const diagonal = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    diagonal[i] = h.data[i * n + i]!;
    h.data[i * n + i] = diagonal[i]! / 2;
  }
  let p: Mat;
  try {
    p = multiplyLowerBlocked(e, h);
  } finally {
    for (let i = 0; i < n; i++) h.data[i * n + i] = diagonal[i]!;
  }
  const k = matmul(p, e, { transB: true });
  return addTranspose(k);
}

/** K ← K + Kᵀ in place (tiled). */
function addTranspose(k: Mat): Mat {
  const n = k.rows;
  const d = k.data;
  const B = 64;
  for (let i0 = 0; i0 < n; i0 += B) {
    for (let j0 = 0; j0 <= i0; j0 += B) {
      for (let i = i0; i < Math.min(n, i0 + B); i++) {
        for (let j = j0; j < Math.min(n, j0 + B, i + 1); j++) {
          const v = d[i * n + j]! + d[j * n + i]!;
          d[i * n + j] = v;
          d[j * n + i] = v;
        }
      }
    }
  }
  return k;
}

function scaleColumns(e: Mat, scale: Float64Array): Mat {
  return scaleColumnsInPlace(matrix(e.rows, e.cols, Float64Array.from(e.data)), scale);
}

function scaleColumnsInPlace(m: Mat, scale: Float64Array): Mat {
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) m.data[i * m.cols + j] *= scale[j]!;
  return m;
}

/** ⟨A, B⟩ for symmetric A, B (both full). */
function frobeniusDotSym(a: Mat, b: Mat): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i]! * b.data[i]!;
  return s;
}

/** ‖X Eᵀ‖² = tr(E H Eᵀ) = ⟨H, EᵀE⟩ (dsyrk on E: in²·out/2 multiply-adds). */
export function outputErrorSq(e: Mat, h: Mat): number {
  return frobeniusDotSym(h, gram(e, 'AtA'));
}

/**
 * ‖X (E − Ê)ᵀ‖² for a side path Ê = L_Bᵀ L_Aᵀ ([out, in]), given errorSq = tr(E H Eᵀ):
 *   tr(E H Eᵀ) − 2⟨H L_A, Eᵀ L_Bᵀ⟩ + ⟨L_Aᵀ H L_A, L_B L_Bᵀ⟩
 * costs in²·k + in·out·k instead of a second in²·out product. laT is L_Aᵀ [k, in], lb is L_B [k, out].
 */
export function weightedResidualSq(errorSq: number, e: Mat, h: Mat, laT: Mat, lb: Mat): number {
  if (laT.rows === 0) return errorSq;
  const hla = matmul(h, laT, { transB: true }); // [in, k]
  const etlbt = matmul(e, lb, { transA: true, transB: true }); // [in, k]
  let cross = 0;
  for (let i = 0; i < hla.data.length; i++) cross += hla.data[i]! * etlbt.data[i]!;
  const atha = matmul(laT, hla); // [k, k]
  const bbt = matmul(lb, lb, { transB: true }); // [k, k]
  let quad = 0;
  for (let i = 0; i < atha.data.length; i++) quad += atha.data[i]! * bbt.data[i]!;
  return errorSq - 2 * cross + quad;
}
