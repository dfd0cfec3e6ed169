// Per-linear diagnostics of the quantizer (paper Figs. 2, 3, 4 and 6 on our model), from one
// calibration and the quantizer's own QuantDiagnostics:
//   spectra   singular values of E (LoRC's weighting, S = I) and of E·S (ASER w/o AS, S Sᵀ = H)  Fig. 2
//   erank     effective rank of both spectra                                                    Fig. 3
//   error     ‖X Eᵀ − X Êᵀ‖_F / ‖X Wᵀ‖_F via H (weight error only) and on the sampled calibration
//             tokens with per-token activation quantization, for RTN, LoRC, L2QER, ASER w/o AS, ASER  Fig. 6
//   outliers  per input channel x̄_j · w̄_j (ASER's outlier score) and the f channels chosen          Fig. 4
// Every low-rank method gets the same side-path width (as in the ppl table's default budget).
import { resolveModel } from '../loaders/registry.js';
import { readTensorF32 } from '../core/dtype.js';
import { BLOCK_LINEARS } from '../core/model.js';
import { quantizeModel } from '../quant/quantize-model.js';
import type { QuantDiagnostics, QuantMethod } from '../quant/methods.js';
import { barChart, lineChart, type ChartSpec } from './plot.js';
import { calibrationStatsFor, METHOD_LABELS } from './ppl-table.js';
import { modelHash } from '../node/artifact-cache.js';
import { PplTableError } from './errors.js';

export const DIAGNOSE_METHODS: readonly QuantMethod[] = ['rtn', 'lorc', 'l2qer', 'aser-noas', 'aser'];

export interface DiagnoseOptions {
  model: string;
  /** Layers to analyse (default all). */
  layers?: number[];
  wbits?: number;
  abits?: number;
  /** Side-path width per linear (default 8; ASER: rank − f reconstruction + f outlier columns). */
  rank?: number;
  /** As in the ppl table: 'side' (default) counts ASER's outlier columns against rank, 'reconstruction' adds them. */
  rankBudget?: 'side' | 'reconstruction';
  /** ASER's outlier channel count f (default 'auto'). */
  outliers?: number | 'auto';
  calib?: string;
  calibSamples?: number;
  calibLen?: number;
  seed?: number;
  onProgress?: (msg: string) => void;
}

export interface LinearDiagnosis {
  name: string;
  layer: number;
  linear: string;
  inFeatures: number;
  outFeatures: number;
  /** Singular values of E (S = I) and of E·S (S Sᵀ = H), descending. */
  sigmaE: number[];
  sigmaES: number[];
  erankE: number;
  erankES: number;
  /** ‖X (W − W_eff)ᵀ‖_F / ‖X Wᵀ‖_F via H, per method (weights only). */
  outputError: Record<string, number>;
  /** ‖Y − Ŷ‖_F / ‖Y‖_F on the sampled tokens with the whole fake-quantized layer, per method. */
  sampledError: Record<string, number>;
  /** Side-path width per method. */
  sideRank: Record<string, number>;
  /** max / median of x̄_j. */
  activationOutlierRatio: number;
  /** x̄_j · w̄_j per input channel (w̄_j = mean_o |W[o, j]|). */
  channelScore: number[];
  /** ASER's chosen outlier channels. */
  outliers: number[];
}

export interface Diagnosis {
  model: string;
  settings: { wbits: number; abits: number; rank: number; rankBudget: 'side' | 'reconstruction'; outliers: number | 'auto'; calibration: { dataset: string; samples: number; seqLen: number; seed: number } };
  linears: LinearDiagnosis[];
}

const round = (v: number) => Number(v.toPrecision(6));

