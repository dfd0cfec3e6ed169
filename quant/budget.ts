// Ranks for a budget: given every linear's whitened error spectrum (σ_i of E·S, what the quantizer
// computes anyway) and a side-path budget in FLOPs or bytes, choose each linear's reconstruction rank so
// that the summed dropped σ² (= Σ ‖X (E − Ê)ᵀ‖² over the linears, before f16 rounding) is small and the
// side path never costs more than the budget. Pure: no I/O, no GPU.
//
// Accounting is the one `aser quantize --json` reports as flopsOverhead (eval/flops.ts): a side-path
// column of a linear costs in + out multiply-adds (and (in + out) · 2 bytes of f16 L_A/L_B), against the
// base in · out multiply-adds (int4 weights + per-channel scales + smoothing vector in bytes). Exactly
// carried outlier columns are side-path columns too: they are paid first, out of the same budget, and are
// not reallocated (their number f is the method's setting).
//
// Allocation: every (linear, column i) is an item with gain σ_i² and cost `perColumn` of its linear.
// Within a linear the gains fall with i, so ordering all items by gain per cost (ties: lower i first,
// then linear order, which spreads equal gains across linears) never takes column i + 1 before column i. The allocation is the longest prefix of that order that
// fits. A prefix (rather than skipping an item that does not fit and taking cheaper ones after it) makes
// the ranks non-decreasing in the budget, linear by linear; what it leaves unspent is less than one
// column of the linear whose turn it was.
import { w4PaddedIn } from '../core/w4-layout.js';
import type { QuantizedLinear } from '../core/quantized.js';
import type { QuantizeResult } from './methods.js';
import { sidePathFlopsRatio } from './rank.js';
import { QuantizeError } from './errors.js';

export const BUDGET_UNITS = ['flops', 'bytes'] as const;
export type BudgetUnit = (typeof BUDGET_UNITS)[number];

export const BUDGET_OBJECTIVES = ['output', 'relative'] as const;
/**
 * What the allocation minimizes. 'output' (default): Σ dropped σ², the summed whitened output error
 * ‖X (E − Ê)ᵀ‖² of all linears. 'relative': Σ dropped σ² / ‖X Wᵀ‖², each linear's error relative to its
 * own output, so that linears with large outputs (q_proj, k_proj) do not take the budget by size alone.
 */
export type BudgetObjective = (typeof BUDGET_OBJECTIVES)[number];

/** A budget: side-path cost as a percentage of the base cost (what flopsOverhead × 100 reports for 'flops'). */
export interface RankBudget {
  unit: BudgetUnit;
  percent: number;
  objective?: BudgetObjective;
}

export interface BudgetLinear {
  /** Module name, for messages. */
  name?: string;
  inFeatures: number;
  outFeatures: number;
  /** Side-path columns outside the allocation (exactly carried outlier channels): always paid. */
  fixedColumns: number;
  /** Singular values of the whitened error E·S, descending: reconstruction column i removes σ_i². */
  sigma: ArrayLike<number>;
  /** Most reconstruction columns this linear may get (default: every usable σ). */
  maxRank?: number;
  /** Stores a smoothing vector (counted in its base bytes). */
  smooth?: boolean;
  /** Gain of a column = weight · σ_i² (default 1; 1/‖X Wᵀ‖² for the 'relative' objective). */
  weight?: number;
}

export interface BudgetCostOptions {
  /** Weight bits of the base product (4). */
  wBits?: number;
  /** Bytes per stored L_A / L_B value (2: f16). */
  sideBytesPerValue?: number;
}

export interface RankAllocation {
  budget: RankBudget;
  /** Reconstruction rank per linear, in the order given. */
  ranks: number[];
  /** Base cost summed over the linears (multiply-adds per token, or bytes). */
  base: number;
  /** The budget in the same unit: percent / 100 · base. */
  capacity: number;
  /** Cost of the chosen side path, fixed columns included (≤ capacity). */
  spent: number;
  /** 100 · spent / base. */
  spentPercent: number;
  /** Σ over linears of Σ σ_i² (the whitened error before reconstruction). */
  errorSq: number;
  /** Σ over linears of Σ_{i ≥ rank} σ_i² (what the allocation leaves). */
  droppedSq: number;
}

