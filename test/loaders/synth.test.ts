import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, LoadError, SynthError } from '../../loaders/errors.js';
import { loadHfModel } from '../../loaders/hf-model.js';
import { openSafetensors } from '../../loaders/safetensors.js';
import {
  SYNTH_SHAPES, Xoshiro128, planShards, synthConfig, synthHfConfigJson, writeSynthModel, type SynthProgress,
  type SynthResult,
} from '../../loaders/synth.js';
import { readTensorF32 } from '../../core/dtype.js';
import type { ModelConfig } from '../../core/model.js';
import { Executor } from '../../runtime/executor.js';
import { captureLinearInputs } from '../../quant/capture.js';
import { testGpu } from '../helpers/gpu.js';

const TOK512 = '../shared/tokenizers/tok512';
const LLAMA3_TOK = '../shared/tokenizers/llama3';

/** LLaMA-3 proportions (GQA 2:1, wide MLP) at toy size: the same code path as the 8B shapes. */
const TINY: ModelConfig = {
  arch: 'llama', dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16, vocabSize: 512, maxSeqLen: 256,
  normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 1, eosId: 2,
};
const TINY_QWEN: ModelConfig = { ...TINY, arch: 'qwen2', nKvHeads: 4, hiddenDim: 96, normEps: 1e-6, ropeTheta: 1e6, attentionBias: true };
/** Small enough that the tiny model spreads over several shards. */
const SHARD_BYTES = 60_000;

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'aser-synth-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function filesOf(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))]));
}

function median(xs: Float32Array): number {
  const s = Float32Array.from(xs).sort();
  return s[Math.floor(s.length / 2)]!;
}

