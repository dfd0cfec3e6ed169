// Hugging Face config.json -> ModelConfig for the architectures the runtime runs: llama
// (LlamaForCausalLM) and qwen2 (Qwen2ForCausalLM, i.e. Qwen1.5/Qwen2: q/k/v carry a bias).
// Features the executor does not implement (other RoPE scalings, sliding windows, extra biases,
// other activations) are refused here with the field that asks for them, rather than run wrongly.
import type { ModelConfig, RopeScaling } from '../core/model.js';
import { FormatError } from './errors.js';
import { isRecord } from './json-record.js';

const ARCHITECTURES: Record<string, ModelConfig['arch']> = { LlamaForCausalLM: 'llama', Qwen2ForCausalLM: 'qwen2' };

export interface HfConfigFallbacks {
  /** Used when config.json has no bos_token_id / eos_token_id (e.g. taken from the tokenizer). */
  bosId?: number;
  eosId?: number;
}

/** Reads fields with a file-and-field error for anything missing or of the wrong type. */
class Fields {
  constructor(
    private readonly file: string,
    private readonly json: Record<string, unknown>,
  ) {}

  private fail(field: string, want: string): never {
    const got = this.json[field];
    throw new FormatError(this.file, got === undefined ? `missing required field ${field} (${want})` : `field ${field} must be ${want}, got ${JSON.stringify(got)}`);
  }

  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.json[field];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(field, 'a positive integer');
    return v;
  }

  positiveNumber(field: string, fallback?: number): number {
    const v = this.json[field];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, 'a positive number');
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(field, 'true or false');
    return v;
  }

  /** A token id, or a list of them (the first is used); undefined when absent or null. */
  tokenId(field: string): number | undefined {
    let v = this.json[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) v = v[0];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(field, 'a token id or a list of token ids');
    return v;
  }
}

function parseRopeScaling(file: string, raw: unknown): RopeScaling | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) throw new FormatError(file, `field rope_scaling must be an object or null, got ${JSON.stringify(raw)}`);
  const type = raw.rope_type ?? raw.type;
  if (type === 'default') return undefined;
  if (type !== 'llama3') {
    throw new FormatError(file, `rope_scaling type ${JSON.stringify(type)} is not supported (only "llama3" frequency scaling is implemented)`);
  }
  const f = new Fields(file, raw);
  const scaling: RopeScaling = {
    type: 'llama3',
    factor: f.positiveNumber('factor'),
    lowFreqFactor: f.positiveNumber('low_freq_factor'),
    highFreqFactor: f.positiveNumber('high_freq_factor'),
    originalMaxPositionEmbeddings: f.positiveInt('original_max_position_embeddings'),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    throw new FormatError(file, `rope_scaling: high_freq_factor ${scaling.highFreqFactor} must exceed low_freq_factor ${scaling.lowFreqFactor}`);
  }
  return scaling;
}

/** Validates a parsed config.json; `file` names it in errors. */
export function parseHfConfig(file: string, json: unknown, fallbacks: HfConfigFallbacks = {}): ModelConfig {
  if (!isRecord(json)) throw new FormatError(file, 'config.json is not a JSON object');
  const f = new Fields(file, json);

  const modelType = json.model_type;
  const archList = Array.isArray(json.architectures) ? json.architectures.filter((a): a is string => typeof a === 'string') : [];
  const archFromList = archList.map((a) => ARCHITECTURES[a]).find((a) => a !== undefined);
  const arch = modelType === 'llama' || modelType === 'qwen2' ? modelType : archFromList;
  if (!arch) {
    const what = modelType !== undefined ? `model_type ${JSON.stringify(modelType)}` : `architectures ${JSON.stringify(json.architectures)}`;
    throw new FormatError(file, `${what} is not supported (only llama / LlamaForCausalLM and qwen2 / Qwen2ForCausalLM)`);
  }
  if (archList.length > 0 && archFromList !== undefined && archFromList !== arch) {
    throw new FormatError(file, `model_type ${JSON.stringify(modelType)} contradicts architectures ${JSON.stringify(archList)}`);
  }

  const hiddenAct = json.hidden_act ?? json.hidden_activation ?? 'silu';
  if (hiddenAct !== 'silu') throw new FormatError(file, `hidden_act ${JSON.stringify(hiddenAct)} is not supported (only silu / SwiGLU)`);
  if (f.bool('mlp_bias', false)) throw new FormatError(file, 'mlp_bias true is not supported');
  if (arch === 'llama' && f.bool('attention_bias', false)) {
    throw new FormatError(file, 'attention_bias true is not supported for llama (it adds an o_proj bias too)');
  }
  if (arch === 'qwen2' && f.bool('use_sliding_window', false)) {
    throw new FormatError(file, 'use_sliding_window true is not supported (the executor attends to the whole context)');
  }

  const dim = f.positiveInt('hidden_size');
  const nHeads = f.positiveInt('num_attention_heads');
  const nKvHeads = f.positiveInt('num_key_value_heads', nHeads);
  if (!f.has('head_dim') && dim % nHeads !== 0) {
    throw new FormatError(file, `hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads} and no head_dim is given`);
  }
  const headDim = f.positiveInt('head_dim', dim / nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new FormatError(file, `num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  }
  if (headDim % 2 !== 0) throw new FormatError(file, `head_dim ${headDim} must be even for RoPE`);

  const bosId = f.tokenId('bos_token_id') ?? fallbacks.bosId;
  const eosId = f.tokenId('eos_token_id') ?? fallbacks.eosId;
  if (bosId === undefined) throw new FormatError(file, 'missing required field bos_token_id (a token id), and the tokenizer names no BOS');
  if (eosId === undefined) throw new FormatError(file, 'missing required field eos_token_id (a token id), and the tokenizer names no EOS');

  const config: ModelConfig = {
    arch,
    dim,
    hiddenDim: f.positiveInt('intermediate_size'),
    nLayers: f.positiveInt('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: f.positiveInt('vocab_size'),
    maxSeqLen: f.positiveInt('max_position_embeddings'),
    normEps: f.positiveNumber('rms_norm_eps'),
    ropeTheta: f.positiveNumber('rope_theta', 10000),
    ropeStyle: 'half',
    tiedEmbeddings: f.bool('tie_word_embeddings', false), // LlamaConfig and Qwen2Config default to untied
    attentionBias: arch === 'qwen2',
    bosId,
    eosId,
  };
  const scaling = parseRopeScaling(file, json.rope_scaling);
  if (scaling) config.ropeScaling = scaling;
  return config;
}

/** ModelConfig -> config.json (LlamaForCausalLM / Qwen2ForCausalLM), the inverse of parseHfConfig. */
export function toHfConfigJson(config: ModelConfig, torchDtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): Record<string, unknown> {
  const s = config.ropeScaling;
  return {
    architectures: [config.arch === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM'],
    model_type: config.arch,
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxSeqLen,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: s
      ? { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositionEmbeddings }
      : null,
    tie_word_embeddings: config.tiedEmbeddings,
    bos_token_id: config.bosId,
    eos_token_id: config.eosId,
    hidden_act: 'silu',
    attention_dropout: 0.0,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: torchDtype,
    ...(config.arch === 'llama' ? { attention_bias: false, mlp_bias: false, pretraining_tp: 1 } : { use_sliding_window: false }),
  };
}
