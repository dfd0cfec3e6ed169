// The one in-memory form of a quantized linear layer, shared by the quantizer (quant/), the artifact
// reader/writer (loaders/artifact.ts) and the fused kernels (kernels/w4a8_*). Portable.
//
//   y = s_x · s_w[o] · Σ_k Xq[t,k]·Wq[o,k]  +  Σ_j (x̃[t,:]·L_A[:,j]) · L_B[j,o]  (+ bias[o])
//   where x̃ = x / smooth (per input channel), Xq = round(x̃ / s_x) per token with s_x = absmax(x̃)/qmax.

export interface QuantizedLinear {
  inFeatures: number;
  outFeatures: number;
  /** Weight bits (4); values lie in [-(2^(b-1)-1), 2^(b-1)-1], i.e. -7..7 for 4 bits (symmetric). */
  wBits: number;
  /** Activation bits (8, 6 or 4): qmax = 2^(b-1)-1 → 127, 31, 7. */
  aBits: number;
  /** Packed weight words in the GPU layout of kernels/w4_layout.ts (packW4). */
  qweight: Uint32Array;
  /** Per-output-channel weight scale, [out]. */
  wScale: Float32Array;
  /** Per-input-channel smoothing divisor m (x̃ = x / m), [in]; absent = no smoothing. */
  smooth?: Float32Array;
  /** Low-rank error reconstruction: L_A [in, rank] row-major and L_B [rank, out] row-major; rank 0 = none. */
  rank: number;
  la?: Float32Array;
  lb?: Float32Array;
  bias?: Float32Array;
  /**
   * Outlier input channels kept in higher precision (LLM.int4()-style mixed precision): for these
   * channels the weight columns are zero in `qweight` and `outlierWeight` [out, nOutliers] holds them
   * in f32, multiplied with the unquantized (smoothed) activations.
   */
  outlierChannels?: Uint32Array;
  outlierWeight?: Float32Array;
}
