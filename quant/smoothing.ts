// Step 1 of every method (quant/methods.ts): the per-input-channel smoothing m and the channels carried
// exactly by the side path — SmoothQuant's migration scales, ASER's activation-smoothing outlier set,
// LLM.int4()'s threshold channels — from calibration statistics and weight column statistics. For the
// linears of one shared input (q|k|v, gate|up) the column statistics are over their stacked rows, so
// the group gets one m and one exact set (quant/methods.ts planSmoothing).

export function median(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const n = sorted.length;
  return n === 0 ? 0 : n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/**
 * max_o |W[o, j]| and mean_o |W[o, j]| per input column j, over the rows of every given weight
 * stacked ([W_q; W_k; W_v] for a shared input): the weight side of the smoothing statistics. One
 * weight gives its own column statistics.
 */
export function columnAbsStats(weights: ReadonlyArray<{ w: Float32Array; out: number }>, inF: number): { maxAbs: Float64Array; meanAbs: Float64Array } {
  const maxAbs = new Float64Array(inF);
  const meanAbs = new Float64Array(inF);
  let rows = 0;
  for (const { w, out } of weights) {
    for (let o = 0; o < out; o++) {
      for (let i = 0, row = o * inF; i < inF; i++) {
        const a = Math.abs(w[row + i]!);
        meanAbs[i] += a;
        if (a > maxAbs[i]!) maxAbs[i] = a;
      }
    }
    rows += out;
  }
  for (let i = 0; i < inF; i++) meanAbs[i] /= rows;
  return { maxAbs, meanAbs };
}

/** SmoothQuant: s_j = max|X_j|^a / max|W_j|^(1−a), f32; 1 where a channel or column is all zero. */
export function smoothQuantScales(xMax: Float64Array, wMax: Float64Array, a: number): Float32Array {
  const s = new Float32Array(xMax.length);
  for (let j = 0; j < s.length; j++) {
    const v = Math.pow(xMax[j]!, a) / Math.pow(wMax[j]!, 1 - a);
    s[j] = Number.isFinite(v) && v > 0 ? v : 1;
  }
  return s;
}

/** ASER's outlier set: the f channels with the largest x̄_j · w̄_j, and M (m_j = x̄_j / min_{k∈O} x̄_k on O, else 1). */
export function aserSmoothing(xMean: Float64Array, wMean: Float64Array, f: number): { smooth: Float32Array; outliers: number[] } {
  const n = xMean.length;
  const order = Array.from({ length: n }, (_, j) => j)
    .filter((j) => xMean[j]! > 0)
    .sort((a, b) => xMean[b]! * wMean[b]! - xMean[a]! * wMean[a]! || a - b);
  const outliers = order.slice(0, Math.min(f, order.length)).sort((a, b) => a - b);
  const smooth = new Float32Array(n).fill(1);
  if (outliers.length === 0) return { smooth, outliers };
  const floor = Math.min(...outliers.map((j) => xMean[j]!));
  for (const j of outliers) smooth[j] = Math.max(1, xMean[j]! / floor);
  return { smooth, outliers };
}

/** LLM.int4(): channels with max|X_j| ≥ threshold are exact; they are scaled down to the median channel max. */
export function llmInt4Smoothing(xMax: Float64Array, threshold: number): { smooth: Float32Array; outliers: number[] } {
  const outliers: number[] = [];
  const rest: number[] = [];
  xMax.forEach((v, j) => (v >= threshold ? outliers.push(j) : rest.push(v)));
  const smooth = new Float32Array(xMax.length).fill(1);
  // The exact channels still pass through the activation quantizer (their W columns are zero there);
  // shrinking them to a typical channel's level keeps them from setting every token's scale.
  const level = Math.max(median(rest), 1e-6);
  for (const j of outliers) smooth[j] = Math.max(1, xMax[j]! / level);
  return { smooth, outliers };
}
