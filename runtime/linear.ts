/// <reference types="@webgpu/types" />
// What the executor needs from any linear layer: dense f32/f16 (kernels/matmul_dense) or quantized
// W4A8/A6/A4 with the fused low-rank side path (kernels/w4a8_*). Activations are f32 in and out.
import { AbsentLinearError } from './errors.js';

/** What a linear's kernels take over from the block around it (runtime/recorder.ts fuses by it). */
export interface LinearFusion {
  /**
   * The RMSNorm before the linear: `x` is the residual stream, the linear's input is
   * x · rsqrt(mean(x²) + eps) · weight.
   */
  norm?: { weight: GPUBuffer; eps: number };
  /** The residual add after it: y += x·Wᵀ (y is the residual stream) instead of y = x·Wᵀ. */
  residual?: boolean;
  /** The SwiGLU before it: `x` is gate|up [tokens, 2·in] (gate then up per row), the input silu(gate)·up. */
  swiglu?: boolean;
}

export interface LinearOp {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Label for profiles and errors, e.g. "layers.3.mlp.down_proj/w4a8_fused". */
  readonly label: string;
  /**
   * Records y[tokens, out] = x[tokens, in] · Wᵀ (+ side path, + bias) into `pass`.
   * `x`/`y` are f32 storage buffers with rows packed densely. Called once per forward for a given
   * token count; bind groups and uniforms are cached, so encoding allocates nothing in steady state.
   * `tokens` never exceeds the `maxTokens` the op was created with.
   */
  encode(pass: GPUComputePassEncoder, x: GPUBuffer, y: GPUBuffer, tokens: number): void;
  /**
   * Records the op with what surrounds it in a block fused in (quantized linears; absent on ops that
   * cannot): see LinearFusion. Same buffers and token rules as encode.
   */
  encodeFused?(pass: GPUComputePassEncoder, x: GPUBuffer, y: GPUBuffer, tokens: number, fusion: LinearFusion): void;
  /** GPU bytes this op owns (weights and its own scratch), for memory reports. */
  readonly byteSize: number;
  destroy(): void;
}

/**
 * Stands in for a block linear whose weights an executor deliberately does not hold: an executor built
 * for one layer group of a deep model (calibration) never runs the other layers, so their weights are
 * never read or uploaded. Recording one throws.
 */
export function absentLinear(inFeatures: number, outFeatures: number, label: string): LinearOp {
  return {
    inFeatures, outFeatures, label, byteSize: 0,
    encode() {
      throw new AbsentLinearError(`${label} is not loaded in this executor (built for another layer group)`);
    },
    destroy() {},
  };
}
