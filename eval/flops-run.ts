// `aser flops` as a library call: the side-path accounting (eval/flops.ts) of an artifact's ranks, or of
// a config (node/plan.ts resolvePlanConfig) with given ranks or the mean rank α implies.
import { readArtifactManifest } from '../loaders/artifact-manifest.js';
import { meanRankForAlpha } from '../runtime/memory-plan.js';
import { MemoryPlanError } from '../runtime/errors.js';
import { UsageError } from '../core/errors.js';
import type { LowRankDtype } from '../core/quantized.js';
import { resolvePlanConfig } from '../node/plan.js';
import { configLinears, flopsAccounting, manifestLinears, type FlopsAccounting, type LinearAccountingInput } from './flops.js';
import type { ArtifactBudget } from '../loaders/artifact-manifest.js';

export interface FlopsRequest {
  /** Artifact directory: its shapes and per-linear ranks. */
  artifact?: string;
  /** HF config.json, or a preset/path whose config to use (with `ranks` or `alpha`). */
  config?: string;
  model?: string;
  /** One rank for every linear (a mean, may be fractional), or nLayers×7 comma-separated ranks. */
  ranks?: string;
  alpha?: number;
  /** L_A/L_B storage for --config/--model (an artifact records its own). */
  lowRankDtype?: LowRankDtype;
}

/** The accounting a request asks for, and a line saying what it is over; bad combinations are UsageErrors. */
export function runFlops(req: FlopsRequest): { accounting: FlopsAccounting; origin: string; linears: LinearAccountingInput[]; budget?: ArtifactBudget } {
  if (req.artifact) {
    if (req.config || req.model || req.ranks || req.alpha !== undefined || req.lowRankDtype) throw new UsageError('--artifact carries its own shapes, ranks and L_A/L_B dtype; drop --config/--model/--ranks/--alpha/--lowrank-dtype');
    const manifest = readArtifactManifest(req.artifact);
    const linears = manifestLinears(manifest.layers);
    const b = manifest.budget;
    return {
      accounting: flopsAccounting(linears, { wBits: manifest.wBits, lowRankDtype: manifest.lowRankDtype }), linears,
      origin: `${req.artifact} (${manifest.method} W${manifest.wBits}A${manifest.aBits}, ${manifest.lowRankDtype} L_A/L_B${b ? `, ranks allocated for +${b.percent} % ${b.unit}` : ''})`,
      ...(b ? { budget: b } : {}),
    };
  }
  if (!req.config && !req.model) throw new UsageError('give --artifact DIR, or --config config.json / --model NAME with --ranks or --alpha');
  if (req.ranks === undefined && req.alpha === undefined) throw new UsageError('--config/--model need --ranks R[,R…] or --alpha A');
  const { config, origin: where } = resolvePlanConfig(req.model, req.config);
  let ranks: number | number[];
  if (req.alpha !== undefined) {
    try {
      ranks = meanRankForAlpha(req.alpha, config.dim);
    } catch (err) {
      if (err instanceof MemoryPlanError) throw new UsageError(err.message);
      throw err;
    }
  } else {
    const list = req.ranks!.split(',').map((s) => Number(s.trim()));
    if (list.some((r) => !Number.isFinite(r) || r < 0)) throw new UsageError(`--ranks ${req.ranks}: ranks must be non-negative numbers`);
    ranks = list.length === 1 ? list[0]! : list;
  }
  let accounting: FlopsAccounting;
  let linears: LinearAccountingInput[];
  try {
    linears = configLinears(config, ranks);
    accounting = flopsAccounting(linears, { lowRankDtype: req.lowRankDtype });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(`--ranks: ${err.message}`);
    throw err;
  }
  return { accounting, linears, origin: `${where}${req.alpha !== undefined ? `, α = ${req.alpha} → mean rank ${(ranks as number).toFixed(2)}` : ''}, ${req.lowRankDtype ?? 'f16'} L_A/L_B` };
}
