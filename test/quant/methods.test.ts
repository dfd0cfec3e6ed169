import { beforeAll, describe, expect, it } from 'vitest';
import { unpackW4 } from '../../core/w4-layout.js';
import { matmul, matrix, type Mat } from '../../quant/linalg.js';
import {
  QUANT_METHODS, effectiveWeight, quantizeLinear, type LinearToQuantize, type QuantMethod,
} from '../../quant/methods.js';
import { aserSmoothing } from '../../quant/smoothing.js';
import { LinearInputStats } from '../../quant/stats.js';
import { ensureNativeBuilt, naiveMatmul, randomMat } from './helpers.js';
import { QuantizeError } from '../../quant/errors.js';

beforeAll(ensureNativeBuilt);

const LOUD = [3, 17, 40];

/** A synthetic layer with LLaMA-like activation outlier channels (×40 on LOUD) and correlated channels. */
function syntheticLayer(out: number, inF: number, tokens: number, seed: number): { layer: LinearToQuantize; x: Mat } {
  const x = naiveMatmul(randomMat(tokens, inF, seed), randomMat(inF, inF, seed + 1, 1 / Math.sqrt(inF)));
  for (let t = 0; t < tokens; t++) for (const j of LOUD) x.data[t * inF + j] *= 40;
  const w = randomMat(out, inF, seed + 2, 0.05);
  for (let o = 0; o < out; o++) w.data[o * inF + 7] *= 6; // one heavy weight column
  const stats = new LinearInputStats(inF, { sampleTokens: 128, seed });
  stats.add(Float32Array.from(x.data));
  return { layer: { name: 'synthetic', weight: Float32Array.from(w.data), outFeatures: out, inFeatures: inF, stats }, x };
}

/** ‖X (W − W_eff)ᵀ‖_F by explicit products on the calibration activations. */
function explicitOutputError(layer: LinearToQuantize, x: Mat, weff: Float64Array): number {
  const d = matrix(layer.outFeatures, layer.inFeatures, Float64Array.from(layer.weight).map((v, i) => v - weff[i]!));
  const y = matmul(x, d, { transB: true });
  return Math.sqrt(y.data.reduce((a, v) => a + v * v, 0));
}

