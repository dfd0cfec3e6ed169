import { afterAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { openNodeDevice } from '../../node/gpu.js';
import type { GpuContext } from '../../core/gpu.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { createDenseLinear } from '../../runtime/dense-linear.js';
import { tokenChunks } from '../../runtime/linear-support.js';
import { matmulAbsRef, matmulDenseRef, roundToF16 } from '../../kernels/matmul_dense.ref.js';
import { denseKernelSpec, denseTiling, denseWeightFormat, type DenseTiling } from '../../kernels/matmul_dense.js';
import { maxScaledError, runLinear, seededFloats } from './linear-harness.js';
import { LinearConfigError } from '../../runtime/errors.js';

// Tolerance: f32 accumulation in a different order than the f64 reference; the error of a K-term
// dot product is bounded by ~K·2^-24·Σ|x·w| and in practice ~sqrt(K)·2^-24·Σ|x·w|. K ≤ 300 here.
const TOL = 2e-6;

interface Case {
  name: string;
  tokens: number;
  inF: number;
  outF: number;
  dtype: 'f32' | 'f16';
  bias?: boolean;
  maxSliceBytes?: number;
  maxBindingBytes?: number;
  tiling?: Partial<DenseTiling>;
}
/** The tiling a discrete GPU gets (wide GEMV workgroup with a reduction tree, 4×4 GEMM threads). */
const GPU_TILING: Partial<DenseTiling> = { gemvWg: 256, gemvRows: 4, rm: 4, rn: 4, gemvMaxTokens: 4 };

async function check(gpu: GpuContext, c: Case, seed: number): Promise<void> {
  const cache = new PipelineCache(gpu.device);
  const weight = seededFloats(c.outF * c.inF, seed, 0.5);
  const bias = c.bias ? seededFloats(c.outF, seed + 1, 2) : undefined;
  const x = seededFloats(c.tokens * c.inF, seed + 2, 3);
  const format = denseWeightFormat(gpu, c.dtype);
  // Compile both entry points up front so a shader error reads as one message, not a Dawn log line.
  const tiling = { ...denseTiling(gpu), ...c.tiling };
  for (const e of ['gemv', 'gemm'] as const) await cache.getChecked(denseKernelSpec(e, { format, hasBias: !!bias, tiling }));
  
  const op = createDenseLinear(gpu, cache, { inFeatures: c.inF, outFeatures: c.outF, weight, bias }, {
    label: c.name, dtype: c.dtype, maxTokens: c.tokens, maxSliceBytes: c.maxSliceBytes, maxBindingBytes: c.maxBindingBytes, tiling: c.tiling,
  });
  try {
    const got = await runLinear(gpu, op, x, c.tokens, 2)
    const want = matmulDenseRef(x, weight, c.tokens, c.inF, c.outF, { bias, weightDtype: c.dtype });
    const scale = matmulAbsRef(x, c.dtype === 'f16' ? roundToF16(weight) : weight, c.tokens, c.inF, c.outF);
    expect(maxScaledError(got, want, scale)).toBeLessThan(TOL);
  } finally {
    op.destroy();
  }
}

const CASES: Case[] = [
  { name: 'gemv 1 token, in 37 out 13, bias', tokens: 1, inF: 37, outF: 13, dtype: 'f32', bias: true },
  { name: 'gemv 2 tokens, out 1', tokens: 2, inF: 300, outF: 1, dtype: 'f32' },
  { name: 'gemm 130 tokens, in 101 out 70, bias', tokens: 130, inF: 101, outF: 70, dtype: 'f32', bias: true },
  { name: 'gemm 5 tokens, in 3', tokens: 5, inF: 3, outF: 65, dtype: 'f32' },
  { name: 'f16 gemv in 172 out 64', tokens: 1, inF: 172, outF: 64, dtype: 'f16', bias: true },
  { name: 'f16 gemm 67 tokens in 64 out 172', tokens: 67, inF: 64, outF: 172, dtype: 'f16' },
  { name: 'GPU tiling gemv 3 tokens, bias', tokens: 3, inF: 300, outF: 21, dtype: 'f32', bias: true, tiling: GPU_TILING },
  { name: 'GPU tiling f16 gemm 70 tokens', tokens: 70, inF: 99, outF: 130, dtype: 'f16', tiling: GPU_TILING },
  { name: 'split weight (5 slices) gemv', tokens: 1, inF: 40, outF: 50, dtype: 'f32', bias: true, maxSliceBytes: 11 * 40 * 4 },
  { name: 'split weight (4 slices) f16 gemm', tokens: 70, inF: 41, outF: 50, dtype: 'f16', maxSliceBytes: 13 * 44 * 2 },
  { name: 'token chunks (3) and split weight gemm', tokens: 150, inF: 24, outF: 20, dtype: 'f32', bias: true, maxSliceBytes: 8 * 24 * 4, maxBindingBytes: 64 * 24 * 4 },
];

describe('matmul_dense on the default adapter', () => {
  it.each(CASES.map((c, i) => [c.name, c, 100 + i] as const))('%s (case %#)', async (_n, c, seed) => {
    await check(await testGpu(), c, seed);
  });
});

describe('matmul_dense without shader-f16 and subgroups', () => {
  let bare: Promise<GpuContext> | undefined;
  const open = () => (bare ??= openNodeDevice({ disable: ['shader-f16', 'subgroups'] }));
  afterAll(async () => (bare ? (await bare).device.destroy() : undefined));
  it('reads f16 weights as packed u32 pairs (gemv and gemm)', async () => {
    const gpu = await open();
    expect(gpu.features.shaderF16).toBe(false);
    expect(denseWeightFormat(gpu, 'f16')).toBe('f16-packed');
    await check(gpu, { name: 'packed gemv', tokens: 1, inF: 70, outF: 33, dtype: 'f16', bias: true }, 7);
    await check(gpu, { name: 'packed gemm', tokens: 40, inF: 70, outF: 33, dtype: 'f16' }, 8);
  });
});

describe('dense linear errors and chunking', () => {
  it('rejects bad shapes and token counts with the layer name', async () => {
    const gpu = await testGpu();
    const cache = new PipelineCache(gpu.device);
    expect(() => createDenseLinear(gpu, cache, { inFeatures: 4, outFeatures: 2, weight: new Float32Array(7) }, { label: 'l0', dtype: 'f32', maxTokens: 1 }))
      .toThrow(/l0: weight has 7 values/);
    const op = createDenseLinear(gpu, cache, { inFeatures: 4, outFeatures: 2, weight: new Float32Array(8) }, { label: 'l1', dtype: 'f32', maxTokens: 2 });
    await expect(runLinear(gpu, op, new Float32Array(12), 3)).rejects.toThrow(LinearConfigError);
    op.destroy();
  });

  it('chunks tokens at multiples of 64 under the binding limit', () => {
    expect(tokenChunks(100, 16, 1 << 20)).toEqual([{ t0: 0, count: 100 }]);
    expect(tokenChunks(150, 16, 16 * 100)).toEqual([{ t0: 0, count: 64 }, { t0: 64, count: 64 }, { t0: 128, count: 22 }]);
    expect(() => tokenChunks(150, 16, 16 * 10)).toThrow(RangeError);
  });
});

describe('dense GEMV tiling on CPU adapters with narrow subgroups', () => {
  it('keeps at least gemvRows threads per workgroup (SwiftShader reports 4-wide subgroups)', async () => {
    const gpu = await testGpu();
    const swiftshader: GpuContext = {
      ...gpu,
      adapterInfo: { vendor: 'google', architecture: 'swiftshader', device: '', description: '' },
      limits: { ...gpu.limits, subgroupMinSize: 4, subgroupMaxSize: 4 },
    };
    const t = denseTiling(swiftshader);
    expect(t.gemvWg).toBeGreaterThanOrEqual(t.gemvRows);
    // The tiling this adapter gets writes every output row (a 4-thread workgroup left rows 4..7 of each group unset).
    await check(gpu, { name: 'swiftshader-like gemv', tokens: 1, inF: 64, outF: 37, dtype: 'f32', tiling: t }, 11);
  });
});
