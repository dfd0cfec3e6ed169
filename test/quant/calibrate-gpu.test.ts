// Calibration through the real executor (WebGPU; llvmpipe here) on stories260K: the capture hook feeds
// LinearInputStats for every layer and input kind, across the executor's row chunks.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLlama2c, tensorF32 } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource } from '../../core/model.js';
import { collectCalibrationStats, drawCalibrationWindows, LINEAR_INPUT_KINDS } from '../../quant/calibrate.js';
import { executorCapture, type LinearInputCapture } from '../../quant/capture.js';
import { testGpu } from '../helpers/gpu.js';
import { ensureNativeBuilt } from './helpers.js';

const shared = new URL('../../../shared/', import.meta.url);
let source: ModelSource;
let executor: Executor;

beforeAll(async () => {
  ensureNativeBuilt();
  source = loadLlama2c(new URL('models/stories260K/model.bin', shared).pathname, 'stories260k');
  // 16-row batches, so a 40-token window arrives in three chunks
  executor = await Executor.create(await testGpu(), source, { dtype: 'f32', maxSeqLen: 64, maxBatchTokens: 16 });
});
afterAll(() => {
  executor?.destroy();
  source?.close();
});

describe('calibration with the executor (stories260K)', () => {
  it('accumulates every layer and input kind over all window rows; layer 0 attn_in is RMSNorm(embedding)·g', async () => {
    const capture: LinearInputCapture = executorCapture(executor);
    const tokenizer = loadLlama2cTokenizer(new URL('models/stories260K/tokenizer.bin', shared).pathname, source.config.vocabSize);
    const text = readFileSync(new URL('data/tinystories/calib.txt', shared), 'utf8').slice(0, 20000);
    const windows = drawCalibrationWindows(tokenizer.encode(text), 2, 40, 0);
    const stats = await collectCalibrationStats(capture, windows, { sampleTokens: 8 });
    const { nLayers, dim, normEps } = source.config;
    expect(stats.layers()).toEqual(Array.from({ length: nLayers }, (_, i) => i));
    for (let l = 0; l < nLayers; l++) for (const kind of LINEAR_INPUT_KINDS) expect(stats.require(l, kind).tokens).toBe(80);
    expect(stats.require(0, 'mlp_act').features).toBe(source.config.hiddenDim);

    // CPU reference for layer 0's attention input: x = e / rms(e) · g
    const emb = tensorF32(source.tensor('model.embed_tokens.weight'));
    const g = tensorF32(source.tensor('model.layers.0.input_layernorm.weight'));
    const mean = new Float64Array(dim);
    for (const win of windows) {
      for (const t of win) {
        const e = emb.subarray(t * dim, (t + 1) * dim);
        const rms = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / dim + normEps);
        for (let j = 0; j < dim; j++) mean[j] += Math.abs((e[j]! / rms) * g[j]!) / 80;
      }
    }
    const got = stats.require(0, 'attn_in').meanAbs();
    for (let j = 0; j < dim; j++) expect(Math.abs(got[j]! - mean[j]!)).toBeLessThan(1e-4 * (1 + mean[j]!));
  });
});
