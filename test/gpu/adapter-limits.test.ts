// What only a real GPU decides, checked on whatever adapter runs the suite (the GPU kit runs this file
// on NVIDIA; here it runs on llvmpipe): the subgroup size the adapter actually uses, workgroup memory
// at 16–48 KiB (as far as the adapter allows), timestamp queries, and buffers and bindings of GiBs.
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { createBuffer, readBuffer } from '../../runtime/buffers.js';
import { GpuTimer } from '../../runtime/profiler.js';
import { isCpuAdapter } from '../../kernels/matmul_dense.js';

const GiB = 1024 ** 3;

async function runOnce(device: GPUDevice, code: string, buffers: { buffer: GPUBuffer; offset?: number; size?: number }[], workgroups: number, timestampWrites?: GPUComputePassTimestampWrites) {
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((b, i) => ({ binding: i, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } })) });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups);
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
}

describe('adapter limits the kernels rely on', async () => {
  const gpu = await testGpu();
  const { device, limits, features } = gpu;

  it.skipIf(!features.subgroups)(`reduces with subgroupAdd at the adapter's subgroup size (reported ${limits.subgroupMinSize}–${limits.subgroupMaxSize})`, async () => {
    // Each invocation writes its subgroup's size and the subgroup sum of its local index; the host
    // recomputes both from the size the hardware used, which must lie within the reported range.
    const wg = 256;
    const code = `
      enable subgroups;
      @group(0) @binding(0) var<storage, read_write> out: array<u32>;
      @compute @workgroup_size(${wg}) fn main(@builtin(local_invocation_index) li: u32, @builtin(subgroup_size) sg: u32, @builtin(workgroup_id) wid: vec3u) {
        let s = subgroupAdd(li);
        out[(wid.x * ${wg} + li) * 2] = sg;
        out[(wid.x * ${wg} + li) * 2 + 1] = s;
      }`;
    const out = createBuffer(device, wg * 2 * 4 * 4, 'subgroup-out');
    await runOnce(device, code, [{ buffer: out }], 4);
    const got = new Uint32Array(await readBuffer(device, out));
    const size = got[0]!;
    expect(size).toBeGreaterThanOrEqual(limits.subgroupMinSize);
    expect(size).toBeLessThanOrEqual(limits.subgroupMaxSize);
    for (let i = 0; i < 4 * wg; i++) {
      const li = i % wg;
      expect(got[2 * i]).toBe(size);
      // Subgroups of a 1-D workgroup are runs of consecutive local indices on every adapter we know;
      // the sum is checked against that layout.
      const first = li - (li % size);
      let want = 0;
      for (let j = first; j < Math.min(first + size, wg); j++) want += j;
      expect(got[2 * i + 1]).toBe(want);
    }
  });

  const sizesKiB = [16, 32, 48].filter((k) => k * 1024 <= limits.maxComputeWorkgroupStorageSize);
  it.each(sizesKiB)('uses %i KiB of workgroup memory across all invocations', async (kib) => {
    // Every invocation fills its stride of the array, then (after the barrier) reads another's words
    // in reverse: a wrong size, bank mapping or missing barrier shows as a wrong word.
    const words = (kib * 1024) / 4;
    const wg = 256;
    const code = `
      var<workgroup> tile: array<u32, ${words}>;
      @group(0) @binding(0) var<storage, read_write> out: array<u32>;
      @compute @workgroup_size(${wg}) fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u) {
        for (var i = li; i < ${words}u; i += ${wg}u) { tile[i] = i * 2654435761u + wid.x; }
        workgroupBarrier();
        var acc = 0u;
        for (var i = li; i < ${words}u; i += ${wg}u) { acc ^= tile[${words - 1}u - i] + i; }
        out[wid.x * ${wg}u + li] = acc;
      }`;
    const groups = 3;
    const out = createBuffer(device, groups * wg * 4, 'wgmem-out');
    await runOnce(device, code, [{ buffer: out }], groups);
    const got = new Uint32Array(await readBuffer(device, out));
    for (let g = 0; g < groups; g++) {
      for (let li = 0; li < wg; li++) {
        let acc = 0;
        for (let i = li; i < words; i += wg) acc = (acc ^ ((Math.imul(words - 1 - i, 2654435761) + g + i) >>> 0)) >>> 0;
        expect(got[g * wg + li]).toBe(acc);
      }
    }
  });
  for (const kib of [16, 32, 48].filter((k) => !sizesKiB.includes(k))) {
    it.skip(`${kib} KiB of workgroup memory: the adapter offers ${limits.maxComputeWorkgroupStorageSize / 1024} KiB`, () => {});
  }

  it.skipIf(!features.timestampQuery)('times a compute pass with timestamp queries (non-zero, ordered)', async () => {
    const timer = GpuTimer.create(gpu, 4)!;
    const n = 1 << 20;
    const buf = createBuffer(device, n * 4, 'timestamp-work');
    const code = `
      @group(0) @binding(0) var<storage, read_write> a: array<u32>;
      @compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
        var x = g.x;
        for (var i = 0u; i < 64u; i++) { x = x * 1664525u + 1013904223u; }
        a[g.x] = x;
      }`;
    await runOnce(device, code, [{ buffer: buf }], n / 256, timer.passWrites('work'));
    const t = await timer.read();
    expect(t.passes).toBe(1);
    expect(t.seconds).toBeGreaterThan(0);
    expect(t.seconds).toBeLessThan(10);
  });

  // On a CPU adapter a buffer is host memory, zeroed by the CPU while other test files run beside it:
  // 256 MiB there (1 GiB took 18 s on llvmpipe); 3 GiB on a GPU.
  const bufferBytes = Math.min(limits.maxBufferSize, isCpuAdapter(gpu) ? GiB / 4 : 3 * GiB) & ~0xffff;
  it(`writes at the far end of a ${(bufferBytes / GiB).toFixed(2)} GiB buffer through an offset binding (maxBufferSize ${(limits.maxBufferSize / GiB).toFixed(2)} GiB)`, async () => {
    const big = device.createBuffer({ size: bufferBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: 'big' });
    try {
      const window = 4096;
      const offset = bufferBytes - window; // a multiple of 64 KiB minus 4 KiB: aligned to any minStorageBufferOffsetAlignment ≤ 4 KiB
      const code = `
        @group(0) @binding(0) var<storage, read_write> a: array<u32>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
          for (var i = g.x; i < arrayLength(&a); i += 64u) { a[i] = i ^ 0xa5a5a5a5u; }
        }`;
      await runOnce(device, code, [{ buffer: big, offset, size: window }], 1);
      const got = new Uint32Array(await readBuffer(device, big, window, offset));
      for (let i = 0; i < window / 4; i += 97) expect(got[i]).toBe((i ^ 0xa5a5a5a5) >>> 0);
    } finally {
      big.destroy();
    }
  });

  const bindingBytes = Math.min(limits.maxStorageBufferBindingSize, isCpuAdapter(gpu) ? GiB / 4 : 2 * GiB) & ~0xffff;
  it(`indexes the last word of one ${(bindingBytes / GiB).toFixed(3)} GiB binding (maxStorageBufferBindingSize ${(limits.maxStorageBufferBindingSize / GiB).toFixed(3)} GiB)`, async () => {
    const big = device.createBuffer({ size: bindingBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: 'big-binding' });
    try {
      const code = `
        @group(0) @binding(0) var<storage, read_write> a: array<u32>;
        @compute @workgroup_size(64) fn main(@builtin(local_invocation_index) li: u32) {
          let last = arrayLength(&a) - 1u;
          a[last - li] = last - li;
          a[li] = li + 1u;
        }`;
      await runOnce(device, code, [{ buffer: big }], 1);
      const tail = new Uint32Array(await readBuffer(device, big, 256, bindingBytes - 256));
      const last = bindingBytes / 4 - 1;
      for (let i = 0; i < 64; i++) expect(tail[63 - i]).toBe((last - i) >>> 0);
      const head = new Uint32Array(await readBuffer(device, big, 256, 0));
      for (let i = 0; i < 64; i++) expect(head[i]).toBe(i + 1);
    } finally {
      big.destroy();
    }
  });
});
