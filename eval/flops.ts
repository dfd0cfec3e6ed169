// FLOPs and memory accounting of the ASER side path, per layer and for the whole model. Pure.
//
// Counted per token and per block linear (what the side path touches), in multiply-accumulates:
//   base  = in · out                    (the W4A8 integer product)
//   side  = w · (in + out)              (x̃·L_A then t·L_B, w = r + f columns of L_A: rank r plus f outlier columns)
//   +FLOPs = Σ side / Σ base            (2w/d for a square d × d linear: the paper's Table 4 column)
// "Rank" means what `--rank` sets everywhere in aser: the reconstruction rank r, outlier columns not
// counted; the side-path width w = r + f is what the arithmetic and the bytes follow (docs/quantization.md).
// Parameters: base in·out weights; side r·(in + out). Bytes as the runtime stores them: int4 weights
// (in padded to 32) plus an f32 scale per output channel (and f32 smoothing per input channel when
// smoothed); L_A/L_B as the artifact stores them: f16 (2 bytes per value) or int8 (1 byte per value
// plus an f32 scale per rank index for each factor: 8 bytes per rank), `lowRankDtype`.
// The byte share over the FLOPs share (`bytesPerFlopsShare`) says how far a bandwidth-bound decode's
// side-path time exceeds its FLOPs share: 4× for f16 factors beside int4 weights on square layers.
import { linearShapes } from '../runtime/memory-plan.js';
import { BLOCK_LINEARS, type BlockLinearName, type ModelConfig } from '../core/model.js';
import { w4PaddedIn } from '../core/w4-layout.js';
import { lowRankInt8Bytes } from '../core/lowrank-int8.js';
import type { LowRankDtype } from '../core/quantized.js';

export interface LinearAccountingInput {
  layer: number;
  name: string;
  inFeatures: number;
  outFeatures: number;
  /** Reconstruction rank r (what --rank sets); may be fractional when it stands for a mean. */
  rank: number;
  /** Outlier columns f carried exactly beside the rank (side-path width r + f); default 0. */
  outlierColumns?: number;
  smooth?: boolean;
}

export interface FlopsRow {
  /** Layer index, or -1 for the whole-model row. */
  layer: number;
  linears: number;
  baseMacs: number;
  sideMacs: number;
  /** 100 · side / base. */
  flopsPct: number;
  /** Mean reconstruction rank over the linears (unweighted, as the paper's r̄); outlier columns not counted. */
  meanRank: number;
  /** Mean side-path width (rank + outlier columns), which the FLOPs and bytes follow. */
  meanSideWidth: number;
  baseParams: number;
  sideParams: number;
  paramPct: number;
  baseBytes: number;
  sideBytes: number;
  bytePct: number;
  /** bytePct / flopsPct: the side path's share of the bytes per unit of its share of the FLOPs (0 without side path). */
  bytesPerFlopsShare: number;
}

export interface FlopsAccounting {
  layers: FlopsRow[];
  total: FlopsRow;
}

export interface FlopsOptions {
  wBits?: number;
  /** How L_A/L_B are stored (default f16). */
  lowRankDtype?: LowRankDtype;
}

function row(layer: number, ls: LinearAccountingInput[], o: Required<FlopsOptions>): FlopsRow {
  let baseMacs = 0, sideMacs = 0, rankSum = 0, widthSum = 0, baseBytes = 0, sideBytes = 0;
  for (const l of ls) {
    const width = l.rank + (l.outlierColumns ?? 0);
    sideBytes += o.lowRankDtype === 'int8' ? lowRankInt8Bytes(l.inFeatures, l.outFeatures, width) : 2 * width * (l.inFeatures + l.outFeatures);
    baseMacs += l.inFeatures * l.outFeatures;
    sideMacs += width * (l.inFeatures + l.outFeatures);
    rankSum += l.rank;
    widthSum += width;
    const paddedIn = w4PaddedIn(l.inFeatures);
    baseBytes += (paddedIn * l.outFeatures * o.wBits) / 8 + 4 * l.outFeatures + (l.smooth ? 4 * l.inFeatures : 0);
  }
  const pct = (a: number, b: number) => (b > 0 ? (100 * a) / b : 0);
  return {
    layer, linears: ls.length, baseMacs, sideMacs, flopsPct: pct(sideMacs, baseMacs), meanRank: ls.length ? rankSum / ls.length : 0,
    meanSideWidth: ls.length ? widthSum / ls.length : 0,
    baseParams: baseMacs, sideParams: sideMacs, paramPct: pct(sideMacs, baseMacs), baseBytes, sideBytes, bytePct: pct(sideBytes, baseBytes),
    bytesPerFlopsShare: sideMacs > 0 ? pct(sideBytes, baseBytes) / pct(sideMacs, baseMacs) : 0,
  };
}