/** Relative slack on the capacity, so that a budget given as the percentage a uniform rank reports is met exactly despite rounding. */
const CAPACITY_SLACK = 1e-9;
/** The same noise floor as quant/lowrank.ts: σ_i ≤ 1e-7·σ_1 is never a reconstruction direction. */
const SIGMA_NOISE = 1e-7;

/** Reconstruction directions worth taking: σ_i > 1e-7·σ_1 and > 0 (lowRankReconstruction takes no others). */
export function usableRank(sigma: ArrayLike<number>): number {
  const floor = (sigma[0] ?? 0) * SIGMA_NOISE;
  let r = 0;
  while (r < sigma.length && sigma[r]! > floor && sigma[r]! > 0) r++;
  return r;
}

/** One linear's base cost and the cost of one side-path column, in the budget's unit. */
export function linearCosts(l: Pick<BudgetLinear, 'inFeatures' | 'outFeatures' | 'smooth'>, unit: BudgetUnit, opts: BudgetCostOptions = {}): { base: number; perColumn: number } {
  const { inFeatures: inF, outFeatures: out } = l;
  if (unit === 'flops') return { base: inF * out, perColumn: inF + out };
  const wBits = opts.wBits ?? 4;
  const bytesPerValue = opts.sideBytesPerValue ?? 2;
  return { base: (w4PaddedIn(inF) * out * wBits) / 8 + 4 * out + (l.smooth ? 4 * inF : 0), perColumn: (inF + out) * bytesPerValue };
}

function checkInputs(linears: readonly BudgetLinear[], budget: RankBudget): void {
  if (!(BUDGET_UNITS as readonly string[]).includes(budget.unit)) throw new QuantizeError(`budget unit must be ${BUDGET_UNITS.join(' or ')}, got ${JSON.stringify(budget.unit)}`);
  if (!(Number.isFinite(budget.percent) && budget.percent >= 0)) throw new QuantizeError(`budget must be a non-negative percentage, got ${budget.percent}`);
  if (budget.objective !== undefined && !(BUDGET_OBJECTIVES as readonly string[]).includes(budget.objective)) throw new QuantizeError(`budget objective must be ${BUDGET_OBJECTIVES.join(' or ')}, got ${JSON.stringify(budget.objective)}`);
  if (linears.length === 0) throw new QuantizeError('no linears to allocate ranks to');
  for (const l of linears) {
    const where = l.name ?? 'linear';
    if (!(Number.isInteger(l.inFeatures) && Number.isInteger(l.outFeatures) && l.inFeatures > 0 && l.outFeatures > 0)) throw new QuantizeError(`${where}: bad shape [${l.outFeatures}, ${l.inFeatures}]`);
    if (!(Number.isInteger(l.fixedColumns) && l.fixedColumns >= 0)) throw new QuantizeError(`${where}: fixed columns must be a non-negative integer, got ${l.fixedColumns}`);
    if (l.maxRank !== undefined && !(Number.isInteger(l.maxRank) && l.maxRank >= 0)) throw new QuantizeError(`${where}: maxRank must be a non-negative integer, got ${l.maxRank}`);
    if (l.weight !== undefined && !(Number.isFinite(l.weight) && l.weight >= 0)) throw new QuantizeError(`${where}: gain weight must be a non-negative number, got ${l.weight}`);
    for (let i = 0; i < l.sigma.length; i++) {
      const s = l.sigma[i]!;
      if (!(Number.isFinite(s) && s >= 0)) throw new QuantizeError(`${where}: σ_${i} is ${s}`);
      if (i > 0 && s > l.sigma[i - 1]!) throw new QuantizeError(`${where}: the spectrum is not descending at σ_${i}`);
    }
  }
}

