/// <reference types="@webgpu/types" />
// The one place that turns a `GPU` (navigator.gpu in a browser, Dawn's `create()` in Node) into a
// device with the optional features and raised limits this runtime can use. Portable: no Node APIs.

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

/** What the device actually granted; kernels read this, never the adapter. */
export interface GpuContext {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  features: {
    shaderF16: boolean;
    subgroups: boolean;
    timestampQuery: boolean;
    /** WGSL `packed_4x8_integer_dot_product` (dot4I8Packed); a language feature, not a device feature. */
    packedDot4: boolean;
  };
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    minStorageBufferOffsetAlignment: number;
    subgroupMinSize: number;
    subgroupMaxSize: number;
  };
  /** Human-readable one-liner for logs and benchmark JSON. */
  describe(): string;
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
