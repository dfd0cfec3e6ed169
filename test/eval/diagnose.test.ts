// Quantizer diagnostics on one layer of stories260K (real calibration on the GPU): the spectra, erank
// and per-method output errors are there and finite, obey the optimality of the whitened SVD, and
// every plot renders to SVG.
import { describe, expect, it } from 'vitest';
import { diagnosisCharts, formatDiagnosisMarkdown, runDiagnose } from '../../eval/diagnose.js';
import { renderSvg } from '../../eval/plot.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('runDiagnose', () => {
  it('layer 0: per-linear spectra, erank, output errors and outlier scores; plots render', async () => {
    const d = await runDiagnose({ model: 'stories260k', layers: [0], rank: 4, calibSamples: 8, calibLen: 64 });
    expect(d.linears).toHaveLength(7);
    for (const l of d.linears) {
      expect(l.sigmaE).toHaveLength(Math.min(l.inFeatures, l.outFeatures));
      expect(l.sigmaES).toHaveLength(Math.min(l.inFeatures, l.outFeatures));
      expect(l.erankE).toBeGreaterThan(1);
      expect(l.channelScore).toHaveLength(l.inFeatures);
      expect(l.outliers).toHaveLength(1);
      expect(l.sideRank).toEqual({ rtn: 0, lorc: 4, l2qer: 4, 'aser-noas': 4, aser: 4 });
      for (const e of [...Object.values(l.outputError), ...Object.values(l.sampledError)]) expect(Number.isFinite(e) && e > 0).toBe(true);
      // ASER w/o AS is the H-optimal rank-r correction of the same RTN error LoRC and L2QER correct
      // (up to the f16 rounding of the stored factors).
      const noas = l.outputError['aser-noas']!;
      for (const m of ['rtn', 'lorc', 'l2qer']) expect(noas, `${l.name} vs ${m}`).toBeLessThanOrEqual(l.outputError[m]! * (1 + 1e-4));
    }
    expect(formatDiagnosisMarkdown(d)).toMatch(/\| L0\.down \| 172×64 \|/);
    const charts = diagnosisCharts(d);
    expect(Object.keys(charts).sort()).toEqual(['erank.svg', 'outliers.svg', 'output-error.svg', 'sampled-error.svg', 'spectra.svg']);
    const svg = await renderSvg(charts['output-error.svg']!);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('ASER w/o AS');
  }, 60_000);
});
