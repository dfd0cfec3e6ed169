// Rank selection for the low-rank side path (paper Eq. 9) and the effective rank (Eq. 3–4), both on
// plain singular values (not their squares), sorted descending.

/** Smallest r with Σ_{i≤r} σ_i ≥ α · Σ_i σ_i (α in (0, 1]); 0 for an all-zero spectrum. */
export function rankForAlpha(sigmaDescending: ArrayLike<number>, alpha: number): number {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`rank threshold alpha must lie in (0, 1], got ${alpha}`);
  let total = 0;
  for (let i = 0; i < sigmaDescending.length; i++) total += Math.max(0, sigmaDescending[i]!);
  if (total === 0) return 0;
  const target = alpha * total;
  let cumulative = 0;
  for (let i = 0; i < sigmaDescending.length; i++) {
    cumulative += Math.max(0, sigmaDescending[i]!);
    // Relative slack so α = 1 is reached despite rounding in the running sum.
    if (cumulative >= target * (1 - 1e-12)) return i + 1;
  }
  return sigmaDescending.length;
}

/** erank = exp(−Σ p_i ln p_i), p_i = σ_i / Σσ (Roy & Vetterli 2007); 0 for an all-zero spectrum. */
export function effectiveRank(sigma: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < sigma.length; i++) total += Math.max(0, sigma[i]!);
  if (total === 0) return 0;
  let entropy = 0;
  for (let i = 0; i < sigma.length; i++) {
    const p = Math.max(0, sigma[i]!) / total;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return Math.exp(entropy);
}

/**
 * Extra multiply-accumulates of the side path relative to the W4A8 product, per token:
 * sideRank · (in + out) / (in · out); 2r/d for a square d × d layer (the paper's "+FLOPs").
 */
export function sidePathFlopsRatio(sideRank: number, inFeatures: number, outFeatures: number): number {
  return (sideRank * (inFeatures + outFeatures)) / (inFeatures * outFeatures);
}
