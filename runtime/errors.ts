// The runtime layer's error classes (executor, linears, memory plan, pipelines, sampler, WGSL), in one place.

/** A linear layer was given inconsistent shapes, buffers or options; the message names the layer. */
export class LinearConfigError extends Error {
  override name = 'LinearConfigError';
  constructor(
    readonly layer: string,
    readonly reason: string,
  ) {
    super(`${layer}: ${reason}`);
  }
}

export class WgslPreprocessError extends Error {
  override name = 'WgslPreprocessError';
}

/** A layer's linear is not loaded in this executor (recording it is a bug in the caller). */
export class AbsentLinearError extends Error {
  override name = 'AbsentLinearError';
}

export class MemoryPlanError extends Error {
  override name = 'MemoryPlanError';
}

/** Bad options, a model the executor cannot run, or a call it cannot serve; the message says which. */
export class ExecutorError extends Error {
  override name = 'ExecutorError';
}

/** More tokens than the KV cache holds. */
export class ContextOverflowError extends ExecutorError {
  override name = 'ContextOverflowError';
}

/** NaN or ±Inf in the final logits, or (with checkNumerics) in a block's output; `where` says where. */
export class NonFiniteError extends ExecutorError {
  override name = 'NonFiniteError';
  constructor(
    message: string,
    readonly where: { step?: number; position?: number; layer?: number; op?: string } = {},
  ) {
    super(message);
  }
}

export class SamplerError extends Error {
  override name = 'SamplerError';
}

export class ShaderCompileError extends Error {
  override name = 'ShaderCompileError';
}
