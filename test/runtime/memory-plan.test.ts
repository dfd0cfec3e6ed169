import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../cli/main.js';
import { parseByteSize } from '../../core/byte-size.js';
import { SYNTH_SHAPES, synthHfConfigJson, writeSynthModel } from '../../loaders/synth.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import { Executor } from '../../runtime/executor.js';
import { testGpu } from '../helpers/gpu.js';
import { meanRankForAlpha, planMemory, type MemoryPlan } from '../../runtime/memory-plan.js';
import type { ModelConfig } from '../../core/model.js';
import { MemoryPlanError } from '../../runtime/errors.js';

const GiB = 2 ** 30;

/** dim 64, 2 layers, GQA 4:2, MLP 160: every figure below is worked out by hand from these. */
const SMALL: ModelConfig = {
  arch: 'llama', dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 512, maxSeqLen: 256,
  normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 1, eosId: 2,
};
const LLAMA3_8B: ModelConfig = { ...SYNTH_SHAPES['llama3-8b'] };

const item = (plan: MemoryPlan, key: string) => plan.items.find((i) => i.key === key)?.bytes;

describe('planMemory arithmetic (hand-checked small config)', () => {
  // The classifier dense (f16 vocab·dim), as before artifacts carried one; its int formats have their own test.
  const plan = planMemory(SMALL, { weights: 'w4a8', rank: 8, ctx: 128, kvDtype: 'f16', maxBatchTokens: 16, maxStorageBufferBindingSize: 16384, classifier: 'dense' });

  it('weights, scales, L_A/L_B, smoothing, norms, tables and KV cache', () => {
    // Linears per layer [in→out]: q 64→64, k 64→32, v 64→32, o 64→64, gate/up 64→160, down 160→64.
    // W4: in·out/2 = 2048 + 1024 + 1024 + 2048 + 5120 + 5120 + 5120 = 21504 per layer.
    expect(item(plan, 'weights')).toBe(2 * 21504);
    // Σout = 576 per layer, f32.
    expect(item(plan, 'scales')).toBe(2 * 576 * 4);
    // Σ(in+out) = 1120 per layer, rank 8, f16.
    expect(item(plan, 'lowRank')).toBe(2 * 1120 * 8 * 2);
    // One vector per op: the q|k|v and gate|up groups share theirs, so q|k|v, o, gate|up (64 each) and
    // down (160) = 352 per layer, f32 (one per linear, Σin = 6·64 + 160 = 544, without groups).
    expect(item(plan, 'smoothing')).toBe(2 * 352 * 4);
    expect(item(planMemory(SMALL, { ...plan.options, rank: 8, groups: false }), 'smoothing')).toBe(2 * 544 * 4);
    expect(item(plan, 'norms')).toBe(5 * 64 * 4);
    expect(item(plan, 'embedding')).toBe(512 * 64 * 2);
    expect(item(plan, 'classifier')).toBe(512 * 64 * 2);
    // 2 (K, V) · 2 layers · 128 ctx · 2 kv heads · 16 head dim · 2 bytes.
    expect(item(plan, 'kvCache')).toBe(2 * 2 * 128 * 2 * 16 * 2);
    expect(plan.meanRank).toBe(8);
    expect(plan.rankSource).toBe('rank');
  });

  it('activations mirror the executor buffers; the w4a8 scratch its kernels', () => {
    // ids 64 + x/xn/delta 12288 + q/att 8192 + k/v 4096 + gate/up/act 30720 + rope 8192 + targets/nll 2560
    // + logits readback 2048 + sample scratch 2·512·4 and its out and readback 2·8, and the classifier rows: as many as fit one 16 KiB binding of f32 logits,
    // 16384 / (512·4) = 8, so headIn 8·64·4 = 2048 and logits 8·512·4 = 16384.
    expect(item(plan, 'activations')).toBe(64 + 12288 + 8192 + 4096 + 30720 + 8192 + 2560 + 2048 + 4096 + 16 + 2048 + 16384);
    // xq 16·160 + s_x 16·4 + partial t: the q|k|v group's t has 3·8 = 24 columns, in = 64 (2 blocks)
    // is one split per token: 16 rows · 24 · 4 (more than down's 2 splits · 16 tokens · 8 · 4); rstd
    // 16·4 (the norm in kernel A); t and y2 (unfused only) stay 4-byte stubs.
    expect(item(plan, 'w4a8Scratch')).toBe(2560 + 64 + 16 * 24 * 4 + 4 + 4 + 16 * 4);
    // One 160-byte params uniform per W4 slice (8 ops: q|k|v, o, gate|up, down × 2 layers, one slice
    // each at 16 KiB; 32 bytes + the side-path segment table) + 16 bytes of kernel A params per op; the
    // classifier's 64 KiB f16 weight is 4 slices of 16 KiB.
    expect(item(plan, 'uniforms')).toBe(8 * (160 + 16) + 4 * 32);
    expect(plan.total).toBe(350336 - (2560 + 64 + 8192) + 3656 + 14 * 48 + 128 - (544 - 352) * 2 * 4 + (16 * 24 * 4 - 32 * 8 * 4 + 16 * 4) + (8 * 176 - 14 * 48) + 4096 + 16);
    expect(plan.total).toBe(plan.items.reduce((n, i) => n + i.bytes, 0));
  });

  it('lists tensors over the binding limit with the row-split count', () => {
    // 16 KiB bindings: the 64 KiB tables take 128 rows each → 4 bindings (logits were sized to fit).
    expect(plan.split).toEqual([
      { name: 'model.embed_tokens.weight', count: 1, bytes: 65536, bindings: 4 },
      { name: 'lm_head.weight', count: 1, bytes: 65536, bindings: 4 },
    ]);
    expect(plan.largestTensor).toEqual({ name: 'model.embed_tokens.weight', bytes: 65536 });
    expect(planMemory(SMALL, { weights: 'w4a8', rank: 8, ctx: 128, kvDtype: 'f16', maxBatchTokens: 16 }).split).toEqual([]);
  });

  it('per-linear ranks, outlier columns, dense weights, tied and host embeddings', () => {
    const ranks = Array.from({ length: 14 }, (_, i) => (i === 6 ? 10 : 0)); // only layer 0 down_proj
    const perLinear = planMemory(SMALL, { weights: 'w4a8', rank: ranks, outliers: 2, ctx: 128, kvDtype: 'f16', maxBatchTokens: 16, classifier: 'dense' });
    // Every linear carries 2 outlier columns; layer 0 down_proj 10 more. L_A is padded to whole chunks of
    // 8 columns per op (a group's columns side by side: q|k|v 6 → 8, gate|up 4 → 8; Σin over ops = 352
    // per layer), L_B is not (Σout = 576): 8·352·2 + 2·576·2 per layer, and layer 0's down_proj has 12
    // columns (16 padded): + (16 − 8)·160·2 + 10·64·2.
    expect(item(perLinear, 'lowRank')).toBe(2 * (8 * 352 * 2 + 2 * 576 * 2) + 8 * 160 * 2 + 10 * 64 * 2);
    expect(perLinear.meanRank).toBeCloseTo(2 + 10 / 14, 12);

    const dense = planMemory(SMALL, { weights: 'f16', ctx: 128, kvDtype: 'f16', maxBatchTokens: 16 });
    expect(item(dense, 'weights')).toBe(2 * 21504 * 4); // in·out·2 = 4× the packed int4
    expect(dense.items.map((i) => i.key)).not.toContain('lowRank');
    expect(planMemory(SMALL, { weights: 'f32', ctx: 128, kvDtype: 'f32', maxBatchTokens: 16 }).items.find((i) => i.key === 'embedding')!.bytes).toBe(512 * 64 * 4);

    // A tied classifier keeps its own copy of the matrix (the executor's dense op), wherever the embedding is.
    const tied = planMemory({ ...SMALL, tiedEmbeddings: true }, { weights: 'w4a8', rank: 8, ctx: 128, kvDtype: 'f16', maxBatchTokens: 16, embedding: 'host', classifier: 'dense' });
    expect(item(tied, 'classifier')).toBe(512 * 64 * 2);
    expect(item(tied, 'embedding')).toBe(0);
    const host = planMemory(SMALL, { ...plan.options, rank: 8, embedding: 'host' });
    expect(item(host, 'embedding')).toBe(0);
    expect(plan.total - host.total).toBe(512 * 64 * 2);

    const qwen = planMemory({ ...SMALL, arch: 'qwen2', attentionBias: true }, { weights: 'w4a8', rank: 8, ctx: 128, kvDtype: 'f16', maxBatchTokens: 16, classifier: 'dense' });
    expect(item(qwen, 'biases')).toBe(2 * (64 + 32 + 32) * 4);
  });

  it('rejects what it cannot plan with a MemoryPlanError naming the value', () => {
    const base = { ctx: 128, kvDtype: 'f16' as const, maxBatchTokens: 16 };
    expect(() => planMemory(SMALL, { ...base, weights: 'w4a8', rank: [1, 2] })).toThrow(/2 per-linear ranks given; the model has 2 layers × 7 linears = 14/);
    expect(() => planMemory(SMALL, { ...base, weights: 'w4a8', rank: Array(14).fill(33) })).toThrow(/rank\[1\] = 33 must be an integer in 0..32/);
    expect(() => planMemory(SMALL, { ...base, weights: 'f16', rank: 8 })).toThrow(MemoryPlanError);
    expect(() => planMemory(SMALL, { ...base, weights: 'w4a8', ctx: 0 })).toThrow(/ctx must be a positive integer/);
    expect(() => planMemory(SMALL, { ...base, weights: 'w4a8', alpha: 0.5 })).toThrow(/outside \[0, 0.1\]/);
  });
});

