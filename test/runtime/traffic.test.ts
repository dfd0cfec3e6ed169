// Dispatches and bytes per decode token (runtime/traffic.ts, eval/traffic.ts), counted at the source on
// stories260K: the counts equal what encodeInput/encodeLayer/encodeHead record, the bytes add up from the
// kernel plans, and the ideal for the formats stays below what the kernels read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { Executor } from '../../runtime/executor.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import { quantizedLinearFactory } from '../../runtime/artifact-linears.js';
import type { ModelConfig, ModelSource } from '../../core/model.js';
import type { QuantizedLinear } from '../../core/quantized.js';
import { w4WordCount } from '../../core/w4-layout.js';
import { planAttention } from '../../kernels/attention.js';
import { callReadBytes } from '../../kernels/kernel_plan.js';
import { decodeTraffic, idealDecodeBytes, quantizedLinearBytes, variantTraffic } from '../../eval/traffic.js';

const MODEL = '../shared/models/stories260K/model.bin';
const PROMPT = [1, 403, 407, 261, 378, 300];
const STEPS = 3;

let model: ModelSource;
let c: ModelConfig;
beforeAll(() => {
  model = loadLlama2c(MODEL, 'stories260k');
  c = model.config;
});
afterAll(() => model.close());

const KINDS: Array<[string, number, number]> = [];
function shapes(cfg: ModelConfig): Array<[string, number, number]> {
  if (KINDS.length) return KINDS;
  const q = cfg.nHeads * cfg.headDim, kv = cfg.nKvHeads * cfg.headDim;
  KINDS.push(['self_attn.q_proj', q, cfg.dim], ['self_attn.k_proj', kv, cfg.dim], ['self_attn.v_proj', kv, cfg.dim], ['self_attn.o_proj', cfg.dim, q],
    ['mlp.gate_proj', cfg.hiddenDim, cfg.dim], ['mlp.up_proj', cfg.hiddenDim, cfg.dim], ['mlp.down_proj', cfg.dim, cfg.hiddenDim]);
  return KINDS;
}

/** A W4A8 linear with a side path of `rank` and smoothing; values only need to be finite. */
function syntheticQuantized(out: number, inF: number, rank: number): QuantizedLinear {
  const words = new Uint32Array(w4WordCount(out, inF));
  for (let i = 0; i < words.length; i++) words[i] = (Math.imul(i + 1, 2654435761) >>> 0) & 0x77777777;
  return {
    inFeatures: inF, outFeatures: out, wBits: 4, aBits: 8, qweight: words, wScale: new Float32Array(out).fill(1e-3),
    smooth: new Float32Array(inF).fill(1), rank, la: new Float32Array(inF * rank).fill(1e-3), lb: new Float32Array(rank * out).fill(1e-3),
  } as QuantizedLinear;
}