describe('writeSynthModel (tiny shape, same code path as 8B)', () => {
  let a: SynthResult;
  let dirA: string;
  const progress: SynthProgress[] = [];

  beforeAll(() => {
    dirA = join(root, 'a');
    a = writeSynthModel(dirA, { shape: TINY, seed: 1, shardBytes: SHARD_BYTES, tokenizerDir: TOK512, onProgress: (p) => progress.push(p) });
  });

  it('is byte-for-byte deterministic per seed and differs with another seed', () => {
    const again = writeSynthModel(join(root, 'a2'), { shape: TINY, seed: 1, shardBytes: SHARD_BYTES, tokenizerDir: TOK512 });
    const other = writeSynthModel(join(root, 'b'), { shape: TINY, seed: 2, shardBytes: SHARD_BYTES, tokenizerDir: TOK512 });
    const fa = filesOf(dirA);
    const f2 = filesOf(again.dir);
    const fb = filesOf(other.dir);
    expect([...f2.keys()]).toEqual([...fa.keys()]);
    for (const [name, bytes] of fa) expect(f2.get(name)!.equals(bytes), name).toBe(true);
    expect(fb.get('config.json')!.equals(fa.get('config.json')!)).toBe(true);
    for (const shard of a.shards) expect(fb.get(shard)!.equals(fa.get(shard)!), shard).toBe(false);
    expect(other.outliers.map((o) => o.channel)).not.toEqual(a.outliers.map((o) => o.channel));
  });

  it('loads with loadHfModel: the config and every tensor as bf16 of the right shape', () => {
    const { source, tokenizer } = loadHfModel(dirA);
    try {
      // BOS/EOS come from the copied tokenizer; nothing else of the shape changes.
      expect(source.config).toEqual({ ...TINY, bosId: tokenizer.bosId, eosId: tokenizer.eosId });
      expect(tokenizer.vocabSize).toBe(512);
      expect(source.names()).toHaveLength(a.tensorCount);
      for (const name of source.names()) expect(source.tensor(name).dtype).toBe('bf16');
      for (const name of source.names()) expect(readTensorF32(source.tensor(name)).every(Number.isFinite), name).toBe(true);
    } finally {
      source.close();
    }
  });

  it('has the same outlier channels, 20-100x larger, in every RMSNorm weight', () => {
    const { source } = loadHfModel(dirA);
    try {
      const channels = a.outliers.map((o) => o.channel);
      expect(channels.length).toBe(2); // ≈ 6 per 4096, at least 2
      const norms = source.names().filter((n) => n.endsWith('layernorm.weight') || n === 'model.norm.weight');
      expect(norms).toHaveLength(2 * TINY.nLayers + 1);
      for (const name of norms) {
        const w = readTensorF32(source.tensor(name));
        const med = median(w);
        expect(med, name).toBeGreaterThan(0.7);
        expect(med, name).toBeLessThan(1.3);
        const big = [...w.keys()].filter((j) => w[j]! > 10 * med);
        expect(big, name).toEqual(channels);
        for (const { channel, scale } of a.outliers) {
          expect(scale).toBeGreaterThanOrEqual(20);
          expect(scale).toBeLessThanOrEqual(100);
          expect(w[channel]! / med, `${name}[${channel}]`).toBeGreaterThan(0.7 * scale);
          expect(w[channel]! / med, `${name}[${channel}]`).toBeLessThan(1.3 * scale);
        }
      }
    } finally {
      source.close();
    }
  });

  it('writes linear weights with trained-model statistics (std per projection, heavy tails)', () => {
    const { source } = loadHfModel(dirA);
    try {
      const stats = (name: string) => {
        const x = readTensorF32(source.tensor(name));
        let ss = 0, max = 0, mean = 0;
        for (const v of x) { ss += v * v; max = Math.max(max, Math.abs(v)); mean += v; }
        return { rms: Math.sqrt(ss / x.length), max, mean: mean / x.length };
      };
      const q = stats('model.layers.0.self_attn.q_proj.weight');
      const o = stats('model.layers.0.self_attn.o_proj.weight');
      const down = stats('model.layers.1.mlp.down_proj.weight');
      expect(q.rms).toBeGreaterThan(0.014); // 0.02 × depth factor 0.85, ± row-scale noise
      expect(q.rms).toBeLessThan(0.022);
      expect(o.rms).toBeLessThan(q.rms); // o/down smaller than q, as in trained models
      expect(down.rms).toBeLessThan(q.rms * 1.2);
      expect(Math.abs(q.mean)).toBeLessThan(q.rms / 10);
      // A Gaussian 4096-sample absmax is ≈ 3.5σ; Tukey-h tails reach well past it.
      expect(q.max / q.rms).toBeGreaterThan(4.5);
      expect(q.max / q.rms).toBeLessThan(14);
    } finally {
      source.close();
    }
  });

  it('bounds shards and keeps the index consistent with the files', () => {
    const index = JSON.parse(readFileSync(join(dirA, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(a.shards.length).toBeGreaterThan(2);
    expect(a.shards[0]).toBe(`model-00001-of-${String(a.shards.length).padStart(5, '0')}.safetensors`);
    expect(readdirSync(dirA).filter((f) => f.endsWith('.safetensors')).sort()).toEqual([...a.shards].sort());
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(a.shards));
    let total = 0;
    const seen = new Set<string>();
    for (const shard of a.shards) {
      const file = openSafetensors(join(dirA, shard));
      try {
        let bytes = 0;
        for (const name of file.names()) {
          expect(index.weight_map[name], name).toBe(shard);
          const e = file.entry(name);
          bytes += e.end - e.begin;
          seen.add(name);
        }
        // Over the bound only when one tensor alone is larger (HF's rule).
        if (file.names().length > 1) expect(bytes, shard).toBeLessThanOrEqual(SHARD_BYTES);
        expect(file.metadata.format).toBe('pt');
        total += bytes;
      } finally {
        file.close();
      }
    }
    expect(seen).toEqual(new Set(Object.keys(index.weight_map)));
    expect(index.metadata.total_size).toBe(total);
    expect(a.totalBytes).toBe(total);
    expect(progress.at(-1)).toEqual({ tensor: '', doneBytes: total, totalBytes: total });
    expect(progress[0]).toEqual({ tensor: 'model.embed_tokens.weight', doneBytes: 0, totalBytes: total });
  });

  it('writes one model.safetensors without index when everything fits one shard', () => {
    const one = writeSynthModel(join(root, 'single'), { shape: TINY, seed: 1, tokenizerDir: null });
    expect(one.shards).toEqual(['model.safetensors']);
    expect(readdirSync(one.dir).sort()).toEqual(['config.json', 'model.safetensors']);
    // Same tensors as the sharded copy: sharding moves file boundaries only.
    const sharded = loadHfModel(dirA);
    const single = loadHfModel(one.dir, { tokenizer: sharded.tokenizer });
    try {
      for (const name of sharded.source.names()) expect(Buffer.from(single.source.tensor(name).read()).equals(sharded.source.tensor(name).read()), name).toBe(true);
    } finally {
      sharded.source.close();
      single.source.close();
    }
  });

  it('gives a shallower model exactly the first layers of a deeper one (per-tensor streams)', () => {
    const deep = writeSynthModel(join(root, 'deep'), { shape: TINY, layers: 3, seed: 1, tokenizerDir: TOK512 });
    const shallow = loadHfModel(dirA);
    const deeper = loadHfModel(deep.dir);
    try {
      expect(deeper.source.config.nLayers).toBe(3);
      for (const name of shallow.source.names()) expect(Buffer.from(deeper.source.tensor(name).read()).equals(shallow.source.tensor(name).read()), name).toBe(true);
    } finally {
      shallow.source.close();
      deeper.source.close();
    }
  });

  it('writes q/k/v biases for a Qwen2 shape, k biases the largest', () => {
    const q = writeSynthModel(join(root, 'qwen'), { shape: TINY_QWEN, seed: 5, tokenizerDir: TOK512 });
    const { source } = loadHfModel(q.dir);
    try {
      expect(source.config.arch).toBe('qwen2');
      const rms = (n: string) => { const x = readTensorF32(source.tensor(n)); return Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length); };
      expect(rms('model.layers.0.self_attn.k_proj.bias')).toBeGreaterThan(2 * rms('model.layers.0.self_attn.q_proj.bias'));
      expect(rms('model.layers.0.self_attn.v_proj.bias')).toBeGreaterThan(0);
    } finally {
      source.close();
    }
  });

  it('makes outlier activation channels a real model run sees (executor capture on the GPU)', async () => {
    const { source } = loadHfModel(dirA);
    const ex = await Executor.create(await testGpu(), source, { dtype: 'f32', maxSeqLen: 32 });
    try {
      const channels = new Set(a.outliers.map((o) => o.channel));
      const meanAbs = new Float64Array(TINY.dim);
      await captureLinearInputs(ex, Array.from({ length: 16 }, (_, i) => (i * 37) % 512), (layer, kind, x) => {
        if (layer !== 1 || kind !== 'attn_in') return;
        for (let i = 0; i < x.length; i++) meanAbs[i % TINY.dim]! += Math.abs(x[i]!);
      });
      const ordered = [...meanAbs.keys()].sort((i, j) => meanAbs[j]! - meanAbs[i]!);
      expect(new Set(ordered.slice(0, channels.size))).toEqual(channels);
      const sorted = Float64Array.from(meanAbs).sort();
      expect(meanAbs[ordered[0]!]! / sorted[TINY.dim >> 1]!).toBeGreaterThan(10); // max/median x̄, like LLaMA's massive activations
      await ex.forward([1, 2, 3]);
      expect((await ex.logits()).every(Number.isFinite)).toBe(true);
    } finally {
      ex.destroy();
      source.close();
    }
  });

  it('refuses bad requests with typed errors and leaves nothing behind', () => {
    expect(() => writeSynthModel(dirA, { shape: TINY, seed: 1, tokenizerDir: null })).toThrow(LoadError); // exists
    expect(() => writeSynthModel(join(root, 'x'), { shape: TINY, layers: 0, seed: 1, tokenizerDir: null })).toThrow(SynthError);
    expect(() => writeSynthModel(join(root, 'x'), { shape: 'llama4-400b' as never, seed: 1, tokenizerDir: null })).toThrow(/unknown shape/);
    // A 128256-token tokenizer cannot serve a 512-token model.
    expect(() => writeSynthModel(join(root, 'x'), { shape: TINY, seed: 1, tokenizerDir: LLAMA3_TOK })).toThrow(FormatError);
    expect(() => writeSynthModel(join(root, 'x'), { shape: { ...TINY, nKvHeads: 3 }, seed: 1, tokenizerDir: null })).toThrow(/num_key_value_heads/);
    expect(readdirSync(root).filter((f) => f.startsWith('x') || f.startsWith('.x'))).toEqual([]);
  });
});

describe('8B shapes (config only, no weights written)', () => {
  it('llama3-8b: real LLaMA-3-8B dimensions, only the layer count reduced', () => {
    const json = synthHfConfigJson(synthConfig('llama3-8b', 2));
    expect(json).toMatchObject({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 2,
      num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, vocab_size: 128256, rope_theta: 500000, rms_norm_eps: 1e-5,
      max_position_embeddings: 8192, tie_word_embeddings: false, torch_dtype: 'bfloat16', hidden_act: 'silu',
    });
    expect(synthConfig('llama3-8b').nLayers).toBe(32);
  });

  it('qwen1.5-7b: real Qwen1.5-7B dimensions (no GQA, q/k/v bias)', () => {
    const config = synthConfig('qwen1.5-7b', 4);
    expect(config.attentionBias).toBe(true);
    expect(synthHfConfigJson(config)).toMatchObject({
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 4,
      num_attention_heads: 32, num_key_value_heads: 32, head_dim: 128, vocab_size: 151936, rope_theta: 1000000, rms_norm_eps: 1e-6,
      use_sliding_window: false, tie_word_embeddings: false,
    });
  });

  it('shards a 2-layer llama3-8b under 2 GB: embedding + layers + final norm, then the classifier', () => {
    const c = synthConfig('llama3-8b', 2);
    const bytes = (n: number[]) => n.reduce((x, y) => x * y, 1) * 2;
    const layer = bytes([4096, 4096]) * 2 + bytes([1024, 4096]) * 2 + bytes([14336, 4096]) * 3 + bytes([4096]) * 2;
    const tensors = [{ bytes: bytes([c.vocabSize, c.dim]) }, { bytes: layer }, { bytes: layer }, { bytes: bytes([4096]) }, { bytes: bytes([c.vocabSize, c.dim]) }];
    expect(planShards(tensors, 2e9).map((s) => s.length)).toEqual([4, 1]);
    expect(SYNTH_SHAPES['llama3-8b'].vocabSize * 4096 * 2).toBe(1050673152); // the 1 GiB peak buffer
  });

  it('xoshiro128** streams are deterministic and well spread', () => {
    const r1 = new Xoshiro128(42, 7);
    const r2 = new Xoshiro128(42, 7);
    const xs = Array.from({ length: 10000 }, () => r1.uniform());
    expect(Array.from({ length: 10000 }, () => r2.uniform())).toEqual(xs);
    expect(new Xoshiro128(42, 8).nextU32()).not.toBe(new Xoshiro128(42, 7).nextU32());
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

// Every write above was atomic: failures and successes alike leave no temporary sibling behind.
it('leaves no temporary files in the output parent', () => {
  expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
  expect(statSync(root).isDirectory()).toBe(true);
});