export async function runDiagnose(opts: DiagnoseOptions): Promise<Diagnosis> {
  const say = opts.onProgress ?? (() => {});
  const wbits = opts.wbits ?? 4;
  const abits = opts.abits ?? 8;
  const rank = opts.rank ?? 8;
  const rankBudget = opts.rankBudget ?? 'side';
  const calibration = { calib: opts.calib ?? 'tinystories', calibSamples: opts.calibSamples ?? 64, calibLen: opts.calibLen ?? 256, seed: opts.seed ?? 0 };
  const stats = await calibrationStatsFor(modelHash(opts.model), { model: opts.model, ...calibration })();
  const { source } = resolveModel(opts.model);
  try {
    const nLayers = source.config.nLayers;
    const layers = opts.layers ?? Array.from({ length: nLayers }, (_, i) => i);
    for (const l of layers) if (!(Number.isInteger(l) && l >= 0 && l < nLayers)) throw new PplTableError(`layer ${l} is outside 0..${nLayers - 1}`);
    const byMethod = new Map<QuantMethod, Map<string, QuantDiagnostics>>();
    for (const method of DIAGNOSE_METHODS) {
      const low = method !== 'rtn';
      const q = quantizeModel(source, stats, method, { wBits: wbits, aBits: abits, layers, outliers: opts.outliers, ...(low ? { rank, rankIncludesOutliers: rankBudget === 'side' } : {}) });
      byMethod.set(method, q.diagnostics);
      say(`diagnose ${METHOD_LABELS[method]}: ${q.diagnostics.size} linears`);
    }
    const linears: LinearDiagnosis[] = [];
    for (const layer of layers) {
      for (const { name: linear, input } of BLOCK_LINEARS) {
        const name = `model.layers.${layer}.${linear}`;
        const d = (m: QuantMethod) => byMethod.get(m)!.get(name)!;
        const ref = source.tensor(`${name}.weight`);
        const [out, inF] = ref.shape as [number, number];
        const w = readTensorF32(ref);
        const xMean = stats.require(layer, input).meanAbs();
        const channelScore = Array.from({ length: inF }, (_, j) => {
          let s = 0;
          for (let o = 0; o < out; o++) s += Math.abs(w[o * inF + j]!);
          return round((xMean[j]! * s) / out);
        });
        const rel = (m: QuantMethod) => d(m).outputErrorAfter / (d(m).outputNorm ?? Number.NaN);
        const sampled = (m: QuantMethod) => (d(m).sampled ? d(m).sampled!.error / d(m).sampled!.norm : Number.NaN);
        linears.push({
          name, layer, linear, inFeatures: inF, outFeatures: out,
          sigmaE: Array.from(d('lorc').sigma, round), sigmaES: Array.from(d('aser-noas').sigma, round),
          erankE: round(d('lorc').erank), erankES: round(d('aser-noas').erank),
          outputError: Object.fromEntries(DIAGNOSE_METHODS.map((m) => [m, round(rel(m))])),
          sampledError: Object.fromEntries(DIAGNOSE_METHODS.map((m) => [m, round(sampled(m))])),
          sideRank: Object.fromEntries(DIAGNOSE_METHODS.map((m) => [m, d(m).sideRank])),
          activationOutlierRatio: round(d('aser').activationOutlierRatio),
          channelScore, outliers: d('aser').outliers,
        });
      }
    }
    return {
      model: opts.model,
      settings: { wbits, abits, rank, rankBudget, outliers: opts.outliers ?? 'auto', calibration: { dataset: calibration.calib, samples: calibration.calibSamples, seqLen: calibration.calibLen, seed: calibration.seed } },
      linears,
    };
  } finally {
    source.close();
  }
}

/** "L2.down" for model.layers.2.mlp.down_proj. */
export function shortLinearName(l: LinearDiagnosis): string {
  return `L${l.layer}.${l.linear.split('.')[1]!.replace('_proj', '')}`;
}

