import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, NotFoundError } from '../../loaders/errors.js';
import { loadHfModel, requiredTensorShapes } from '../../loaders/hf-model.js';
import { writeSafetensors, type SafetensorsWriteTensor } from '../../loaders/safetensors.js';
import { readTensorF32, f32ToBf16Array } from '../../core/dtype.js';

const TOK512 = '../shared/tokenizers/tok512';

/** A tiny Qwen2-shaped model: 2 layers, dim 16, 4 heads of 4, 2 KV heads, untied, q/k/v biases. */
const QWEN_TINY = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 520, max_position_embeddings: 128, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, tie_word_embeddings: false, use_sliding_window: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
};

/** Deterministic bf16 weights for every tensor the config requires, value = (tensor index + element index / 1000). */
function tinyTensors(shapes: Array<{ name: string; shape: number[] }>): SafetensorsWriteTensor[] {
  return shapes.map(({ name, shape }, t) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, (_, i) => t + (i % 64) / 64);
    return { name, dtype: 'bf16', shape, data: new Uint8Array(f32ToBf16Array(values).buffer) };
  });
}

function makeDir(config: Record<string, unknown>, mutate?: (ts: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[], sharded = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'aser-hfdir-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  copyFileSync(`${TOK512}/tokenizer.json`, join(dir, 'tokenizer.json'));
  copyFileSync(`${TOK512}/tokenizer_config.json`, join(dir, 'tokenizer_config.json'));
  // Build the expected list from the same rules the loader checks, then split it over two shards.
  let tensors = tinyTensors(requiredTensorShapes({
    arch: 'qwen2', dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 520, maxSeqLen: 128, normEps: 1e-6,
    ropeTheta: 1e6, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: true, bosId: 1, eosId: 2,
  }));
  if (mutate) tensors = mutate(tensors);
  if (!sharded) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return dir;
  }
  const half = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((ts, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(dir, file), ts, { format: 'pt' });
    for (const t of ts) weightMap[t.name] = file;
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

describe('Hugging Face model directory', () => {
  it('loads a sharded Qwen2 checkpoint with biases, bf16 weights and its tokenizer', () => {
    const dir = makeDir(QWEN_TINY);
    const { source, tokenizer } = loadHfModel(dir);
    expect(source.config).toMatchObject({ arch: 'qwen2', attentionBias: true, headDim: 4, nKvHeads: 2, tiedEmbeddings: false, ropeStyle: 'half' });
    expect(source.names().length).toBe(3 + 2 * 12);
    const bias = source.tensor('model.layers.1.self_attn.k_proj.bias');
    expect(bias).toMatchObject({ dtype: 'bf16', shape: [8], byteLength: 16 });
    const lm = readTensorF32(source.tensor('lm_head.weight'));
    expect(lm.length).toBe(520 * 16);
    expect(lm[65]).toBe(2 + 1 / 64); // lm_head is the third required tensor (index 2)
    // SentencePiece's encoding of this text (tok512 reference vectors).
    expect(tokenizer.encode('Once upon a time', { bos: true })).toEqual([1, 403, 407, 261, 378]);
    source.close();
  });

  it('reads a single model.safetensors the same way', () => {
    const dir = makeDir(QWEN_TINY, undefined, false);
    const { source } = loadHfModel(dir, { id: 'tiny' });
    expect(source.id).toBe('tiny');
    expect(source.has('model.layers.0.mlp.down_proj.weight')).toBe(true);
    source.close();
  });

  it('says which tensors are missing or mis-shaped', () => {
    const missing = makeDir(QWEN_TINY, (ts) => ts.filter((t) => !t.name.includes('layers.1.self_attn.v_proj') && t.name !== 'lm_head.weight'));
    expect(() => loadHfModel(missing)).toThrow(FormatError);
    expect(() => loadHfModel(missing)).toThrow(/missing 3 tensor\(s\): lm_head.weight, model.layers.1.self_attn.v_proj.weight, model.layers.1.self_attn.v_proj.bias/);
    const reshaped = makeDir(QWEN_TINY, (ts) => ts.map((t) => (t.name === 'model.layers.0.mlp.up_proj.weight' ? { ...t, shape: [16, 24] } : t)));
    expect(() => loadHfModel(reshaped)).toThrow(/wrong shape: model.layers.0.mlp.up_proj.weight is \[16,24\], the config implies \[24,16\]/);
    const wrongHeads = makeDir({ ...QWEN_TINY, num_key_value_heads: 4 });
    expect(() => loadHfModel(wrongHeads)).toThrow(/self_attn.k_proj.weight is \[8,16\], the config implies \[16,16\]/);
  });

  it('names the missing file or the mismatch for broken directories', () => {
    expect(() => loadHfModel('/nonexistent/model')).toThrow(NotFoundError);
    const noConfig = makeDir(QWEN_TINY);
    rmSync(join(noConfig, 'config.json'));
    expect(() => loadHfModel(noConfig)).toThrow(/config.json: missing/);
    const noTokenizer = makeDir(QWEN_TINY);
    rmSync(join(noTokenizer, 'tokenizer.json'));
    expect(() => loadHfModel(noTokenizer)).toThrow(NotFoundError);
    const noWeights = makeDir(QWEN_TINY, undefined, false);
    rmSync(join(noWeights, 'model.safetensors'));
    expect(() => loadHfModel(noWeights)).toThrow(/no model.safetensors or model.safetensors.index.json/);
    const smallVocab = makeDir({ ...QWEN_TINY, vocab_size: 300 });
    expect(() => loadHfModel(smallVocab)).toThrow(/the tokenizer has 512 tokens but the model only 300/);
    const badConfig = makeDir(QWEN_TINY);
    writeFileSync(join(badConfig, 'config.json'), JSON.stringify({ ...QWEN_TINY, intermediate_size: undefined }));
    expect(() => loadHfModel(badConfig)).toThrow(/missing required field intermediate_size/);
  });
});