/** Reconstruction ranks within the budget (see the header for the rule); throws when the fixed columns alone exceed it. */
export function allocateRanks(linears: readonly BudgetLinear[], budget: RankBudget, opts: BudgetCostOptions = {}): RankAllocation {
  checkInputs(linears, budget);
  const costs = linears.map((l) => linearCosts(l, budget.unit, opts));
  const base = costs.reduce((s, c) => s + c.base, 0);
  const capacity = (budget.percent / 100) * base;
  const limit = capacity * (1 + CAPACITY_SLACK);
  let spent = linears.reduce((s, l, i) => s + l.fixedColumns * costs[i]!.perColumn, 0);
  if (spent > limit) {
    throw new QuantizeError(`a ${budget.unit} budget of ${budget.percent} % is less than the exactly carried outlier columns alone (${((100 * spent) / base).toFixed(3)} %)`);
  }
  // Items as parallel arrays (a large model has ~10⁵–10⁶ of them).
  const counts = linears.map((l) => Math.min(usableRank(l.sigma), l.maxRank ?? Infinity));
  const total = counts.reduce((a, b) => a + b, 0);
  const owner = new Uint32Array(total);
  const column = new Uint32Array(total);
  const ratio = new Float64Array(total);
  let n = 0;
  linears.forEach((l, i) => {
    for (let j = 0; j < counts[i]!; j++, n++) {
      owner[n] = i;
      column[n] = j;
      ratio[n] = ((l.weight ?? 1) * l.sigma[j]! ** 2) / costs[i]!.perColumn;
    }
  });
  const order = Array.from({ length: total }, (_, k) => k);
  order.sort((a, b) => ratio[b]! - ratio[a]! || column[a]! - column[b]! || owner[a]! - owner[b]!);
  const ranks = new Array<number>(linears.length).fill(0);
  for (const k of order) {
    const i = owner[k]!;
    const c = costs[i]!.perColumn;
    if (spent + c > limit) break;
    spent += c;
    ranks[i]! += 1;
  }
  let errorSq = 0, droppedSq = 0;
  linears.forEach((l, i) => {
    for (let j = 0; j < l.sigma.length; j++) {
      const sq = l.sigma[j]! ** 2;
      errorSq += sq;
      if (j >= ranks[i]!) droppedSq += sq;
    }
  });
  return { budget: { ...budget }, ranks, base, capacity, spent, spentPercent: base > 0 ? (100 * spent) / base : 0, errorSq, droppedSq };
}

/**
 * An upper bound on the reconstruction columns any one linear can get within the budget (the rank a
 * quantizer computes every linear at before allocating): the whole budget spent on that linear alone,
 * no more than min(in, out).
 */
export function largestAffordableRank(linears: readonly Pick<BudgetLinear, 'inFeatures' | 'outFeatures' | 'smooth'>[], budget: RankBudget, opts: BudgetCostOptions = {}): number {
  const costs = linears.map((l) => linearCosts(l, budget.unit, opts));
  const capacity = (budget.percent / 100) * costs.reduce((s, c) => s + c.base, 0) * (1 + CAPACITY_SLACK);
  let best = 0;
  linears.forEach((l, i) => {
    best = Math.max(best, Math.min(l.inFeatures, l.outFeatures, Math.floor(capacity / costs[i]!.perColumn)));
  });
  return best;
}

/**
 * A quantized linear cut down to its first `rank` reconstruction columns (its outlier columns kept).
 * The reconstruction directions are the top singular vectors in order, so this is the rank-`rank`
 * result of the same quantizer, and each column of the stored factors was balanced and rounded on its
 * own. Diagnostics follow: the dropped directions add their σ² to the output error (orthogonal in the
 * whitened norm); the sampled whole-layer error, measured for the wider side path, is removed.
 */
