/// <reference types="@webgpu/types" />
// What the executor needs from any linear layer: dense f32/f16 (kernels/matmul_dense) or quantized
// W4A8/A6/A4 with the fused low-rank side path (kernels/w4a8_*). Activations are f32 in and out.

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
  /** GPU bytes this op owns (weights and its own scratch), for memory reports. */
  readonly byteSize: number;
  destroy(): void;
}
