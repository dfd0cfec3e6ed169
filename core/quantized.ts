// The one in-memory form of a quantized linear layer, shared by the quantizer (quant/), the artifact
// reader/writer (loaders/artifact*.ts) and the fused kernels (kernels/w4a8_*). Portable.
//
//   y = s_x · s_w[o] · Σ_k Xq[t,k]·Wq[o,k]  +  Σ_j (x̃[t,:]·L_A[:,j]) · L_B[j,o]  (+ bias[o])
//   where x̃ = x / smooth (per input channel), Xq = round(x̃ / s_x) per token with s_x = absmax(x̃)/qmax.

export interface QuantizedLinear {
  inFeatures: number;
  outFeatures: number;
  /**
   * Weight bits, 4 or 8 (the fused kernels' int4 and per-channel int8 variants, e.g. a quantized
   * classifier); values lie in [-(2^(b-1)-1), 2^(b-1)-1]: -7..7 or -127..127 (symmetric).
   */
  wBits: number;
  /** Activation bits (8, 6 or 4): qmax = 2^(b-1)-1 → 127, 31, 7. */
  aBits: number;
  /** Packed weight words: core/w4-layout.ts (packW4) for wBits 4, core/w8-layout.ts (packW8) for 8. */
  qweight: Uint32Array;
  /** Per-output-channel weight scale, [out]. */
  wScale: Float32Array;
  /** Per-input-channel smoothing divisor m (x̃ = x / m), [in]; absent = no smoothing. */
  smooth?: Float32Array;
  /** Low-rank error reconstruction: L_A [in, rank] row-major and L_B [rank, out] row-major; rank 0 = none. */
  rank: number;
  la?: Float32Array;
  lb?: Float32Array;
  /**
   * The side path stored in 8 bits (artifact lowRankDtype 'int8'): L_A and L_B as int8 with one scale
   * per rank index j (column j of L_A, row j of L_B). `la` / `lb` then hold exactly q·scale in f32, so
   * every consumer of the f32 factors (simulation, references, accounting) sees the stored values;
   * the fused kernels read the int8 form.
   */
  lowRankInt8?: LowRankInt8;
  bias?: Float32Array;
  /**
   * Input channels whose (smoothed) weight columns were kept in floating point instead of int4
   * (ASER's outlier set O_f, LLM.int4()'s threshold channels). Their columns are zero in `qweight`
   * and their exact product is carried by the side path: the quantizer appends one L_A column per
   * outlier channel (one-hot e_j) and the matching L_B row (the column of W, transposed), so the
   * kernels need no separate outlier path. Recorded here for accounting and diagnostics only.
   */
  outlierChannels?: Uint32Array;
}

/** The activation widths the fused W4A8 kernels support (A8/A6/A4), widest first. */
export const ACTIVATION_BITS = [8, 6, 4] as const;
export type ActivationBits = (typeof ACTIVATION_BITS)[number];

/** "8, 6 or 4", for messages. */
export const ACTIVATION_BITS_TEXT = `${ACTIVATION_BITS.slice(0, -1).join(', ')} or ${ACTIVATION_BITS[ACTIVATION_BITS.length - 1]}`;

export function isActivationBits(bits: unknown): bits is ActivationBits {
  return (ACTIVATION_BITS as readonly unknown[]).includes(bits);
}

/** Largest integer level of a symmetric b-bit quantizer: 2^(b-1) - 1 (127, 31, 7 for 8, 6, 4 bits). */
export function symmetricQmax(bits: number): number {
  return 2 ** (bits - 1) - 1;
}

/**
 * How an artifact stores the classifier (lm_head, or the tied embedding): 'f16' dense, or per-output-
 * channel int8 / int4 weights run through the integer kernels with 8-bit per-token activations.
 */
export const CLASSIFIER_FORMATS = ['f16', 'int8', 'int4'] as const;
export type ClassifierFormat = (typeof CLASSIFIER_FORMATS)[number];

export function isClassifierFormat(x: unknown): x is ClassifierFormat {
  return (CLASSIFIER_FORMATS as readonly unknown[]).includes(x);
}

/**
 * The classifier format `aser quantize` writes unless told otherwise: int8 moves stories260K's
 * perplexity by less than 0.2 % on TinyStories and WikiText-2 (docs/numbers.md, "Classifier formats")
 * and reads a quarter of the f32 classifier's bytes per decoded token.
 */
export const DEFAULT_CLASSIFIER_FORMAT: ClassifierFormat = 'int8';

/** Weight bits of a quantized classifier format (undefined for 'f16'). */
export function classifierWeightBits(format: ClassifierFormat): 8 | 4 | undefined {
  return format === 'int8' ? 8 : format === 'int4' ? 4 : undefined;
}


/** Activation bits of a quantized classifier: its input (the final-normed hidden state) keeps 8 bits. */
export const CLASSIFIER_ACTIVATION_BITS = 8;

/**
 * Where a quantizer's smoothing vector m is decided: once per shared input ('shared-input': q|k|v
 * share one m, gate|up another, so the runtime can quantize that input once and run the group as one
 * dispatch over stacked rows) or per linear ('per-linear', the format-1 behaviour). Recorded in the
 * artifact manifest (loaders/artifact-manifest.ts).
 */
export const SMOOTHING_SCOPES = ['shared-input', 'per-linear'] as const;
export type SmoothingScope = (typeof SMOOTHING_SCOPES)[number];
export const DEFAULT_SMOOTHING_SCOPE: SmoothingScope = 'shared-input';

export function isSmoothingScope(x: unknown): x is SmoothingScope {
  return (SMOOTHING_SCOPES as readonly unknown[]).includes(x);
}

/** L_A [in, rank] and L_B [rank, out] as symmetric int8 (−127..127), one f32 scale per rank index. */
export interface LowRankInt8 {
  la: Int8Array;
  /** Per column j of L_A: L_A[k, j] = la[k·rank + j] · laScale[j]. */
  laScale: Float32Array;
  lb: Int8Array;
  /** Per row j of L_B: L_B[j, o] = lb[j·out + o] · lbScale[j]. */
  lbScale: Float32Array;
}

/** How an artifact stores L_A and L_B: f16, or int8 with a scale per rank index (LowRankInt8). */
export const LOW_RANK_DTYPES = ['f16', 'int8'] as const;
export type LowRankDtype = (typeof LOW_RANK_DTYPES)[number];

/**
 * The low-rank storage `aser quantize` writes unless told otherwise. int8 becomes the default only
 * where it moves perplexity by less than 0.1 % relative at every measured width; on stories260K it
 * does at A8 but not at A6 on TinyStories (docs/numbers.md, "Side path in 8 bits"), so f16 stays.
 */
export const DEFAULT_LOW_RANK_DTYPE: LowRankDtype = 'f16';

export function isLowRankDtype(x: unknown): x is LowRankDtype {
  return (LOW_RANK_DTYPES as readonly unknown[]).includes(x);
}
