/// <reference types="@webgpu/types" />
// The device as this runtime sees it: what was granted, never what the adapter advertises.

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