/** The plots, by file name. */
export function diagnosisCharts(d: Diagnosis): Record<string, ChartSpec> {
  const charts: Record<string, ChartSpec> = {};
  // Fig. 2 is one layer's spectra: the middle analysed layer's q and down projections keep it readable.
  const midLayer = d.linears[Math.floor(d.linears.length / 2)]!.layer;
  const mid = d.linears.filter((l) => l.layer === midLayer && ['self_attn.q_proj', 'mlp.down_proj'].includes(l.linear));
  const spectraRows = mid.flatMap((l) =>
    (['E', 'E·S'] as const).flatMap((kind) => {
      const s = kind === 'E' ? l.sigmaE : l.sigmaES;
      return s.map((v, i) => ({ i: i + 1, sigma: v / (s[0] || 1), series: `${shortLinearName(l)} ${kind}` }));
    }),
  ).filter((r) => r.sigma > 0);
  charts['spectra.svg'] = lineChart(spectraRows, { title: `Singular values σ_i/σ_1 of E and E·S, layer ${mid[0]!.layer} (Fig. 2)`, x: 'i', y: 'sigma', series: 'series', logY: true, width: 520 });
  charts['erank.svg'] = barChart(
    d.linears.flatMap((l) => [{ linear: shortLinearName(l), erank: l.erankE, of: 'E' }, { linear: shortLinearName(l), erank: l.erankES, of: 'E·S' }]),
    { title: 'Effective rank of E and E·S per linear (Fig. 3)', x: 'linear', y: 'erank', group: 'of', width: 900 },
  );
  for (const [file, key, what] of [['output-error.svg', 'outputError', 'weights only, via H'], ['sampled-error.svg', 'sampledError', 'whole layer, sampled tokens']] as const) {
    charts[file] = barChart(
      d.linears.flatMap((l) => DIAGNOSE_METHODS.map((m) => ({ linear: shortLinearName(l), error: l[key][m]!, method: METHOD_LABELS[m] }))),
      { title: `Relative output error ‖XEᵀ − XÊᵀ‖/‖XWᵀ‖ (${what}; Fig. 6)`, x: 'linear', y: 'error', group: 'method', width: 900 },
    );
  }
  const worst = d.linears.reduce((a, b) => (b.activationOutlierRatio > a.activationOutlierRatio ? b : a));
  charts['outliers.svg'] = barChart(
    worst.channelScore.map((s, j) => ({ channel: j, score: s, chosen: worst.outliers.includes(j) ? 'ASER outlier' : 'other' })),
    { title: `Channel contribution x̄_j·w̄_j, ${shortLinearName(worst)} (max/median x̄ = ${worst.activationOutlierRatio.toFixed(1)}; Fig. 4)`, x: 'channel', y: 'score', group: 'chosen', width: 900 },
  );
  return charts;
}

/** Per-linear summary table (markdown): erank, relative output errors, outlier ratio. */
export function formatDiagnosisMarkdown(d: Diagnosis): string {
  const head = ['linear', 'in×out', 'erank E', 'erank E·S', 'x̄ max/med', ...DIAGNOSE_METHODS.map((m) => `${METHOD_LABELS[m]} err`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const l of d.linears) {
    lines.push(`| ${[shortLinearName(l), `${l.inFeatures}×${l.outFeatures}`, l.erankE.toFixed(1), l.erankES.toFixed(1), l.activationOutlierRatio.toFixed(1), ...DIAGNOSE_METHODS.map((m) => l.outputError[m]!.toFixed(4))].join(' | ')} |`);
  }
  const mean = (m: QuantMethod, key: 'outputError' | 'sampledError') => d.linears.reduce((s, l) => s + l[key][m]!, 0) / d.linears.length;
  lines.push(`| **mean** | | | | | ${DIAGNOSE_METHODS.map((m) => `**${mean(m, 'outputError').toFixed(4)}**`).join(' | ')} |`);
  lines.push(`| mean, sampled (A${d.settings.abits}) | | | | | ${DIAGNOSE_METHODS.map((m) => mean(m, 'sampledError').toFixed(4)).join(' | ')} |`);
  return `${lines.join('\n')}\n\nRelative output error ‖X(W − W_eff)ᵀ‖/‖XWᵀ‖ via H (weights only); "sampled" adds A${d.settings.abits} activation quantization on the calibration sample. ${d.settings.rankBudget === 'side' ? `Side-path width ${d.settings.rank} per linear for every low-rank method (ASER: ${d.settings.rank} − f + f outlier columns)` : `Reconstruction rank ${d.settings.rank} per linear; ASER's f outlier columns on top`}.\n`;
}