describe('the plan agrees with what the executor allocates', () => {
  it('dense f32 on this adapter: KV cache and activations exactly, weights within the per-linear uniforms', async () => {
    const root = mkdtempSync(join(tmpdir(), 'aser-plan-ex-'));
    try {
      writeSynthModel(join(root, 'm'), { shape: SMALL, seed: 3, tokenizerDir: '../shared/tokenizers/tok512' });
      const { source } = loadHfModel(join(root, 'm'));
      const gpu = await testGpu();
      const ex = await Executor.create(gpu, source, { dtype: 'f32', maxSeqLen: 128, maxBatchTokens: 16 });
      try {
        const plan = planMemory(source.config, { weights: 'f32', ctx: 128, kvDtype: 'f32', maxBatchTokens: 16, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize });
        const got = ex.memory();
        expect(got.kvCache).toBe(item(plan, 'kvCache'));
        expect(got.activations).toBe(item(plan, 'activations'));
        const planned = plan.items.filter((i) => i.key !== 'kvCache' && i.key !== 'activations').reduce((n, i) => n + i.bytes, 0);
        // Each dense LinearOp also owns a small params uniform (15 ops here); the plan leaves those out.
        expect(got.weights - planned).toBeGreaterThanOrEqual(0);
        expect(got.weights - planned).toBeLessThan(15 * 64);
      } finally {
        ex.destroy();
        source.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('α → mean rank (ASER Table 4, d = 4096)', () => {
  it('gives the table values and interpolates between them', () => {
    expect(meanRankForAlpha(0.05)).toBeCloseTo(30.58, 10);
    expect(meanRankForAlpha(0.1)).toBeCloseTo(59.93, 10);
    expect(meanRankForAlpha(0.015)).toBeCloseTo(5.41, 10);
    expect(meanRankForAlpha(0.04)).toBeCloseTo((14 + 30.58) / 2, 10);
    expect(meanRankForAlpha(0)).toBe(0);
    expect(meanRankForAlpha(0.05, 2048)).toBeCloseTo(15.29, 10);
  });
});

describe('LLaMA-3-8B, W4A8 at α = 0.05, 4096-token f16 KV cache', () => {
  const opts = { weights: 'w4a8' as const, alpha: 0.05, ctx: 4096, kvDtype: 'f16' as const, maxBatchTokens: 512 };
  const gpuTable = planMemory(LLAMA3_8B, { ...opts, embedding: 'gpu' });
  const hostTable = planMemory(LLAMA3_8B, { ...opts, embedding: 'host' });

  it('has the expected big items', () => {
    expect(item(gpuTable, 'weights')).toBe(6979321856 / 2); // 32 layers × 218,103,808 weights, 4 bits each
    expect(item(gpuTable, 'kvCache')).toBe(2 * 32 * 4096 * 8 * 128 * 2); // 512 MiB
    expect(item(gpuTable, 'embedding')).toBe(128256 * 4096 * 2);
    // The int8 classifier aser quantize writes by default: one byte a weight + f32 scales.
    expect(item(gpuTable, 'classifier')).toBe(128256 * 4096 + 128256 * 4);
    expect(item(planMemory(LLAMA3_8B, { ...opts, classifier: 'int4' }), 'classifier')).toBe(128256 * 4096 / 2 + 128256 * 4);
    expect(item(planMemory(LLAMA3_8B, { ...opts, classifier: 'f16' }), 'classifier')).toBe(128256 * 4096 * 2);
    // Mean rank 30.58 → 31 columns per linear, L_A padded to 32; Σin = 38912, Σout = 43008 per layer; f16.
    expect(item(gpuTable, 'lowRank')).toBe(32 * (32 * 38912 + 31 * 43008) * 2);
    expect(gpuTable.split.map((s) => [s.name, s.bindings])).toEqual([['model.embed_tokens.weight', 8], ['lm_head.weight', 4]]);
  });

  it('fits in 5.5 GiB with the embedding table on the host (the default for this vocabulary); on the GPU it costs 1 GiB more', () => {
    expect(planMemory(LLAMA3_8B, opts).total).toBe(hostTable.total);
    expect(hostTable.total).toBeLessThan(5.5 * GiB);
    expect(hostTable.total / GiB).toBeCloseTo(4.602, 3);
    expect(gpuTable.total / GiB).toBeCloseTo(5.581, 3);
    expect(gpuTable.total - hostTable.total).toBe(128256 * 4096 * 2);
  });
});

describe('aser plan (command smoke test)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'aser-plan-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(synthHfConfigJson(LLAMA3_8B)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(args: string[]): Promise<string> {
    const lines: string[] = [];
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...xs: unknown[]) => void lines.push(xs.join(' ')));
    const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (errors.push(String(s)), true));
    try {
      const code = await main(args);
      if (code !== 0) throw new Error(errors.join(''));
    } finally {
      spy.mockRestore();
      errSpy.mockRestore();
    }
    return lines.join('\n');
  }

  it('plans from a config.json at the default α 0.05 and ctx 4096 (JSON)', async () => {
    const out = JSON.parse(await run(['plan', '--config', join(dir, 'config.json'), '--embedding', 'host', '--json'])) as MemoryPlan & { origin: string };
    expect(out.origin).toBe(join(dir, 'config.json'));
    expect(out.rankSource).toBe('alpha');
    expect(out.options.ctx).toBe(4096);
    expect(out.total).toBe(planMemory(LLAMA3_8B, { weights: 'w4a8', alpha: 0.05, ctx: 4096, kvDtype: 'f16', maxBatchTokens: 512, embedding: 'host' }).total);
  });

  it('prints the table for --model llama3-8b, saying where the config came from', async () => {
    const text = await run(['plan', '--model', 'llama3-8b']);
    expect(text).toMatch(/^model {5}(built-in llama3-8b shape|preset llama3-8b: )/);
    expect(text).toMatch(/mean rank 30\.58 \(α = 0\.05: estimate from ASER Table 4/);
    expect(text).toMatch(/\n {2}total +\d+ +\d+\.\d +\d\.\d{3}\n/);
    await expect(run(['plan', '--model', 'llama3-8b', '--alpha', '0.3'])).rejects.toThrow(/outside \[0, 0.1\]/);
  });

  it('parses shard sizes like HF (decimal GB) and binary GiB', () => {
    expect(parseByteSize('2GB')).toBe(2e9);
    expect(parseByteSize('500MB')).toBe(5e8);
    expect(parseByteSize('1GiB')).toBe(2 ** 30);
    expect(parseByteSize('4096')).toBe(4096);
    expect(() => parseByteSize('lots')).toThrow(/cannot read size/);
  });
});
