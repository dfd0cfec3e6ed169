// The budget allocator (quant/budget.ts): never over the budget, ranks non-decreasing in it, uniform
// rank when every linear has the same shape and spectrum, and the cut of a quantized linear equal to
// quantizing at the lower rank.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { allocateRanks, largestAffordableRank, linearCosts, truncateReconstruction, type BudgetLinear, type BudgetUnit } from '../../quant/budget.js';
import { quantizeLinear } from '../../quant/methods.js';
import { LinearInputStats } from '../../quant/stats.js';
import { QuantizeError } from '../../quant/errors.js';
import { validateManifest } from '../../loaders/artifact-manifest.js';
import { FormatError } from '../../loaders/errors.js';

const SHAPES = [[64, 64], [64, 32], [64, 172], [172, 64], [48, 48]] as const;

/** A random linear: one of a few shapes, a descending spectrum (with ties and zeros), 0–2 fixed columns. */
const linearArb: fc.Arbitrary<BudgetLinear> = fc
  .record({
    shape: fc.constantFrom(...SHAPES),
    fixed: fc.integer({ min: 0, max: 2 }),
    sigma: fc.array(fc.oneof(fc.double({ min: 0, max: 1e3, noNaN: true }), fc.constant(1), fc.constant(0)), { minLength: 0, maxLength: 24 }),
    smooth: fc.boolean(),
  })
  .map(({ shape, fixed, sigma, smooth }) => ({
    inFeatures: shape[0], outFeatures: shape[1], fixedColumns: fixed, smooth,
    sigma: Float64Array.from(sigma).sort().reverse(),
  }));

const unitArb = fc.constantFrom<BudgetUnit>('flops', 'bytes');

/** The cost of the side path an allocation implies, recomputed here from its ranks. */
function spentOf(linears: BudgetLinear[], ranks: number[], unit: BudgetUnit): { spent: number; base: number } {
  let spent = 0, base = 0;
  linears.forEach((l, i) => {
    const c = linearCosts(l, unit);
    base += c.base;
    spent += (ranks[i]! + l.fixedColumns) * c.perColumn;
  });
  return { spent, base };
}

/** A budget that at least covers the fixed columns: their share plus `extra` percent. */
function fixedPercent(linears: BudgetLinear[], unit: BudgetUnit): number {
  const { spent, base } = spentOf(linears, linears.map(() => 0), unit);
  return (100 * spent) / base;
}

