// Quantized layers with the block's edges in their kernels (runtime/recorder.ts): q|k|v and gate|up
// as one group each (one kernel A + one kernel B), RMSNorm in kernel A, residual adds in kernel B,
// SwiGLU in down_proj's kernel A. Against the same linears recorded unfused (the numerics check's
// layer: rmsnorm, rmsnorm_add and swiglu dispatches): logits at prefill (GEMM) and decode (GEMV),
// with all layers fused and with an unfused layer in between, and the dispatch count per layer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSynthModel } from '../../loaders/synth.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelConfig, ModelSource } from '../../core/model.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import type { GpuContext } from '../../core/gpu.js';
import { quantizedLinearFactory } from '../../runtime/artifact-linears.js';
import { collectCalibrationStats } from '../../quant/calibrate.js';
import { executorCapture } from '../../quant/capture.js';
import { quantizeModel } from '../../quant/quantize-model.js';
import { testGpu } from '../helpers/gpu.js';

const TINY: ModelConfig = {
  arch: 'llama', dim: 64, hiddenDim: 160, nLayers: 3, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 512, maxSeqLen: 256,
  normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 1, eosId: 2,
};
const TOK512 = '../shared/tokenizers/tok512';
const PROMPT = [1, 17, 300, 42, 9, 511, 77, 128, 3, 64, 200, 5];
// The fused kernel A sums x² for the norm in another order than the rmsnorm kernel, so x̃ may differ
// by an ulp and now and then one activation rounds to the neighbouring integer; that moves a logit by
// far less than this share of the logits' range (measured here: ≤ 2e-7 on llvmpipe).
const LOGIT_TOL = 1e-3;

let root: string;
let source: ModelSource;
let layers: Map<string, QuantizedLinear>;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'aser-fused-layer-'));
  writeSynthModel(join(root, 'llama'), { shape: TINY, seed: 31, tokenizerDir: TOK512 });
  source = loadHfModel(join(root, 'llama')).source;
  const gpu = await testGpu();
  const ex = await Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: 64 });
  try {
    const windows = Array.from({ length: 2 }, (_, w) => Array.from({ length: 32 }, (_, i) => (i * 31 + w * 7 + 3) % 512));
    const stats = await collectCalibrationStats(executorCapture(ex), windows, { seed: 1 });
    layers = quantizeModel(source, stats, 'aser', { rank: 4, outliers: 2 }).layers;
  } finally {
    ex.destroy();
  }
});
afterAll(() => {
  source?.close();
  rmSync(root, { recursive: true, force: true });
});

/** Logits after the prompt and after each of `steps` greedy decode steps, and the dispatches of the last step. */
async function run(gpu: GpuContext, lookup: (m: string) => QuantizedLinear | undefined, checkNumerics: boolean, steps = 3) {
  const cache = new PipelineCache(gpu.device);
  const ex = await Executor.create(gpu, source, {
    dtype: 'f32', maxSeqLen: 64, maxBatchTokens: 16, pipelines: cache, checkNumerics,
    linearFactory: quantizedLinearFactory(gpu, cache, lookup, { maxTokens: 16 }),
  });
  const enc = gpu.device.createCommandEncoder();
  const probe = enc.beginComputePass();
  const proto = Object.getPrototypeOf(probe) as { dispatchWorkgroups: (...a: number[]) => void };
  probe.end();
  enc.finish();
  const dispatch = proto.dispatchWorkgroups;
  let dispatches = 0;
  try {
    const logits: Float32Array[] = [];
    await ex.forward(PROMPT);
    logits.push(await ex.logits());
    for (let s = 0; s < steps; s++) {
      let best = 0;
      const last = logits[logits.length - 1]!;
      for (let i = 1; i < last.length; i++) if (last[i]! > last[best]!) best = i;
      dispatches = 0;
      proto.dispatchWorkgroups = function (this: unknown, ...a: number[]) {
        dispatches++;
        return dispatch.apply(this, a);
      };
      try {
        await ex.forward([best]);
      } finally {
        proto.dispatchWorkgroups = dispatch;
      }
      logits.push(await ex.logits());
    }
    return { logits, dispatches };
  } finally {
    ex.destroy();
  }
}

function expectClose(got: Float32Array[], want: Float32Array[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, s) => {
    let range = 0, worst = 0;
    for (let i = 0; i < g.length; i++) {
      range = Math.max(range, Math.abs(want[s]![i]!));
      worst = Math.max(worst, Math.abs(g[i]! - want[s]![i]!));
    }
    expect(worst / range, `step ${s}`).toBeLessThan(LOGIT_TOL);
  });
}

describe('quantized layers with the block edges fused', () => {
  it('match the unfused layers at prefill and decode, in 10 dispatches per layer', async () => {
    const gpu = await testGpu();
    const lookup = (m: string) => layers.get(m);
    const fused = await run(gpu, lookup, false);
    const unfused = await run(gpu, lookup, true);
    expectClose(fused.logits, unfused.logits);
    // embedding, the head's rmsnorm_add and classifier, and 10 per layer (q|k|v A+B, rope_kv,
    // attention, o_proj A+B, gate|up A+B, down_proj A+B).
    expect(fused.dispatches).toBe(3 + 10 * TINY.nLayers);
  });

  it('hand over to and from a layer that cannot fuse (a dense up_proj in layer 1)', async () => {
    const gpu = await testGpu();
    const lookup = (m: string) => (m === 'model.layers.1.mlp.up_proj' ? undefined : layers.get(m));
    const fused = await run(gpu, lookup, false);
    const unfused = await run(gpu, lookup, true);
    expectClose(fused.logits, unfused.logits);
    // Layer 1: q|k|v group (2), rope_kv, attention, o_proj (2), rmsnorm_add, gate (2), up (dense, 1),
    // swiglu, down_proj (2), rmsnorm_add = 14; layer 0 adds an rmsnorm for layer 1's xn.
    expect(fused.dispatches).toBe(3 + 10 + 1 + 14 + 10);
  });
});
