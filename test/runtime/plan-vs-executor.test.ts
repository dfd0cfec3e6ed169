// `aser plan` against what the executor really allocates, category by category, on small synthetic
// models: dense f32, W4A8 (fused, with the shared kernel-A scratch) and the unfused baseline (t / y2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSynthModel } from '../../loaders/synth.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import { Executor } from '../../runtime/executor.js';
import type { ExecutorMemory } from '../../runtime/executor-options.js';
import { planMemory, type MemoryPlan, type MemoryPlanOptions } from '../../runtime/memory-plan.js';
import { quantizeClassifier } from '../../quant/classifier.js';
import { tensorRows } from '../../runtime/weight-rows.js';
import { BLOCK_LINEARS, type ModelConfig, type ModelSource } from '../../core/model.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { createQuantizedLinear } from '../../runtime/quantized-linear.js';
import { quantizedClassifierFactory, quantizedLinearFactory } from '../../runtime/artifact-linears.js';
import { withInt8LowRank } from '../../core/lowrank-int8.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import type { GpuContext } from '../../core/gpu.js';
import { actQuantTiling } from '../../kernels/w4a8_act_quant.js';
import { collectCalibrationStats } from '../../quant/calibrate.js';
import { executorCapture } from '../../quant/capture.js';
import { quantizeModel } from '../../quant/quantize-model.js';
import { testGpu } from '../helpers/gpu.js';

const TINY: ModelConfig = {
  arch: 'llama', dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 512, maxSeqLen: 256,
  normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 1, eosId: 2,
};
const TOK512 = '../shared/tokenizers/tok512';
const CTX = 64;
const BATCH = 16;

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'aser-plan-vs-ex-'));
  writeSynthModel(join(root, 'llama'), { shape: TINY, seed: 21, tokenizerDir: TOK512 });
  writeSynthModel(join(root, 'qwen-tied'), { shape: { ...TINY, arch: 'qwen2', nKvHeads: 4, attentionBias: true, tiedEmbeddings: true }, seed: 22, tokenizerDir: TOK512 });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const item = (plan: MemoryPlan, key: string) => plan.items.find((i) => i.key === key)?.bytes ?? 0;

/** The plan's categories summed the way the executor reports them. */
function expectSameBytes(plan: MemoryPlan, got: ExecutorMemory): void {
  const linearKeys = ['weights', 'scales', 'lowRank', 'smoothing', 'biases', 'uniforms', 'classifier'];
  expect({
    linearsAndClassifier: got.blockLinears + got.classifier,
    embedding: got.embedding,
    norms: got.norms,
    kvCache: got.kvCache,
    activations: got.activations,
    w4a8Scratch: got.w4a8Scratch,
    total: got.total,
  }).toEqual({
    linearsAndClassifier: linearKeys.reduce((n, k) => n + item(plan, k), 0),
    embedding: item(plan, 'embedding'),
    norms: item(plan, 'norms'),
    kvCache: item(plan, 'kvCache'),
    activations: item(plan, 'activations'),
    w4a8Scratch: item(plan, 'w4a8Scratch'),
    total: plan.total,
  });
}

async function quantized(source: ModelSource, gpu: GpuContext): Promise<Map<string, QuantizedLinear>> {
  const ex = await Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: CTX });
  try {
    const windows = Array.from({ length: 2 }, (_, w) => Array.from({ length: 32 }, (_, i) => (i * 31 + w * 7 + 3) % 512));
    const stats = await collectCalibrationStats(executorCapture(ex), windows, { seed: 1 });
    return quantizeModel(source, stats, 'aser', { rank: 4, outliers: 2 }).layers;
  } finally {
    ex.destroy();
  }
}

async function compare(dir: string, gpu: GpuContext, weights: 'f32' | 'w4a8', fused = true, embedding: 'gpu' | 'host' = 'gpu', classifier: 'dense' | 'int8' = 'dense', int8Factors = false): Promise<void> {
  const { source } = loadHfModel(join(root, dir));
  try {
    const c = source.config;
    const fp = weights === 'w4a8' ? await quantized(source, gpu) : undefined;
    const layers = fp && int8Factors ? new Map([...fp].map(([n, q]) => [n, withInt8LowRank(q)])) : fp;
    const cache = new PipelineCache(gpu.device);
    const dtype = weights === 'w4a8' && gpu.features.shaderF16 ? 'f16' : 'f32';
    const head = classifier === 'int8'
      ? quantizeClassifier(tensorRows(source.tensor(source.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight')), 'int8')
      : undefined;
    const ex = await Executor.create(gpu, source, {
      dtype, maxSeqLen: CTX, maxBatchTokens: BATCH, embedding, pipelines: cache,
      classifierFactory: head && quantizedClassifierFactory(gpu, cache, head, {}),
      // Fused: the artifact factory, which groups q|k|v and gate|up; unfused: one op per linear.
      linearFactory: layers && (fused
        ? quantizedLinearFactory(gpu, cache, (m) => layers.get(m), { maxTokens: BATCH })
        : (l, name, _w, scratch) => createQuantizedLinear(gpu, cache, layers.get(`model.layers.${l}.${name}`)!, { label: name, maxTokens: BATCH, fused, scratch })),
    });
    try {
      const opts: MemoryPlanOptions = {
        weights, ctx: CTX, kvDtype: dtype, maxBatchTokens: BATCH, embedding, tableDtype: dtype,
        maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize, classifier,
      };
      if (layers) {
        // The artifact's real per-linear column counts (rank + outliers), layer-major in BLOCK_LINEARS order.
        opts.rank = Array.from({ length: c.nLayers }, (_, l) => BLOCK_LINEARS.map(({ name }) => layers.get(`model.layers.${l}.${name}`)!.rank)).flat();
        opts.smoothing = [...layers.values()].every((q) => q.smooth);
        opts.lowRankDtype = int8Factors ? 'int8' : gpu.features.shaderF16 ? 'f16' : 'f32';
        opts.actQuantTiling = actQuantTiling(gpu);
        opts.fused = fused;
        opts.groups = fused;
      }
      await ex.forward([1, 2, 3]); // the shared quantized scratch is allocated at the first encode
      expectSameBytes(planMemory(c, opts), ex.memory());
    } finally {
      ex.destroy();
    }
  } finally {
    source.close();
  }
}

describe('aser plan = Executor.memory(), byte for byte', () => {
  it('dense f32 (fused q|k|v and gate|up), GPU embedding table', async () => {
    await compare('llama', await testGpu(), 'f32');
  });

  it('W4A8 ASER (fused kernels, q|k|v and gate|up groups), Qwen bias + tied int8 classifier, host embedding', async () => {
    await compare('qwen-tied', await testGpu(), 'w4a8', true, 'host', 'int8');
  });

  it('W4A8 ASER with int8 L_A / L_B (fused, groups): the factors\' bytes and their scales', async () => {
    await compare('llama', await testGpu(), 'w4a8', true, 'gpu', 'dense', true);
  });

  it('W4A8 ASER, LLaMA shape, unfused baseline: its t / y2 scratch and dense side-path ops', async () => {
    // The same device as the fused case: the scratch pool belongs to each executor, so nothing the
    // fused model reserved leaks into this one's figure.
    await compare('llama', await testGpu(), 'w4a8', false);
  });
});