describe('quantization methods on a synthetic layer with outlier channels', () => {
  for (const [out, inF] of [[48, 64], [80, 64]] as const) {
    describe(`[${out}, ${inF}], 512 tokens, rank 8 (seed 5)`, () => {
      const { layer, x } = syntheticLayer(out, inF, 512, 5);
      const results = new Map<QuantMethod, ReturnType<typeof quantizeLinear>>();
      for (const method of QUANT_METHODS) results.set(method, quantizeLinear(method, layer, { rank: method.match(/lorc|l2qer|aser/) ? 8 : undefined }));
      const after = (m: QuantMethod) => results.get(m)!.diag.outputErrorAfter;

      it('output error ‖X Eᵀ‖ at equal side-path width (8 columns): ASER w/o AS ≤ ASER ≤ L2QER ≤ LoRC ≤ RTN', () => {
        // ASER's f outlier columns count against the rank (the method table's equal budget), so it has
        // as many side-path columns as ASER w/o AS and reconstructs 8 − f. On this weight-only measure
        // the smoothing does not pay for the reconstruction column it costs; ASER only led here while
        // it was given its outlier columns on top of rank 8 (one column more than ASER w/o AS).
        const aserEqual = quantizeLinear('aser', layer, { rank: 8, rankIncludesOutliers: true });
        expect(aserEqual.diag.sideRank).toBe(8);
        expect(results.get('aser-noas')!.diag.sideRank).toBe(8);
        expect(after('aser-noas')).toBeLessThan(aserEqual.diag.outputErrorAfter);
        expect(aserEqual.diag.outputErrorAfter).toBeLessThan(after('l2qer'));
        expect(after('aser-noas')).toBeLessThan(after('l2qer'));
        expect(after('l2qer')).toBeLessThan(after('lorc'));
        expect(after('lorc')).toBeLessThan(after('rtn'));
        // the activation-aware baselines beat plain RTN on this layer too
        expect(after('llm-int4')).toBeLessThan(after('rtn'));
      });

      it('at equal side-path width ASER beats ASER w/o AS once activations are quantized to 4 bits (sampled output error)', () => {
        const aser = quantizeLinear('aser', layer, { rank: 8, rankIncludesOutliers: true, aBits: 4 }).diag;
        const noas = quantizeLinear('aser-noas', layer, { rank: 8, aBits: 4 }).diag;
        expect(aser.sideRank).toBe(noas.sideRank);
        expect(aser.sampled!.error).toBeLessThan(noas.sampled!.error);
      });

      it('diagnostics match explicit products: ‖X (W − W_eff)ᵀ‖ with the stored (packed, f16) layer', () => {
        for (const method of QUANT_METHODS) {
          const { linear, diag } = results.get(method)!;
          const q = unpackW4(linear.qweight, out, inF);
          const explicit = explicitOutputError(layer, x, effectiveWeight(linear, q));
          expect(Math.abs(diag.outputErrorAfter - explicit) / explicit, method).toBeLessThan(1e-6);
          expect(diag.outputNorm!).toBeGreaterThan(diag.outputErrorAfter);
        }
        const rtn = results.get('rtn')!.diag;
        expect(rtn.outputErrorAfter).toBeCloseTo(rtn.outputErrorBefore, 9);
      });

      it('QuantizedLinear fields are consistent: rank = r + f, one-hot outlier columns, f32 scales', () => {
        for (const method of QUANT_METHODS) {
          const { linear, diag } = results.get(method)!;
          expect(linear.inFeatures).toBe(inF);
          expect(linear.outFeatures).toBe(out);
          expect(linear.wScale.length).toBe(out);
          expect(linear.rank).toBe(diag.rank + diag.outliers.length);
          expect(diag.sideRank).toBe(linear.rank);
          if (linear.rank > 0) {
            expect(linear.la!.length).toBe(inF * linear.rank);
            expect(linear.lb!.length).toBe(linear.rank * out);
          }
          const expectRank = method.match(/lorc|l2qer|aser/) ? 8 : 0;
          expect(diag.rank, method).toBe(expectRank);
          const q = unpackW4(linear.qweight, out, inF);
          for (const j of diag.outliers) {
            for (let o = 0; o < out; o++) expect(q[o * inF + j]).toBe(0);
            const c = diag.rank + diag.outliers.indexOf(j);
            for (let i = 0; i < inF; i++) expect(linear.la![i * linear.rank + c]).toBe(i === j ? 1 : 0);
          }
        }
        const aser = results.get('aser')!;
        expect(aser.diag.outliers.length).toBe(1); // 'auto': round(64 / 128) → at least 1
        expect(LOUD).toContain(aser.diag.outliers[0]);
        expect(Array.from(results.get('llm-int4')!.linear.outlierChannels!)).toEqual(LOUD);
        expect(results.get('smoothquant')!.diag.smoothAlpha).toBe(0.5);
        expect(results.get('smoothquant-plus')!.diag.search!.length).toBe(21);
      });

      it('sampled error with activation quantization is reported for every method', () => {
        for (const method of QUANT_METHODS) {
          const s = results.get(method)!.diag.sampled!;
          expect(s.tokens).toBe(128);
          expect(s.error).toBeGreaterThan(0);
          expect(s.error).toBeLessThan(s.norm);
        }
        // SmoothQuant+ picks the grid point with the smallest sampled error, so it never loses to a = 0.5 there
        const sqp = results.get('smoothquant-plus')!.diag;
        expect(Math.min(...sqp.search!.map((p) => p.error))).toBeLessThanOrEqual(sqp.search!.find((p) => p.a === 0.5)!.error);
      });
    });
  }

  it('more outlier channels (f) and the α rule', () => {
    const { layer } = syntheticLayer(32, 64, 256, 9);
    const r = quantizeLinear('aser', layer, { alpha: 0.3, outliers: 3 });
    expect(r.diag.outliers).toEqual(LOUD);
    expect(r.diag.rank).toBeGreaterThan(0);
    expect(r.linear.rank).toBe(r.diag.rank + 3);
    expect(r.diag.erank).toBeGreaterThan(1);
  });

  it('X Wᵀ = (X M⁻¹)(W M)ᵀ for the ASER smoothing (seed 11)', () => {
    const { layer, x } = syntheticLayer(16, 64, 64, 11);
    const wMean = new Float64Array(64);
    for (let o = 0; o < 16; o++) for (let j = 0; j < 64; j++) wMean[j] += Math.abs(layer.weight[o * 64 + j]!) / 16;
    const { smooth, outliers } = aserSmoothing(layer.stats.meanAbs(), wMean, 3);
    expect(outliers).toEqual(LOUD);
    expect(Math.max(...smooth)).toBeGreaterThan(1);
    const w = matrix(16, 64, Float64Array.from(layer.weight));
    const xm = matrix(64, 64, x.data.map((v, i) => v / smooth[i % 64]!));
    const wm = matrix(16, 64, w.data.map((v, i) => v * smooth[i % 64]!));
    const direct = matmul(x, w, { transB: true });
    const smoothed = matmul({ rows: 64, cols: 64, data: xm.data }, wm, { transB: true });
    let worst = 0;
    for (let i = 0; i < direct.data.length; i++) worst = Math.max(worst, Math.abs(direct.data[i]! - smoothed.data[i]!) / (1 + Math.abs(direct.data[i]!)));
    expect(worst).toBeLessThan(1e-12);
  });

  it('bad input is a QuantizeError naming the layer', () => {
    const { layer } = syntheticLayer(8, 64, 32, 13);
    expect(() => quantizeLinear('lorc', layer, {})).toThrow(/exactly one of rank or alpha/);
    expect(() => quantizeLinear('rtn', layer, { wBits: 8 })).toThrow(QuantizeError);
    expect(() => quantizeLinear('rtn', { ...layer, inFeatures: 32, outFeatures: 16 })).toThrow(/calibration stats are for 64/);
    expect(() => quantizeLinear('rtn', { ...layer, weight: new Float32Array(3) })).toThrow(/synthetic .*weight has 3 values/);
    expect(() => quantizeLinear('rtn', { ...layer, stats: new LinearInputStats(64) })).toThrow(/no calibration tokens/);
  });
});