describe('allocateRanks', () => {
  it('never spends more than the budget, and fills it to within one column', () => {
    fc.assert(
      fc.property(fc.array(linearArb, { minLength: 1, maxLength: 12 }), unitArb, fc.double({ min: 0, max: 40, noNaN: true }), (linears, unit, extra) => {
        const percent = fixedPercent(linears, unit) + extra;
        const a = allocateRanks(linears, { unit, percent });
        const { spent, base } = spentOf(linears, a.ranks, unit);
        expect(spent).toBeCloseTo(a.spent, 6);
        expect(spent).toBeLessThanOrEqual((percent / 100) * base * (1 + 1e-9));
        a.ranks.forEach((r, i) => expect(r).toBeLessThanOrEqual(linears[i]!.sigma.length));
        // what is left over is less than the column whose turn it was, unless every usable column was taken
        const anyLeft = linears.some((l, i) => a.ranks[i]! < l.sigma.length && l.sigma[a.ranks[i]!]! > 1e-7 * l.sigma[0]!);
        if (anyLeft) {
          const widest = Math.max(...linears.map((l) => linearCosts(l, unit).perColumn));
          expect(a.capacity - a.spent).toBeLessThan(widest);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is monotone in the budget: every rank non-decreasing, the dropped error non-increasing', () => {
    fc.assert(
      fc.property(fc.array(linearArb, { minLength: 1, maxLength: 12 }), unitArb, fc.double({ min: 0, max: 30, noNaN: true }), fc.double({ min: 0, max: 30, noNaN: true }), (linears, unit, x, y) => {
        const lo = fixedPercent(linears, unit) + Math.min(x, y);
        const hi = fixedPercent(linears, unit) + Math.max(x, y);
        const a = allocateRanks(linears, { unit, percent: lo });
        const b = allocateRanks(linears, { unit, percent: hi });
        a.ranks.forEach((r, i) => expect(r).toBeLessThanOrEqual(b.ranks[i]!));
        expect(b.droppedSq).toBeLessThanOrEqual(a.droppedSq * (1 + 1e-12));
        expect(b.spent).toBeGreaterThanOrEqual(a.spent);
      }),
      { numRuns: 300 },
    );
  });

  it('gives every linear the uniform rank when all have the same shape and spectrum', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SHAPES), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 16 }), unitArb,
        fc.array(fc.double({ min: 1e-3, max: 1e3, noNaN: true }), { minLength: 16, maxLength: 24 }),
        (shape, n, fixed, rank, unit, values) => {
          const sigma = Float64Array.from(values).sort().reverse();
          const linears = Array.from({ length: n }, () => ({ inFeatures: shape[0], outFeatures: shape[1], fixedColumns: fixed, sigma, smooth: true }));
          // the budget exactly as a uniform-rank artifact reports its overhead
          const { spent, base } = spentOf(linears, linears.map(() => rank), unit);
          const a = allocateRanks(linears, { unit, percent: (100 * spent) / base });
          expect(a.ranks).toEqual(linears.map(() => rank));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('spends the budget where the dropped σ² per cost is largest', () => {
    const cheap = { inFeatures: 64, outFeatures: 64, fixedColumns: 0, sigma: [10, 9, 1] }; // 128 MACs a column
    const dear = { inFeatures: 64, outFeatures: 172, fixedColumns: 0, sigma: [12, 2] }; // 236 MACs a column
    const base = 64 * 64 + 64 * 172;
    // 2 cheap columns (100/128, 81/128) beat dear's first (144/236 = 0.61 < 81/128 = 0.63)
    expect(allocateRanks([cheap, dear], { unit: 'flops', percent: (100 * 256) / base }).ranks).toEqual([2, 0]);
    expect(allocateRanks([cheap, dear], { unit: 'flops', percent: (100 * (256 + 236)) / base }).ranks).toEqual([2, 1]);
    // no column fits: nothing allocated, nothing spent
    const none = allocateRanks([cheap, dear], { unit: 'flops', percent: (100 * 127) / base });
    expect(none.ranks).toEqual([0, 0]);
    expect(none.spent).toBe(0);
    expect(none.droppedSq).toBeCloseTo(100 + 81 + 1 + 144 + 4, 9);
  });

  it('weights gains for the relative objective: a linear with a large output no longer takes the budget by size', () => {
    const big = { inFeatures: 64, outFeatures: 64, fixedColumns: 0, sigma: [100, 90, 80] }; // output energy 1e6
    const small = { inFeatures: 64, outFeatures: 64, fixedColumns: 0, sigma: [10, 9, 8] }; // output energy 1e3
    const percent = (100 * 3 * 128) / (2 * 64 * 64);
    expect(allocateRanks([big, small], { unit: 'flops', percent }).ranks).toEqual([3, 0]);
    expect(allocateRanks([{ ...big, weight: 1e-6 }, { ...small, weight: 1e-3 }], { unit: 'flops', percent, objective: 'relative' }).ranks).toEqual([0, 3]);
    expect(() => allocateRanks([big], { unit: 'flops', percent, objective: 'loss' as never })).toThrow(/objective/);
  });

  it('never takes noise-floor directions, honours maxRank, and refuses a budget below the fixed columns', () => {
    const l = { inFeatures: 64, outFeatures: 64, fixedColumns: 1, sigma: [1, 1e-9, 0] };
    expect(allocateRanks([l], { unit: 'flops', percent: 100 }).ranks).toEqual([1]);
    expect(allocateRanks([{ ...l, sigma: [3, 2, 1], maxRank: 2 }], { unit: 'flops', percent: 100 }).ranks).toEqual([2]);
    expect(() => allocateRanks([l], { unit: 'flops', percent: 1 })).toThrow(QuantizeError);
    expect(() => allocateRanks([l], { unit: 'flops', percent: -1 })).toThrow(/non-negative/);
    expect(() => allocateRanks([{ ...l, sigma: [1, 2] }], { unit: 'flops', percent: 10 })).toThrow(/descending/);
  });

  it('bounds the rank any linear can afford by the whole budget and its shape', () => {
    const ls = [{ inFeatures: 64, outFeatures: 64 }, { inFeatures: 64, outFeatures: 172 }];
    const base = 64 * 64 + 64 * 172;
    expect(largestAffordableRank(ls, { unit: 'flops', percent: (100 * 128 * 5) / base })).toBe(5);
    expect(largestAffordableRank(ls, { unit: 'flops', percent: 100 })).toBe(64);
  });
});

describe('truncateReconstruction', () => {
  it('cuts a rank-6 ASER linear to the rank-2 one the quantizer makes directly', () => {
    const inF = 48, out = 40, tokens = 200;
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const weight = Float32Array.from({ length: out * inF }, rnd);
    const stats = new LinearInputStats(inF, { sampleTokens: 0 });
    const x = Float32Array.from({ length: tokens * inF }, (_, i) => rnd() * (i % inF === 3 ? 20 : 1));
    stats.add(x, tokens);
    const layer = { name: 'test', weight, outFeatures: out, inFeatures: inF, stats };
    const wide = quantizeLinear('aser', layer, { rank: 6, outliers: 1 });
    const direct = quantizeLinear('aser', layer, { rank: 2, outliers: 1 });
    const cut = truncateReconstruction(wide, 2);
    expect(cut.linear.rank).toBe(3);
    expect(cut.diag.rank).toBe(2);
    expect(Array.from(cut.linear.outlierChannels!)).toEqual(Array.from(direct.linear.outlierChannels!));
    // the same factors up to the sign of each singular vector (f16 values)
    for (let j = 0; j < 3; j++) {
      const a = Array.from({ length: inF }, (_, i) => cut.linear.la![i * 3 + j]!);
      const b = Array.from({ length: inF }, (_, i) => direct.linear.la![i * 3 + j]!);
      const sign = Math.sign(a.reduce((s, v, i) => s + v * b[i]!, 0));
      a.forEach((v, i) => expect(sign * v).toBeCloseTo(b[i]!, 2));
    }
    expect(cut.diag.outputErrorAfter).toBeCloseTo(direct.diag.outputErrorAfter, 1);
    expect(cut.diag.sampled).toBeUndefined();
    expect(truncateReconstruction(wide, 6)).toBe(wide);
    expect(() => truncateReconstruction(wide, 7)).toThrow(QuantizeError);
  });
});

describe('the manifest\'s optional budget field', () => {
  const manifest = (extra: object) => ({
    format: 'aser-artifact', formatVersion: 2, createdBy: 'test', createdAt: '', method: 'aser', wBits: 4, aBits: 8, rank: null, alpha: null,
    options: {}, calibration: null, source: { id: 'm', sha256: 'x', files: [] }, files: {}, layers: {}, smoothing: 'shared-input', ...extra,
  });
  const budget = { unit: 'flops', percent: 10, spentPercent: 9.9, computedRank: 64, errorSq: 5, droppedSq: 2 };

  it('may be absent (every artifact before it) or well formed; a malformed one is refused', () => {
    expect(validateManifest('m.json', manifest({})).budget).toBeUndefined();
    expect(validateManifest('m.json', manifest({ budget })).budget).toEqual(budget);
    expect(validateManifest('m.json', manifest({ formatVersion: 1, budget: { ...budget, objective: 'relative' } })).budget?.objective).toBe('relative');
    for (const bad of [{ ...budget, unit: 'watts' }, { ...budget, percent: -1 }, { ...budget, computedRank: 1.5 }, { ...budget, objective: 'loss' }, 7]) {
      expect(() => validateManifest('m.json', manifest({ budget: bad }))).toThrow(FormatError);
    }
  });
});
