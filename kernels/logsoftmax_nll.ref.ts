// CPU reference for kernels/logsoftmax_nll.wgsl (float64): logits [rows, vocab] -> NLL of each row's target.
export function logsoftmaxNllRef(logits: Float32Array, vocab: number, targets: ArrayLike<number>): Float64Array {
  const rows = logits.length / vocab;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let v = 0; v < vocab; v++) mx = Math.max(mx, logits[r * vocab + v]!);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[r * vocab + v]! - mx);
    const target = targets[r]!;
    out[r] = target < vocab ? mx + Math.log(sum) - logits[r * vocab + target]! : 0;
  }
  return out;
}