export function truncateReconstruction(result: QuantizeResult, rank: number): QuantizeResult {
  const { linear, diag } = result;
  const have = diag.rank;
  if (!(Number.isInteger(rank) && rank >= 0 && rank <= have)) throw new QuantizeError(`cannot cut a rank-${have} reconstruction to rank ${rank}`);
  if (rank === have) return result;
  const f = linear.rank - have;
  const k = rank + f;
  const { inFeatures: inF, outFeatures: out } = linear;
  const keep = (j: number) => (j < rank ? j : have + (j - rank)); // new column j ← old column
  const la = new Float32Array(inF * k);
  const lb = new Float32Array(k * out);
  for (let i = 0; i < inF; i++) for (let j = 0; j < k; j++) la[i * k + j] = linear.la![i * linear.rank + keep(j)]!;
  for (let j = 0; j < k; j++) lb.set(linear.lb!.subarray(keep(j) * out, (keep(j) + 1) * out), j * out);
  const cut: QuantizedLinear = { ...linear, rank: k };
  if (k > 0) {
    cut.la = la;
    cut.lb = lb;
  } else {
    delete cut.la;
    delete cut.lb;
  }
  let droppedSq = 0;
  for (let i = rank; i < have; i++) droppedSq += diag.sigma[i]! ** 2;
  const { sampled: _stale, ...kept } = diag;
  return {
    linear: cut,
    diag: {
      ...kept, rank, sideRank: k, sideFlopsRatio: sidePathFlopsRatio(k, inF, out),
      outputErrorAfter: Math.sqrt(diag.outputErrorAfter ** 2 + droppedSq),
    },
  };
}

/** The allocation as the manifest keeps it (per-linear ranks are the layers' errorRank). */
export interface BudgetRecord {
  unit: BudgetUnit;
  percent: number;
  /** Absent: 'output'. */
  objective?: BudgetObjective;
  spentPercent: number;
  /** Rank every linear was computed at before the allocation cut it (an upper bound on any rank). */
  computedRank: number;
  errorSq: number;
  droppedSq: number;
}

/**
 * Allocates the budget over quantized linears computed at a common upper rank (keyed by module name, in
 * order) and cuts each to its rank: the spectra and outlier columns come from the results themselves.
 */
export function spendBudget(
  results: ReadonlyMap<string, QuantizeResult>, budget: RankBudget, computedRank: number, opts: BudgetCostOptions = {},
): { results: Map<string, QuantizeResult>; allocation: RankAllocation; record: BudgetRecord } {
  const names = [...results.keys()];
  const weights = budget.objective === 'relative' ? relativeWeights(names.map((n) => results.get(n)!.diag)) : undefined;
  const linears: BudgetLinear[] = names.map((name, i) => {
    const { linear, diag } = results.get(name)!;
    return {
      name, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures, fixedColumns: linear.rank - diag.rank,
      sigma: diag.sigma, maxRank: diag.rank, smooth: !!linear.smooth, ...(weights ? { weight: weights[i]! } : {}),
    };
  });
  const allocation = allocateRanks(linears, budget, opts);
  const cut = new Map(names.map((name, i) => [name, truncateReconstruction(results.get(name)!, allocation.ranks[i]!)]));
  return {
    results: cut, allocation,
    record: { unit: budget.unit, percent: budget.percent, ...(budget.objective && budget.objective !== 'output' ? { objective: budget.objective } : {}), spentPercent: allocation.spentPercent, computedRank, errorSq: allocation.errorSq, droppedSq: allocation.droppedSq },
  };
}

/**
 * 1/‖X Wᵀ‖² per linear for the 'relative' objective: from diag.outputNorm (via H) when every linear has
 * it, else from the sampled output norm (the same sample size for every linear input, so the ratios
 * between linears hold; a common factor does not change the allocation).
 */
function relativeWeights(diags: readonly QuantizeResult['diag'][]): number[] {
  const norms = diags.every((d) => d.outputNorm !== undefined)
    ? diags.map((d) => d.outputNorm!)
    : diags.every((d) => d.sampled !== undefined)
      ? diags.map((d) => d.sampled!.norm / Math.sqrt(d.sampled!.tokens))
      : undefined;
  if (!norms) throw new QuantizeError("the 'relative' budget objective needs each linear's output norm (diag.outputNorm or a calibration sample)");
  return norms.map((n) => (n > 0 ? 1 / (n * n) : 0));
}
