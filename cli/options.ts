// Option blocks shared by several commands, defined once. A command spreads the blocks it takes into
// `.options({...})`; where a command needs other wording or another default it overrides one field.
import { UsageError } from '../core/errors.js';
import { ACTIVATION_BITS, type SmoothingScope } from '../core/quantized.js';
import { QUANT_METHODS } from '../quant/methods.js';

/** `--check-numerics`, for the commands that run a model (ppl, generate, serve). */
export const numericsOption = {
  'check-numerics': { type: 'boolean', default: false, describe: 'Check every block\'s outputs for NaN/Inf and name the first bad layer and op (slow: a readback per layer)' },
} as const;

/** `--model`, the model every command that loads weights starts from. */
export const modelOption = {
  model: { type: 'string', default: 'stories260k', describe: 'Preset name from models.json, a llama2.c .bin file, or a Hugging Face model directory' },
} as const;

export const modelOptions = {
  ...modelOption,
  dtype: { type: 'string', choices: ['f32', 'f16'], default: 'f32', describe: 'Weight precision of the dense path (f16 needs shader-f16)' },
  tokenizer: { type: 'string', describe: 'tokenizer.json or llama2.c tokenizer.bin (default: next to the model)' },
  artifact: { type: 'string', describe: 'Quantized artifact directory (from aser quantize): runs the fused W4A8 kernels' },
} as const;

/** The model options of `aser serve` and `aser chat`. */
export const servingOptions = {
  ...modelOptions,
  ...numericsOption,
  artifact: { type: 'string', describe: 'ASER artifact directory (quantized weights) to serve instead of the dense model' },
  ctx: { type: 'number', describe: 'Context length in tokens (default: the model\'s maximum)' },
  'served-name': { type: 'string', describe: 'Model id that clients send and /v1/models lists (default: the model\'s id)' },
} as const;

/** `--ctx`, the perplexity / evaluation window. */
export const ctxOption = {
  ctx: { type: 'number', default: 256, describe: 'Window length in tokens' },
} as const;

export const wbitsOption = {
  wbits: { type: 'number', default: 4, describe: 'Weight bits (4)' },
} as const;

/** One activation width. */
export const abitsOption = {
  abits: { type: 'number', choices: [...ACTIVATION_BITS], default: 8, describe: 'Activation bits' },
} as const;

/** Several activation widths, as a comma list. */
export const abitsListOption = {
  abits: { type: 'string', default: '8,6', describe: `Comma list of activation bits (${ACTIVATION_BITS.join(', ')})` },
} as const;

export const methodOption = {
  method: { type: 'string', choices: [...QUANT_METHODS], default: 'aser', describe: 'Quantization method' },
} as const;

/** The calibration sample: text, window count and length, and the seed of the window draw. */
export const calibrationOptions = {
  calib: { type: 'string', default: 'tinystories', describe: 'Calibration text: tinystories | c4 (train sample) | a text file' },
  'calib-samples': { type: 'number', default: 64, describe: 'Calibration windows N' },
  'calib-len': { type: 'number', default: 256, describe: 'Tokens per calibration window L' },
  seed: { type: 'number', default: 0, describe: 'Seed for the calibration windows' },
} as const;

/**
 * A fixed side-path size means the same in every command that takes one (quantize, eval ppl, eval
 * diagnose): --rank R is the reconstruction rank, ASER's f exact outlier columns on top (side path
 * R + f wide); --side-width W is the whole side path, outlier columns counted against it (ASER
 * reconstructs W − f): the equal budget the method table compares at. docs/quantization.md.
 */
export const rankOptions = {
  rank: { type: 'number', describe: "Reconstruction rank r per linear; ASER's f outlier columns come on top (side path r + f wide)" },
  'side-width': { type: 'number', describe: "Side-path columns per linear in all; ASER's f outlier columns count against it (it reconstructs width − f)" },
} as const;

/** --rank / --side-width as the quantizer takes them: a rank, and whether outlier columns count against it. */
export function sidePathSize(args: { rank?: number; sideWidth?: number }): { rank?: number; countsOutliers: boolean } {
  if (args.rank !== undefined && args.sideWidth !== undefined) throw new UsageError('give --rank or --side-width, not both', '--rank is the reconstruction rank; --side-width counts outlier columns too');
  return args.sideWidth !== undefined ? { rank: args.sideWidth, countsOutliers: true } : { rank: args.rank, countsOutliers: false };
}

export const alphaOption = {
  alpha: { type: 'number', describe: 'Rank threshold α (paper Eq. 9) instead of --rank' },
} as const;

/** `--outliers N | auto` (parsed by the command). */
export const outliersOption = {
  outliers: { type: 'string', describe: "ASER's outlier channels f per linear, or 'auto' (default)" },
} as const;

/** `--outlier-columns exact | reconstructed` (ASER): how the unquantized outlier columns are carried. */
export const outlierColumnsOption = {
  'outlier-columns': {
    type: 'string', choices: ['exact', 'reconstructed'], default: 'exact',
    describe: "ASER's outlier columns: exact (zeroed in E, f one-hot side-path columns) or reconstructed (kept in E, carried by the rank-r path)",
  },
} as const;

/** `--json`; each command says what it prints. */
export function jsonOption(describe = 'Print one JSON object') {
  return { json: { type: 'boolean', default: false, describe } } as const;
}

/** `--overwrite`, for the commands that write a directory or file atomically. */
export function overwriteOption(what: 'directory' | 'file' = 'directory') {
  return { overwrite: { type: 'boolean', default: false, describe: `Replace an existing output ${what}` } } as const;
}

/** `--cache` / `--no-cache` of the cached evaluation suites. */
export function cacheOption(describe = 'Reuse cached results (--no-cache recomputes)') {
  return { cache: { type: 'boolean', default: true, describe } } as const;
}

/** `--smoothing shared | per-linear` of the commands that quantize. */
export const smoothingOption = {
  smoothing: {
    type: 'string', default: 'shared',
    describe: 'Smoothing vector per shared input (shared: q|k|v one, gate|up one, so the runtime can quantize each input once) or per linear',
  },
} as const;

/** "shared" (or "shared-input") | "per-linear" → the scope; anything else is a one-line usage error. */
export function parseSmoothing(value: string | undefined, option = '--smoothing'): SmoothingScope {
  if (value === undefined || value === 'shared' || value === 'shared-input') return 'shared-input';
  if (value === 'per-linear') return 'per-linear';
  throw new UsageError(`${option} ${JSON.stringify(value)}: must be shared or per-linear`, 'shared (default): one smoothing vector per shared input; per-linear: one per linear (format-1 behaviour)');
}
