/// <reference types="@webgpu/types" />
// Reading forward results back to the host, each scanned for NaN/Inf: the last token's logits, a token
// sampled on the GPU (with the count of NaN/Inf logits it saw), the per-row NLLs of an nll() call,
// whole logit rows. Full logit rows of nll() never leave the GPU (its
// log-softmax and target NLL run there). A scan reports what it found (NonFiniteReport, as the
// --check-numerics checker does); the executor throws it.
import { readMappedF32, readMappedU32 } from './buffers.js';
import type { NonFiniteReport } from './numerics.js';
import { UNSCORED_TARGET } from '../kernels/logsoftmax_nll.js';

/** What a NaN/Inf message says about the run it happened in. */
export interface RunDescription {
  modelId: string;
  /** Forward calls so far (the one that produced the values included). */
  step: number;
  dtype: string;
  kvDtype: string;
  /** Whether --check-numerics is on (else the message suggests it). */
  checkNumerics: boolean;
}

/** Values read back, or what was wrong with them. */
export type Checked<T> = { values: T; nonFinite?: undefined } | { values?: undefined; nonFinite: NonFiniteReport };

const hint = (run: RunDescription) => (run.checkNumerics ? '' : '; rerun with --check-numerics to find the first bad layer');

/** Row `row` of the [rows, vocab] `logits` through the `staging` readback buffer ([vocab] f32), for position `position`. */
export async function readLogitsRow(
  device: GPUDevice, logits: GPUBuffer, row: number, vocab: number, staging: GPUBuffer, position: number, run: RunDescription,
): Promise<Checked<Float32Array>> {
  const enc = device.createCommandEncoder({ label: 'logits/read' });
  enc.copyBufferToBuffer(logits, row * vocab * 4, staging, 0, vocab * 4);
  device.queue.submit([enc.finish()]);
  const out = await readMappedF32(staging, vocab * 4);
  let bad = 0;
  for (let i = 0; i < vocab; i++) if (!Number.isFinite(out[i]!)) bad++;
  if (!bad) return { values: out };
  return {
    nonFinite: {
      message: `${run.modelId}: ${bad} of ${vocab} logits are NaN/Inf at position ${position} (step ${run.step}, ${run.dtype} weights, ${run.kvDtype} KV cache)` + hint(run),
      where: { step: run.step, position },
    },
  };
}

/** The token a sample dispatch copied into `staging` (u32 [2]: id, non-finite logits in its row), for position `position`. */
export async function readSampled(staging: GPUBuffer, vocab: number, position: number, run: RunDescription): Promise<Checked<number>> {
  const [id, bad] = await readMappedU32(staging, 8);
  if (!bad) return { values: id! };
  return {
    nonFinite: {
      message: `${run.modelId}: ${bad} of ${vocab} logits are NaN/Inf at position ${position} (step ${run.step}, ${run.dtype} weights, ${run.kvDtype} KV cache)` + hint(run),
      where: { step: run.step, position },
    },
  };
}

/**
 * The NLLs of an nll() call from `nllOut` ([rows, 2] f32: nll, count of non-finite logits) through
 * `staging`: NaN where `targets` marks a row unscored. `start` is the position of row 0.
 */
export async function readNll(
  device: GPUDevice, nllOut: GPUBuffer, staging: GPUBuffer, targets: Uint32Array, vocab: number, start: number, run: RunDescription,
): Promise<Checked<Float64Array>> {
  const rows = targets.length;
  const bytes = rows * 8;
  const enc = device.createCommandEncoder({ label: 'nll/read' });
  enc.copyBufferToBuffer(nllOut, 0, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  const raw = await readMappedF32(staging, bytes);
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    if (targets[i] === UNSCORED_TARGET) {
      out[i] = NaN;
      continue;
    }
    if (raw[2 * i + 1]! > 0 || !Number.isFinite(raw[2 * i]!)) {
      return {
        nonFinite: {
          message: `${run.modelId}: ${raw[2 * i + 1]} of ${vocab} logits are NaN/Inf at position ${start + i} (nll step ${run.step}, ${run.dtype} weights, ${run.kvDtype} KV cache)` + hint(run),
          where: { step: run.step, position: start + i },
        },
      };
    }
    out[i] = raw[2 * i]!;
  }
  return { values: out };
}

/** The [rows, vocab] logits a logitRows() forward copied into the readback buffer `rowsRead`; `start` is row 0's position. */
export async function readLogitRows(rowsRead: GPUBuffer, bytes: number, vocab: number, start: number, run: RunDescription): Promise<Checked<Float32Array>> {
  const out = await readMappedF32(rowsRead, bytes);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) {
      const position = start + Math.floor(i / vocab);
      return { nonFinite: { message: `${run.modelId}: NaN/Inf logits at position ${position} (logitRows step ${run.step}, ${run.dtype} weights, ${run.kvDtype} KV cache)`, where: {} } };
    }
  }
  return { values: out };
}
