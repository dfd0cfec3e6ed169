// Plan for kernels/sample.wgsl: the next token from one row of logits (greedy, temperature, top-k,
// top-p), chosen on the GPU with the host's uniform draw. Reference: runtime/sampler.ts sampleFrom.
import { packUniforms, type KernelPlan } from './kernel_plan.js';

/** Invocations of the one workgroup; a power of two for the tree reductions. */
export const SAMPLE_WG = 256;
/** CPU adapters: one 8-lane SIMD batch, so the many reductions' barriers cost nothing (see rmsnorm.ts). */
export const SAMPLE_WG_CPU = 8;

/** One draw: the sampling settings and the host's uniform number u ∈ [0, 1). */
export interface SampleDraw {
  /** 0 = greedy (argmax, lowest id on ties); u is not used. */
  temperature: number;
  /** Keep the k most likely tokens; 0 (or ≥ vocab) = off. */
  topK: number;
  /** Nucleus: keep the most likely tokens until their mass exceeds topP of the kept mass; 1 = off. */
  topP: number;
  u: number;
}

/** sample.wgsl's bindings by name: scratch `masses` and `candidates` ([vocab] u32 each), `out` [2] u32. */
export type SampleBinding = 'params' | 'logits' | 'masses' | 'candidates' | 'out';

/** Bytes of each scratch binding for a vocabulary of `vocab`. */
export function sampleBufferBytes(vocab: number): Record<'masses' | 'candidates' | 'out', number> {
  return { masses: vocab * 4, candidates: vocab * 4, out: 8 };
}

/** What the shader does with a draw: 0 greedy, 1 all tokens in id order, 2 truncated in sorted order. */
export function sampleMode(draw: SampleDraw, vocab: number): 0 | 1 | 2 {
  if (draw.temperature === 0) return 0;
  return (draw.topK > 0 && draw.topK < vocab) || draw.topP < 1 ? 2 : 1;
}

/** Plan of one sampling dispatch from row `row` of a [rows, vocab] logits buffer. */
export function planSample(s: { vocab: number; row: number; cpu?: boolean; draw: SampleDraw }): KernelPlan<SampleBinding> {
  const { draw, vocab } = s;
  const mode = sampleMode(draw, vocab);
  const topK = draw.topK > 0 && draw.topK < vocab ? draw.topK : vocab;
  const nucleus = draw.topP < 1 ? 1 : 0;
  // Fractions of 2^32: u from core/rng.ts is k/2^32, so floor is exact there.
  const topP = nucleus ? Math.min(0xffffffff, Math.round(draw.topP * 2 ** 32)) : 0;
  const random = Math.min(0xffffffff, Math.floor(draw.u * 2 ** 32));
  return {
    spec: {
      shader: 'sample.wgsl',
      defines: { WG: s.cpu ? SAMPLE_WG_CPU : SAMPLE_WG },
      label: `sample${s.cpu ? '_wg8' : ''}`,
    },
    workgroups: [1, 1, 1],
    uniforms: packUniforms([vocab, s.row, mode, topK, nucleus, topP, random, mode ? draw.temperature : 1], 'uuuuuuuf'),
    bindings: ['params', 'logits', 'masses', 'candidates', 'out'],
  };
}
