// Singular spectra of the (whitened) quantization error E·S per block linear, as the quantizer sees
// them when it picks ranks, and the per-layer ranks the α rule (paper Eq. 9) would take from them.
// ASER's own spectra (with activation smoothing), for the rank the α rule picks per layer; eval/diagnose.ts
// has the E vs E·S spectra of the paper's Fig. 2. Shares the process's calibration with the ppl table
// (calibrationStatsFor) and runs the quantizer on the CPU; cached by model hash and calibration settings.
import type { CalibrationRequest } from '../node/quantize.js';
import { calibrationStatsFor } from './ppl-table.js';
import { modelHash } from '../node/artifact-cache.js';
import { resolveModel } from '../loaders/registry.js';
import { quantizeModel } from '../quant/quantize-model.js';
import type { QuantMethod } from '../quant/methods.js';
import { openResultCache, type ResultCache } from '../node/cache.js';

export interface LinearSpectrum {
  layer: number;
  /** e.g. "mlp.down_proj". */
  name: string;
  /** Singular values of E·S, descending (at most `keep`). */
  sigma: number[];
  /** Σσ over the whole spectrum (for the α rule on the truncated list). */
  sigmaSum: number;
  erank: number;
}

export interface SpectraResult {
  method: QuantMethod;
  linears: LinearSpectrum[];
}

export async function computeSpectra(req: CalibrationRequest & { method?: QuantMethod; abits?: number; keep?: number; cache?: ResultCache }): Promise<SpectraResult> {
  const method = req.method ?? 'aser';
  const keep = req.keep ?? 64;
  const cache = req.cache ?? openResultCache();
  const settings = { modelHash: modelHash(req.model), method, abits: req.abits ?? 8, calib: req.calib, samples: req.calibSamples, len: req.calibLen, seed: req.seed, keep };
  return cache.getOrCompute('spectra', settings, async () => {
    const stats = await calibrationStatsFor(settings.modelHash, req)();
    const { source } = resolveModel(req.model);
    try {
      const q = quantizeModel(source, stats, method, { aBits: req.abits ?? 8, rank: 8 });
      const linears: LinearSpectrum[] = [];
      for (const [module, diag] of q.diagnostics) {
        const m = /^model\.layers\.(\d+)\.(.+)$/.exec(module)!;
        const sigma = Array.from(diag.sigma);
        linears.push({ layer: Number(m[1]), name: m[2]!, sigma: sigma.slice(0, keep), sigmaSum: sigma.reduce((a, b) => a + b, 0), erank: diag.erank });
      }
      return { method, linears };
    } finally {
      source.close();
    }
  });
}

/** Rank the α rule picks for a spectrum kept to its top values (exact while the pick lies inside them). */
export function alphaRank(s: LinearSpectrum, alpha: number): number {
  const target = alpha * s.sigmaSum;
  let cum = 0;
  for (let i = 0; i < s.sigma.length; i++) {
    cum += s.sigma[i]!;
    if (cum >= target * (1 - 1e-12)) return i + 1;
  }
  return s.sigma.length; // beyond the kept values: a lower bound
}
