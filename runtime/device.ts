/// <reference types="@webgpu/types" />
// The one place that turns a `GPU` (navigator.gpu in a browser, Dawn's `create()` in Node) into a
// device with the optional features and raised limits this runtime can use. Portable: no Node APIs.

import { GpuAllocationError, GpuOutOfMemoryError, GpuUnavailableError } from '../core/errors.js';
import type { GpuContext } from '../core/gpu.js';

/**
 * Creates a buffer inside out-of-memory and validation error scopes, so a refused allocation becomes
 * a typed error naming the buffer and its size instead of an uncaptured error and an unusable buffer.
 */
export async function createBufferChecked(device: GPUDevice, descriptor: GPUBufferDescriptor): Promise<GPUBuffer> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let buffer: GPUBuffer | undefined;
  let thrown: unknown;
  try {
    buffer = device.createBuffer(descriptor);
  } catch (err) {
    thrown = err;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  const what = `GPU buffer ${JSON.stringify(descriptor.label ?? '')} of ${descriptor.size} bytes`;
  if (oom || validation || thrown) buffer?.destroy();
  if (oom) throw new GpuOutOfMemoryError(`${what}: the device is out of memory (${firstLine(oom.message)})`);
  if (validation) throw new GpuAllocationError(`${what} refused: ${firstLine(validation.message)}`);
  if (thrown) throw new GpuAllocationError(`${what} refused: ${firstLine((thrown as Error).message ?? String(thrown))}`);
  return buffer!;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

export interface OpenDeviceOptions {
  /** Turn off optional features, e.g. to test the f32-only path on an f16-capable adapter. */
  disable?: Array<'shader-f16' | 'subgroups' | 'timestamp-query'>;
  powerPreference?: GPUPowerPreference;
}

const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export async function openDevice(gpu: GPU | undefined, options: OpenDeviceOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new GpuUnavailableError('WebGPU is not available in this environment');
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new GpuUnavailableError('no WebGPU adapter found');

  const disabled = new Set(options.disable ?? []);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'aser' });
  device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`aser: GPU device lost: ${info.message}`);
  });

  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const limits = device.limits;
  const lim = limits as unknown as Record<string, number>;
  const wgslFeatures = (gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  const ctx: GpuContext = {
    device,
    adapterInfo: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    features: {
      shaderF16: device.features.has('shader-f16'),
      subgroups: device.features.has('subgroups'),
      timestampQuery: device.features.has('timestamp-query'),
      // Dawn ships this language feature; browsers list it in wgslLanguageFeatures.
      packedDot4: wgslFeatures ? wgslFeatures.has('packed_4x8_integer_dot_product') : true,
    },
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment,
      subgroupMinSize: lim.subgroupMinSize ?? info.subgroupMinSize ?? 4,
      subgroupMaxSize: lim.subgroupMaxSize ?? info.subgroupMaxSize ?? 128,
    },
    describe() {
      const a = ctx.adapterInfo;
      const f = Object.entries(ctx.features).filter(([, v]) => v).map(([k]) => k).join(',');
      return `${a.vendor || 'unknown-vendor'} ${a.architecture} ${a.device || a.description} [${f}]`.replace(/\s+/g, ' ').trim();
    },
  };
  return ctx;
}
