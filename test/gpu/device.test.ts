import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { readBuffer, uploadBuffer, createBuffer } from '../../runtime/buffers.js';
import { preprocessWgsl } from '../../runtime/wgsl.js';

describe('GPU bring-up', () => {
  it('opens a device with raised limits and reports features', async () => {
    const gpu = await testGpu();
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(gpu.describe()).toMatch(/\[/);
  });

  it('runs dot4I8Packed bit-exactly', async () => {
    const { device } = await testGpu();
    const code = `
      @group(0) @binding(0) var<storage, read> a: array<u32>;
      @group(0) @binding(1) var<storage, read> b: array<u32>;
      @group(0) @binding(2) var<storage, read_write> out: array<i32>;
      @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
        if (g.x < arrayLength(&out)) { out[g.x] = dot4I8Packed(a[g.x], b[g.x]); }
      }`;
    const n = 256;
    const a = new Int8Array(n * 4), b = new Int8Array(n * 4);
    for (let i = 0; i < a.length; i++) { a[i] = ((i * 37) % 255) - 127; b[i] = ((i * 91 + 13) % 255) - 127; }
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    const out = createBuffer(device, n * 4, 'out');
    const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [
      { binding: 0, resource: { buffer: uploadBuffer(device, a, 'a') } },
      { binding: 1, resource: { buffer: uploadBuffer(device, b, 'b') } },
      { binding: 2, resource: { buffer: out } }] });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(); pass.setPipeline(pipeline); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(n / 64); pass.end();
    device.queue.submit([enc.finish()]);
    const got = new Int32Array(await readBuffer(device, out));
    for (let i = 0; i < n; i++) {
      let want = 0;
      for (let k = 0; k < 4; k++) want += a[i * 4 + k]! * b[i * 4 + k]!;
      expect(got[i]).toBe(want);
    }
  });
});

describe('WGSL preprocessor', () => {
  it('handles ifdef/else, substitution and include', () => {
    const src = '#include "c.wgsl"\n#ifdef A\nx = N;\n#else\ny;\n#endif\n#ifndef A\nz;\n#endif';
    expect(preprocessWgsl(src, { A: true, N: 7 }, (n) => (n === 'c.wgsl' ? 'const C = 1;' : undefined))).toBe('const C = 1;\nx = 7;');
    expect(preprocessWgsl(src, { N: 7 }, () => '')).toBe('\ny;\nz;');
    expect(() => preprocessWgsl('#ifdef A\n', {}, () => '')).toThrow(/missing #endif/);
  });
});
