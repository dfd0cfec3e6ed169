// Plan for kernels/logsoftmax_nll.wgsl: per-row NLL of a target token, computed where the logits are.
import { grid1d, packUniforms, type KernelPlan } from './kernel_plan.js';

/** Invocations per row; vocabularies are large (32k–150k), so a wide workgroup. Power of two. */
export const LOGSOFTMAX_NLL_WG = 256;
/** CPU adapters: one 8-lane SIMD batch per row, so the reductions' barriers cost nothing (see rmsnorm.ts). */
export const LOGSOFTMAX_NLL_WG_CPU = 8;

/** Target id that marks a row as not scored (its NLL is written as 0). */
export const UNSCORED_TARGET = 0xffffffff;

/** logsoftmax_nll.wgsl's bindings by name. */
export type LogsoftmaxNllBinding = 'params' | 'logits' | 'targets' | 'out';

export function planLogsoftmaxNll(s: { rows: number; vocab: number; first: number; cpu?: boolean }): KernelPlan<LogsoftmaxNllBinding> {
  return {
    spec: {
      shader: 'logsoftmax_nll.wgsl',
      defines: { WG: s.cpu ? LOGSOFTMAX_NLL_WG_CPU : LOGSOFTMAX_NLL_WG },
      label: `logsoftmax_nll${s.cpu ? '_wg8' : ''}`,
    },
    workgroups: grid1d(s.rows),
    uniforms: packUniforms([s.rows, s.vocab, s.first], 'uuu'),
    bindings: ['params', 'logits', 'targets', 'out'],
    reads: { logits: s.rows * s.vocab * 4, targets: s.rows * 4, out: 0 },
  };
}
