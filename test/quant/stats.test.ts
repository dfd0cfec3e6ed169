import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadLlama2c, tensorF32 } from '../../loaders/llama2c.js';
import { collectCalibrationStats, drawCalibrationWindows } from '../../quant/calibrate.js';
import type { LinearInputCapture } from '../../quant/capture.js';
import { LinearInputStats } from '../../quant/stats.js';
import { ensureNativeBuilt, gaussian, maxAbsDiff } from './helpers.js';
import { CalibrationError } from '../../quant/errors.js';

beforeAll(ensureNativeBuilt);

describe('calibration statistics', () => {
  it('H = XᵀX, mean|X|, max|X| over chunks of any size, including > 512 rows (seed 2)', () => {
    const g = gaussian(2);
    const features = 7;
    const chunks = [3, 600, 1].map((t) => Float32Array.from({ length: t * features }, () => g()));
    const stats = new LinearInputStats(features, { sampleTokens: 0 });
    for (const c of chunks) stats.add(c);
    expect(stats.tokens).toBe(604);
    const all = new Float32Array(604 * features);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    const h = new Float64Array(features * features);
    const mean = new Float64Array(features);
    const max = new Float64Array(features);
    for (let t = 0; t < 604; t++)
      for (let i = 0; i < features; i++) {
        const v = all[t * features + i]!;
        mean[i] += Math.abs(v) / 604;
        max[i] = Math.max(max[i]!, Math.abs(v));
        for (let j = 0; j < features; j++) h[i * features + j] += v * all[t * features + j]!;
      }
    expect(maxAbsDiff(stats.hessian().data, h)).toBeLessThan(1e-9);
    expect(maxAbsDiff(stats.meanAbs(), mean)).toBeLessThan(1e-12);
    expect(Array.from(stats.maxAbs())).toEqual(Array.from(max));
    expect(stats.sample().tokens).toBe(0);
  });

  it('the reservoir keeps whole token rows, deterministically per seed', () => {
    const rows = (seed: number) => {
      const s = new LinearInputStats(2, { sampleTokens: 5, seed });
      s.add(Float32Array.from({ length: 200 }, (_, i) => Math.floor(i / 2) + (i % 2) * 1000));
      return s.sample();
    };
    const a = rows(1);
    expect(a.tokens).toBe(5);
    for (let r = 0; r < 5; r++) expect(a.x[2 * r + 1]! - a.x[2 * r]!).toBe(1000); // rows stay intact
    expect(rows(1).x).toEqual(a.x);
    expect(rows(2).x).not.toEqual(a.x);
  });

  it('non-finite activations and wrong shapes are refused', () => {
    const s = new LinearInputStats(3);
    expect(() => s.add(Float32Array.from([1, NaN, 2]))).toThrow(/non-finite activation NaN at token 0, channel 1/);
    expect(() => s.add(new Float32Array(4))).toThrow(/4 values is not \[tokens, 3\]/);
  });

  it('calibration windows: seeded, in bounds, refused when the text is too short', () => {
    const stream = Array.from({ length: 1000 }, (_, i) => i);
    const w = drawCalibrationWindows(stream, 8, 50, 3);
    expect(w.length).toBe(8);
    for (const win of w) {
      expect(win.length).toBe(50);
      expect(win[49]! - win[0]!).toBe(49);
      expect(win[49]!).toBeLessThan(1000);
    }
    expect(drawCalibrationWindows(stream, 8, 50, 3)).toEqual(w);
    expect(drawCalibrationWindows(stream, 8, 50, 4)).not.toEqual(w);
    expect(() => drawCalibrationWindows(stream.slice(0, 10), 1, 50, 0)).toThrow(CalibrationError);
  });

  it('collectCalibrationStats accumulates each (layer, input) once per window and frees layers', async () => {
    // Activations from the real stories260K embeddings (a CPU stand-in for the executor's capture hook,
    // which reports one [T, in] matrix per layer and input kind, possibly once per consumer).
    const model = loadLlama2c(new URL('../../../shared/models/stories260K/model.bin', import.meta.url).pathname);
    const emb = tensorF32(model.tensor('model.embed_tokens.weight'));
    const dim = model.config.dim;
    const hidden = model.config.hiddenDim;
    model.close();
    const capture: LinearInputCapture = {
      config: model.config,
      async captureLinearInputs(tokens, onInput) {
        // rows in chunks of 10, as the executor does for windows longer than its batch
        for (let r0 = 0; r0 < tokens.length; r0 += 10) {
          const rows = Math.min(10, tokens.length - r0);
          const x = new Float32Array(rows * dim);
          for (let i = 0; i < rows; i++) x.set(emb.subarray(tokens[r0 + i]! * dim, (tokens[r0 + i]! + 1) * dim), i * dim);
          for (let layer = 0; layer < 2; layer++) {
            await onInput(layer, 'attn_in', x, r0);
            await onInput(layer, 'attn_in', x, r0); // a repeat (one per consumer): counted once
            await onInput(layer, 'mlp_act', new Float32Array(rows * hidden).fill(layer + 1), r0);
          }
        }
      },
    };
    const windows = drawCalibrationWindows(Array.from(readFileSync(new URL('../../../shared/data/tinystories/calib.txt', import.meta.url)).subarray(0, 4000), (b) => b % 512), 3, 16, 0);
    const progress: number[] = [];
    const stats = await collectCalibrationStats(capture, windows, { layers: [1], sampleTokens: 8, onWindow: (d) => progress.push(d) });
    expect(progress).toEqual([1, 2, 3]);
    expect(stats.layers()).toEqual([1]);
    expect(stats.get(0, 'attn_in')).toBeUndefined();
    const attn = stats.require(1, 'attn_in');
    expect(attn.tokens).toBe(48);
    expect(attn.features).toBe(dim);
    expect(stats.require(1, 'mlp_act').maxAbs()[0]).toBe(2);
    stats.freeLayer(1);
    expect(() => stats.require(1, 'attn_in')).toThrow(/no calibration statistics for layer 1 input attn_in/);
  });
});
