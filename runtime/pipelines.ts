/// <reference types="@webgpu/types" />
// Compute pipelines keyed by their final WGSL text and entry point, so a cache hit can never be stale.
// Owned by whoever owns the device (the executor, a benchmark, a test); compile errors become one
// exception that lists each compiler message with line:column and the offending source line.
import { shaderSources } from '../kernels/shaders.gen.js';
import { preprocessWgsl } from './wgsl.js';
import type { Defines, KernelSpec } from '../core/kernel-spec.js';
import { ShaderCompileError } from './errors.js';

export function kernelSource(shader: string, defines: Defines = {}): string {
  const src = shaderSources[shader];
  if (src === undefined) throw new ShaderCompileError(`unknown shader ${shader} (did scripts/embed-wgsl.mjs run?)`);
  return preprocessWgsl(src, defines, (name) => shaderSources[name], shader);
}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  constructor(readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** Synchronous creation (Dawn compiles lazily); errors surface through `checkErrors`/validation scope. */
  get(spec: KernelSpec): GPUComputePipeline {
    const code = kernelSource(spec.shader, spec.defines);
    const entryPoint = spec.entryPoint ?? 'main';
    const key = `${entryPoint}\u0000${code}`;
    let pipeline = this.pipelines.get(key);
    if (pipeline) return pipeline;
    let module = this.modules.get(code);
    if (!module) {
      module = this.device.createShaderModule({ code, label: spec.label });
      this.modules.set(code, module);
    }
    pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint }, label: spec.label });
    this.pipelines.set(key, pipeline);
    return pipeline;
  }

  /** Like `get`, but awaits compilation and throws a readable error on failure. Use at setup time. */
  async getChecked(spec: KernelSpec): Promise<GPUComputePipeline> {
    const code = kernelSource(spec.shader, spec.defines);
    const entryPoint = spec.entryPoint ?? 'main';
    const key = `${entryPoint}\u0000${code}`;
    const cached = this.pipelines.get(key);
    if (cached) return cached;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: spec.label });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    let pipeline: GPUComputePipeline | undefined;
    if (errors.length === 0) {
      pipeline = await this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint }, label: spec.label });
    }
    const scopeError = await this.device.popErrorScope();
    if (errors.length || scopeError || !pipeline) {
      const lines = code.split('\n');
      const details = errors.map((m) => `  ${spec.shader}:${m.lineNum}:${m.linePos}: ${m.message}\n    | ${lines[m.lineNum - 1] ?? ''}`);
      throw new ShaderCompileError(
        `failed to compile ${spec.label}\n${details.join('\n')}${scopeError ? `\n  ${scopeError.message}` : ''}`,
      );
    }
    this.modules.set(code, module);
    this.pipelines.set(key, pipeline);
    return pipeline;
  }
}
