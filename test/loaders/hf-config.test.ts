import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, NotFoundError } from '../../loaders/errors.js';
import { loadHfConfig, parseHfConfig, toHfConfigJson } from '../../loaders/hf-config.js';

// The published config.json files of the three preset models, as released.
const LLAMA3_8B = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001,
  hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 8192,
  model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: null, rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.40.0.dev0',
  use_cache: true, vocab_size: 128256,
};
const LLAMA2_7B = {
  _name_or_path: 'meta-llama/Llama-2-7b-hf', architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
  hidden_size: 4096, initializer_range: 0.02, intermediate_size: 11008, max_position_embeddings: 4096, model_type: 'llama',
  num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null,
  tie_word_embeddings: false, torch_dtype: 'float16', transformers_version: '4.31.0.dev0', use_cache: true, vocab_size: 32000,
};
const QWEN15_7B = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu',
  hidden_size: 4096, initializer_range: 0.02, intermediate_size: 11008, max_position_embeddings: 32768, max_window_layers: 28,
  model_type: 'qwen2', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
  sliding_window: 32768, tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.37.0', use_cache: true,
  use_sliding_window: false, vocab_size: 151936,
};

describe('HF config.json -> ModelConfig', () => {
  it('reads the Llama-3-8B, Llama-2-7B and Qwen1.5-7B configs', () => {
    expect(parseHfConfig('config.json', LLAMA3_8B)).toEqual({
      arch: 'llama', dim: 4096, hiddenDim: 14336, nLayers: 32, nHeads: 32, nKvHeads: 8, headDim: 128, vocabSize: 128256, maxSeqLen: 8192,
      normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: 128000, eosId: 128001,
    });
    // Llama 2 has no rope_theta: the default 10000 applies.
    expect(parseHfConfig('config.json', LLAMA2_7B)).toMatchObject({ nKvHeads: 32, headDim: 128, ropeTheta: 10000, vocabSize: 32000, bosId: 1, eosId: 2 });
    expect(parseHfConfig('config.json', QWEN15_7B)).toMatchObject({
      arch: 'qwen2', attentionBias: true, tiedEmbeddings: false, ropeTheta: 1e6, normEps: 1e-6, maxSeqLen: 32768, vocabSize: 151936, bosId: 151643, eosId: 151643,
    });
  });

  it('reads llama3 rope scaling, eos lists, defaults and explicit head_dim', () => {
    const llama31 = {
      ...LLAMA3_8B, max_position_embeddings: 131072, eos_token_id: [128001, 128008, 128009],
      rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    };
    const c = parseHfConfig('config.json', llama31);
    expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(c.eosId).toBe(128001);
    const { num_key_value_heads: _, ...noKv } = LLAMA2_7B;
    expect(parseHfConfig('config.json', noKv).nKvHeads).toBe(32);
    expect(parseHfConfig('config.json', { ...LLAMA3_8B, head_dim: 64 }).headDim).toBe(64);
    expect(parseHfConfig('config.json', { ...LLAMA3_8B, rope_scaling: { rope_type: 'default' } }).ropeScaling).toBeUndefined();
    expect(parseHfConfig('config.json', { ...LLAMA3_8B, tie_word_embeddings: true }).tiedEmbeddings).toBe(true);
    // BOS/EOS from the tokenizer when config.json has none.
    const { bos_token_id: _b, eos_token_id: _e, ...noIds } = LLAMA3_8B;
    expect(parseHfConfig('config.json', noIds, { bosId: 7, eosId: 9 })).toMatchObject({ bosId: 7, eosId: 9 });
  });

  it('round-trips through toHfConfigJson', () => {
    for (const json of [LLAMA3_8B, QWEN15_7B]) {
      const c = parseHfConfig('config.json', json);
      expect(parseHfConfig('config.json', JSON.parse(JSON.stringify(toHfConfigJson(c))))).toEqual(c);
    }
  });

  it('names the field that is missing, mistyped or unsupported', () => {
    const { hidden_size: _, ...noHidden } = LLAMA3_8B;
    const cases: Array<[unknown, RegExp]> = [
      [noHidden, /missing required field hidden_size \(a positive integer\)/],
      [{ ...LLAMA3_8B, num_hidden_layers: '32' }, /field num_hidden_layers must be a positive integer, got "32"/],
      [{ ...LLAMA3_8B, rms_norm_eps: -1 }, /field rms_norm_eps must be a positive number/],
      [{ ...LLAMA3_8B, tie_word_embeddings: 'no' }, /field tie_word_embeddings must be true or false/],
      [{ ...LLAMA3_8B, eos_token_id: 'x' }, /field eos_token_id must be a token id/],
      [{ ...LLAMA3_8B, rope_scaling: { type: 'linear', factor: 2 } }, /rope_scaling type "linear" is not supported/],
      [{ ...LLAMA3_8B, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling type "yarn" is not supported/],
      [{ ...LLAMA3_8B, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /missing required field low_freq_factor/],
      [{ ...LLAMA3_8B, model_type: 'mistral', architectures: ['MistralForCausalLM'] }, /model_type "mistral" is not supported/],
      [{ ...LLAMA3_8B, num_key_value_heads: 5 }, /num_attention_heads 32 is not a multiple of num_key_value_heads 5/],
      [{ ...LLAMA3_8B, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
      [{ ...QWEN15_7B, use_sliding_window: true }, /use_sliding_window true is not supported/],
      [{ ...LLAMA3_8B, attention_bias: true }, /attention_bias true is not supported for llama/],
      [(() => { const { bos_token_id: _b, ...c } = LLAMA3_8B; return c; })(), /missing required field bos_token_id/],
      [[1, 2], /not a JSON object/],
    ];
    for (const [json, reason] of cases) {
      expect(() => parseHfConfig('/m/config.json', json), String(reason)).toThrow(FormatError);
      expect(() => parseHfConfig('/m/config.json', json), String(reason)).toThrow(reason);
    }
  });

  it('loads from a file, with typed errors for a missing file and bad JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-cfg-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(QWEN15_7B));
    expect(loadHfConfig(file).arch).toBe('qwen2');
    writeFileSync(file, '{"hidden_size": 4096,');
    expect(() => loadHfConfig(file)).toThrow(FormatError);
    expect(() => loadHfConfig(file)).toThrow(`${file}: config.json is not valid JSON`);
    expect(() => loadHfConfig(join(dir, 'none.json'))).toThrow(NotFoundError);
  });
});