describe('decode traffic on stories260K', () => {
  it('fp32: one dispatch per op recorded, bytes from the plans, ideal below', async () => {
    const gpu = await testGpu();
    const ex = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 32 });
    try {
      const t = await variantTraffic(ex, undefined, PROMPT, STEPS);
      expect(t.unknownDispatches).toBe(0);
      expect(t.estimatedDispatches).toBe(0);
      expect(t.positions).toEqual([PROMPT.length, PROMPT.length + STEPS - 1]);
      // encodeLayer on dense layers: qkv_proj, rope_kv, attention, o_proj, rmsnorm_add, gate_up_proj,
      // swiglu, down_proj, and rmsnorm_add into the next layer's norm (the last layer's rides in the head).
      const L = c.nLayers;
      const per = (label: string) => t.byLabel[label]?.dispatches ?? 0;
      for (const label of ['qkv_proj', 'rope_kv', 'attention', 'o_proj', 'gate_up_proj', 'swiglu', 'down_proj']) expect(per(label), label).toBe(L);
      expect(per('rmsnorm_add')).toBe(2 * L - 1);
      // encodeInput: the embedding (on the GPU or gathered on the host) and layer 0's norm; encodeHead: final norm and classifier.
      expect(per('rmsnorm')).toBe(1);
      expect(per('rmsnorm_final')).toBe(1);
      expect(per('lm_head')).toBe(1);
      const embedding = per('embedding');
      expect(t.dispatchesPerToken).toBe(embedding + 1 + (9 * L - 1) + 2);
      expect(t.dispatchesPerToken).toBe(Object.values(t.byLabel).reduce((s, l) => s + l.dispatches, 0));

      // Weights: every linear and the classifier read once, in f32.
      const weights = L * shapes(c).reduce((s, [, o, i]) => s + o * i * 4, 0) + c.vocabSize * c.dim * 4;
      expect(t.bytesPerToken).toBeGreaterThanOrEqual(weights);
      expect(t.byLabel.lm_head!.bytes).toBeGreaterThanOrEqual(c.vocabSize * c.dim * 4);
      // Attention reads q and the KV cache up to each step's position: exactly its plan's reads.
      const att = (pos: number) => callReadBytes(planAttention({ rows: 1, pos0: pos, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: false }))!;
      let attention = 0;
      for (let p = t.positions[0]; p <= t.positions[1]; p++) attention += (L * att(p)) / STEPS;
      expect(t.byLabel.attention!.bytes).toBeCloseTo(attention, 6);
      expect(att(10) - att(9)).toBe(2 * c.nKvHeads * c.headDim * 4);

      expect(t.idealBytesPerToken).toBeGreaterThanOrEqual(weights);
      expect(t.idealBytesPerToken).toBeLessThanOrEqual(t.bytesPerToken);
    } finally {
      ex.destroy();
    }
  });

  it('W4A8 with a side path: 10 dispatches a layer (groups, edges in the kernels), int4 bytes, ideal below what is read', async () => {
    const gpu = await testGpu();
    if (!gpu.features.packedDot4) return;
    const rank = 4;
    const layers = new Map<string, QuantizedLinear>();
    for (let l = 0; l < c.nLayers; l++) for (const [name, out, inF] of shapes(c)) layers.set(`model.layers.${l}.${name}`, syntheticQuantized(out, inF, rank));
    const pipelines = new PipelineCache(gpu.device);
    const ex = await Executor.create(gpu, model, {
      dtype: 'f32', maxSeqLen: 32, maxBatchTokens: 32,
      linearFactory: quantizedLinearFactory(gpu, pipelines, (m) => layers.get(m), { maxTokens: 32 }),
    });
    try {
      const fp = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 32 });
      const dense = await decodeTraffic(fp, PROMPT, STEPS);
      fp.destroy();
      const t = await variantTraffic(ex, layers, PROMPT, STEPS);
      expect(t.unknownDispatches).toBe(0);
      expect(t.estimatedDispatches).toBe(0);
      const L = c.nLayers;
      // Quantized layers run q|k|v and gate|up as one group each (kernel A + kernel B), o and down as
      // kernel A + kernel B, with the norms, residual adds and SwiGLU inside them: 10 dispatches a layer.
      for (const kind of ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj']) expect(t.byLabel[kind]?.dispatches, kind).toBe(2 * L);
      for (const kind of ['q_proj', 'rmsnorm', 'rmsnorm_add', 'swiglu']) expect(t.byLabel[kind], kind).toBeUndefined();
      const perLayer = ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj', 'rope_kv', 'attention'].reduce((n, k) => n + t.byLabel[k]!.dispatches, 0);
      expect(perLayer).toBe(10 * L);
      // + the embedding (layer 0's norm rides in its kernel A), the final norm and the classifier.
      expect(t.dispatchesPerToken).toBe(10 * L + 3);
      expect(dense.dispatchesPerToken).toBe(9 * L - 1 + 4);
      // Each group reads at least its members' int4 weights, scales, side paths and smoothing as stored.
      const groups: Record<string, string[]> = {
        qkv_proj: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], o_proj: ['self_attn.o_proj'],
        gate_up_proj: ['mlp.gate_proj', 'mlp.up_proj'], down_proj: ['mlp.down_proj'],
      };
      for (const [kind, names] of Object.entries(groups)) {
        const stored = names.reduce((n, name) => n + quantizedLinearBytes(layers.get(`model.layers.0.${name}`)!, 2), 0);
        expect(t.byLabel[kind]!.bytes, kind).toBeGreaterThanOrEqual(L * stored);
      }
      for (const [name, out, inF] of shapes(c)) expect(quantizedLinearBytes(layers.get(`model.layers.0.${name}`)!, 2)).toBeLessThan(out * inF * 4);
      expect(t.idealBytesPerToken).toBeLessThanOrEqual(t.bytesPerToken);
      expect(t.idealBytesPerToken).toBeLessThan(idealDecodeBytes(c, { denseBytes: 4, kvBytes: 4 }, t.positions[0]));
    } finally {
      ex.destroy();
    }
  });
});

describe('aser profile --json (runProfile)', () => {
  it('reports dispatches, bytes and ideal bytes per decode token with the copy peak of the same run', async () => {
    const { runProfile } = await import('../../eval/profile-run.js');
    const r = await runProfile({ model: 'stories260k', prefill: 6, decode: 2, repeats: 1 });
    const t = r.decodeTraffic.fp;
    expect(r.copyPeak.gbPerSec).toBeGreaterThan(0);
    expect(t.dispatchesPerToken).toBe(Object.values(t.byLabel).reduce((s, l) => s + l.dispatches, 0));
    expect(t.idealBytesPerToken).toBeLessThanOrEqual(t.bytesPerToken);
    expect(t.positions).toEqual([6, 7]);
    const ms = r.fp.ops ? r.fp.ops.decodeTotal : r.fp.decode.wallMs;
    expect(t.achievedGBs).toBeCloseTo(t.bytesPerToken / (ms * 1e6), 9);
    expect(t.copyPeakFraction).toBeCloseTo(t.achievedGBs / r.copyPeak.gbPerSec, 9);
    expect(r.fp.decode.tokPerSec).toBeGreaterThan(0); // the existing fields stay
  });
});
