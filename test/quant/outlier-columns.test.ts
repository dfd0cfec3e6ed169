// ASER's two ways of carrying the unquantized outlier columns W̃[:, O] (QuantizeOptions.outlierColumns):
// 'exact' zeroes them in E and adds f one-hot side-path columns; 'reconstructed' keeps them in E, so the
// rank-r reconstruction carries them (the variant the method notes describe). Both store the same
// quantized weight (zero in O) and smoothing; the effective weight of each matches its diagnostics.
import { beforeAll, describe, expect, it } from 'vitest';
import { unpackW4 } from '../../core/w4-layout.js';
import { matmul, matrix } from '../../quant/linalg.js';
import { effectiveWeight, quantizeLinear } from '../../quant/methods.js';
import { LinearInputStats } from '../../quant/stats.js';
import { QuantizeError } from '../../quant/errors.js';
import { ensureNativeBuilt, naiveMatmul, randomMat } from './helpers.js';

beforeAll(ensureNativeBuilt);

const LOUD = [3, 17, 40];
const out = 48, inF = 64, tokens = 384;
const x = naiveMatmul(randomMat(tokens, inF, 11), randomMat(inF, inF, 12, 1 / Math.sqrt(inF)));
for (let t = 0; t < tokens; t++) for (const j of LOUD) x.data[t * inF + j] *= 40;
const stats = new LinearInputStats(inF, { sampleTokens: 0 });
stats.add(Float32Array.from(x.data));
const layer = { name: 'synthetic', weight: Float32Array.from(randomMat(out, inF, 13, 0.05).data), outFeatures: out, inFeatures: inF, stats };

/** ‖X (W − W_eff)ᵀ‖_F on the calibration activations. */
function outputError(weff: Float64Array): number {
  const d = matrix(out, inF, Float64Array.from(layer.weight).map((v, i) => v - weff[i]!));
  const y = matmul(x, d, { transB: true });
  return Math.sqrt(y.data.reduce((a, v) => a + v * v, 0));
}

describe('ASER outlier columns: exact one-hot columns vs reconstructed by the rank-r path', () => {
  it('stores the same weights and smoothing; only the side path differs, and each diagnostic is its layer\'s', () => {
    const exact = quantizeLinear('aser', layer, { rank: 8, outliers: 3, rankIncludesOutliers: true });
    const rec = quantizeLinear('aser', layer, { rank: 8, outliers: 3, rankIncludesOutliers: true, outlierColumns: 'reconstructed' });
    // equal side-path columns: 5 + 3 one-hots against 8 reconstruction columns
    expect([exact.linear.rank, exact.diag.rank]).toEqual([8, 5]);
    expect([rec.linear.rank, rec.diag.rank]).toEqual([8, 8]);
    expect(rec.linear.outlierChannels).toBeUndefined();
    expect(rec.diag.outliers).toEqual(exact.diag.outliers);
    expect(Array.from(rec.linear.qweight)).toEqual(Array.from(exact.linear.qweight));
    expect(Array.from(rec.linear.smooth!)).toEqual(Array.from(exact.linear.smooth!));
    const q = unpackW4(rec.linear.qweight, out, inF);
    for (const j of rec.diag.outliers) for (let o = 0; o < out; o++) expect(q[o * inF + j]).toBe(0);
    // 'reconstructed' starts from the larger error (the outlier columns are in it) …
    expect(rec.diag.outputErrorBefore).toBeGreaterThan(exact.diag.outputErrorBefore);
    // … and each layer's stored weight has the output error its diagnostics report
    for (const r of [exact, rec]) {
      expect(outputError(effectiveWeight(r.linear, unpackW4(r.linear.qweight, out, inF)))).toBeCloseTo(r.diag.outputErrorAfter, 2);
    }
  });

  it('a full-rank reconstruction carries the outlier columns as well as the one-hots do', () => {
    const exact = quantizeLinear('aser', layer, { rank: out, outliers: 3 });
    const rec = quantizeLinear('aser', layer, { rank: out, outliers: 3, outlierColumns: 'reconstructed' });
    const norm = outputError(new Float64Array(out * inF));
    expect(rec.diag.outputErrorAfter / norm).toBeLessThan(1e-2);
    expect(exact.diag.outputErrorAfter / norm).toBeLessThan(1e-2);
  });

  it('refuses an unknown mode', () => {
    expect(() => quantizeLinear('aser', layer, { rank: 4, outlierColumns: 'dropped' as never })).toThrow(QuantizeError);
  });
});