/** Per-layer rows (sorted by layer) and the whole-model row. */
export function flopsAccounting(linears: LinearAccountingInput[], opts: FlopsOptions = {}): FlopsAccounting {
  const o = { wBits: opts.wBits ?? 4, lowRankDtype: opts.lowRankDtype ?? 'f16' };
  const byLayer = new Map<number, LinearAccountingInput[]>();
  for (const l of linears) byLayer.set(l.layer, [...(byLayer.get(l.layer) ?? []), l]);
  const layers = [...byLayer.keys()].sort((a, b) => a - b).map((k) => row(k, byLayer.get(k)!, o));
  return { layers, total: row(-1, linears, o) };
}

/**
 * The block linears of a config with given ranks: one number for every linear (a mean rank), or one
 * per linear in layer-major BLOCK_LINEARS order (nLayers · 7 values).
 */
export function configLinears(c: ModelConfig, ranks: number | number[]): LinearAccountingInput[] {
  const shapes = linearShapes(c);
  const n = c.nLayers * BLOCK_LINEARS.length;
  if (Array.isArray(ranks) && ranks.length !== n && ranks.length !== 1) {
    throw new RangeError(`${ranks.length} ranks given; need 1 or ${n} (${c.nLayers} layers × ${BLOCK_LINEARS.length} linears)`);
  }
  const out: LinearAccountingInput[] = [];
  for (let layer = 0; layer < c.nLayers; layer++) {
    BLOCK_LINEARS.forEach(({ name }, j) => {
      const s = shapes[name as BlockLinearName];
      const rank = Array.isArray(ranks) ? ranks[ranks.length === 1 ? 0 : layer * BLOCK_LINEARS.length + j]! : ranks;
      out.push({ layer, name, inFeatures: s.in, outFeatures: s.out, rank });
    });
  }
  return out;
}

/**
 * The linears of an artifact manifest's `layers` (module names "model.layers.<i>.<linear>"). The
 * manifest's `rank` is the side-path width; its `errorRank` is the rank --rank set.
 */
export function manifestLinears(layers: Record<string, { inFeatures: number; outFeatures: number; rank: number; errorRank?: number; smooth: boolean }>): LinearAccountingInput[] {
  return Object.entries(layers).map(([module, l]) => {
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(module);
    const rank = l.errorRank ?? l.rank;
    return { layer: m ? Number(m[1]) : -1, name: m ? m[2]! : module, inFeatures: l.inFeatures, outFeatures: l.outFeatures, rank, outlierColumns: l.rank - rank, smooth: l.smooth };
  });
}

/**
 * Each linear's side-path columns, a row per layer and a column per linear: "r + f" (reconstruction
 * rank + exactly carried outlier columns) where the split is known, else the total.
 */
export function formatRankGridMarkdown(linears: LinearAccountingInput[]): string {
  const names = [...new Set(linears.map((l) => l.name))];
  const layers = [...new Set(linears.map((l) => l.layer))].sort((a, b) => a - b);
  const cell = (l: LinearAccountingInput | undefined) =>
    !l ? '–' : l.outlierColumns ? `${l.rank} + ${l.outlierColumns}` : String(l.rank);
  return [
    `| layer | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
    ...layers.map((layer) => `| ${layer} | ${names.map((n) => cell(linears.find((l) => l.layer === layer && l.name === n))).join(' | ')} |`),
  ].join('\n');
}

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));

export function formatFlopsMarkdown(a: FlopsAccounting): string {
  // Results saved before meanSideWidth existed (report results.json) held the width in meanRank.
  const line = (r: FlopsRow) =>
    `| ${r.layer < 0 ? '**model**' : r.layer} | ${r.linears} | ${human(r.baseMacs)} | ${human(r.sideMacs)} | ${r.flopsPct.toFixed(2)} % | ${r.meanSideWidth === undefined ? '–' : r.meanRank.toFixed(2)} | ${(r.meanSideWidth ?? r.meanRank).toFixed(2)} | ${human(r.sideParams)} (${r.paramPct.toFixed(2)} %) | ${human(r.baseBytes)}B | ${human(r.sideBytes)}B (${r.bytePct.toFixed(2)} %) | ${r.bytesPerFlopsShare === undefined ? '–' : `${r.bytesPerFlopsShare.toFixed(2)}×`} |`;
  return [
    '| layer | linears | base MACs/token | side MACs/token | +FLOPs | mean rank | side width | side params | base bytes | side bytes | bytes share / FLOPs share |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...a.layers.map(line),
    line(a.total),
  ].join('\n');
}
