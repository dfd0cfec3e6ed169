// A GGUF file (loaders/gguf-format.ts parses it) as a model: architecture "llama" (and qwen2) mapped onto
// ModelConfig and our canonical (Hugging Face) tensor names, tensors decoded one at a time. llama.cpp's
// converters permute HF q/k rows into adjacent-pair order and LLAMA uses rope type NORM (rotate pairs
// 2i, 2i+1), so a llama GGUF is ropeStyle 'interleaved' and its rows are used as stored; qwen2 uses
// NEOX rope on unpermuted rows, i.e. 'half'. Portable: bytes come through a ByteSource (loaders/gguf.ts opens files).
import type { ModelConfig, ModelSource, TensorDType, TensorRef } from '../core/model.js';
import { f16BitsToF32 } from '../core/dtype.js';
import { checkTensorCount, requiredTensorShapes } from './model-tensors.js';
import type { ByteSource } from './byte-source.js';
import { FormatError } from './errors.js';
import { tensorMapSource } from './tensor-map-source.js';
import { GgufMetadata, READABLE_GGML_TYPES, readGgufBytes, type GgufFile, type GgufTensorInfo } from './gguf-format.js';

// ------------------------------------------------------------------ names and config

/** GGUF tensor name <-> canonical (Hugging Face) name, for the LLaMA-family layout. */
const GLOBAL_NAMES: Array<[string, string]> = [
  ['token_embd.weight', 'model.embed_tokens.weight'],
  ['output_norm.weight', 'model.norm.weight'],
  ['output.weight', 'lm_head.weight'],
];
const BLOCK_NAMES: Array<[string, string]> = [
  ['attn_norm.weight', 'input_layernorm.weight'],
  ['ffn_norm.weight', 'post_attention_layernorm.weight'],
  ['attn_q.weight', 'self_attn.q_proj.weight'],
  ['attn_k.weight', 'self_attn.k_proj.weight'],
  ['attn_v.weight', 'self_attn.v_proj.weight'],
  ['attn_output.weight', 'self_attn.o_proj.weight'],
  ['attn_q.bias', 'self_attn.q_proj.bias'],
  ['attn_k.bias', 'self_attn.k_proj.bias'],
  ['attn_v.bias', 'self_attn.v_proj.bias'],
  ['ffn_gate.weight', 'mlp.gate_proj.weight'],
  ['ffn_up.weight', 'mlp.up_proj.weight'],
  ['ffn_down.weight', 'mlp.down_proj.weight'],
];
const BLOCK_TO_CANONICAL = new Map(BLOCK_NAMES);
const BLOCK_FROM_CANONICAL = new Map(BLOCK_NAMES.map(([g, h]) => [h, g]));
const GLOBAL_TO_CANONICAL = new Map(GLOBAL_NAMES);
const GLOBAL_FROM_CANONICAL = new Map(GLOBAL_NAMES.map(([g, h]) => [h, g]));

/** `blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`; undefined for names we do not map. */
export function canonicalTensorName(ggufName: string): string | undefined {
  const global = GLOBAL_TO_CANONICAL.get(ggufName);
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const suffix = m && BLOCK_TO_CANONICAL.get(m[2]!);
  return suffix ? `model.layers.${Number(m[1])}.${suffix}` : undefined;
}

/** `model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`; undefined for names GGUF has no slot for. */
export function ggufTensorName(canonical: string): string | undefined {
  const global = GLOBAL_FROM_CANONICAL.get(canonical);
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(canonical);
  const suffix = m && BLOCK_FROM_CANONICAL.get(m[2]!);
  return suffix ? `blk.${Number(m[1])}.${suffix}` : undefined;
}

/** RoPE pairing of each GGUF architecture we run (llama.cpp: LLAMA = rope type NORM, QWEN2 = NEOX). */
const ARCH_ROPE: Record<ModelConfig['arch'], ModelConfig['ropeStyle']> = { llama: 'interleaved', qwen2: 'half' };

/** `llama.*` (or `qwen2.*`) metadata -> ModelConfig; `tensors` supplies the vocab size when the vocabulary is absent. */
export function ggufModelConfig(gguf: GgufFile): ModelConfig {
  const md = new GgufMetadata(gguf.file, gguf.metadata);
  const archName = md.string('general.architecture');
  if (archName !== 'llama' && archName !== 'qwen2') {
    throw new FormatError(gguf.file, `general.architecture ${JSON.stringify(archName)} is not supported (only llama and qwen2)`);
  }
  const arch = archName as ModelConfig['arch'];
  const k = (suffix: string) => `${arch}.${suffix}`;
  const ffn = gguf.metadata.get(k('feed_forward_length'));
  if (ffn?.type === 'array') throw new FormatError(gguf.file, `${k('feed_forward_length')} varies per layer, which is not supported`);
  const scaling = md.string(k('rope.scaling.type'), 'none');
  if (scaling !== 'none') throw new FormatError(gguf.file, `${k('rope.scaling.type')} ${JSON.stringify(scaling)} is not supported (no RoPE scaling is implemented for GGUF models)`);
  if (gguf.tensors.some((t) => t.name === 'rope_freqs.weight')) {
    throw new FormatError(gguf.file, 'rope_freqs.weight (per-frequency RoPE factors, e.g. Llama 3.1 scaling) is not supported for GGUF models');
  }

  const dim = md.positiveInt(k('embedding_length'));
  const nHeads = md.positiveInt(k('attention.head_count'));
  const nKvHeads = md.positiveInt(k('attention.head_count_kv'), nHeads);
  if (!md.has(k('attention.key_length')) && dim % nHeads !== 0) {
    throw new FormatError(gguf.file, `${k('embedding_length')} ${dim} is not a multiple of ${k('attention.head_count')} ${nHeads}`);
  }
  const headDim = md.positiveInt(k('attention.key_length'), dim / nHeads);
  if (md.positiveInt(k('attention.value_length'), headDim) !== headDim) {
    throw new FormatError(gguf.file, `${k('attention.value_length')} differs from the key length ${headDim}, which is not supported`);
  }
  const ropeDims = md.positiveInt(k('rope.dimension_count'), headDim);
  if (ropeDims !== headDim) throw new FormatError(gguf.file, `${k('rope.dimension_count')} ${ropeDims} ≠ head dim ${headDim}: partial rotary embeddings are not supported`);
  if (nHeads % nKvHeads !== 0) throw new FormatError(gguf.file, `${nHeads} attention heads are not a multiple of ${nKvHeads} KV heads`);
  if (headDim % 2 !== 0) throw new FormatError(gguf.file, `head dim ${headDim} must be even for RoPE`);

  const embed = gguf.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embed) throw new FormatError(gguf.file, 'missing tensor token_embd.weight');
  const tokens = md.stringArray('tokenizer.ggml.tokens');
  const vocabSize = md.positiveInt(k('vocab_size'), tokens?.length ?? embed.ne[1] ?? 0);
  if (tokens && tokens.length > vocabSize) {
    throw new FormatError(gguf.file, `tokenizer.ggml.tokens has ${tokens.length} tokens but the model's vocabulary is ${vocabSize}`);
  }
  return {
    arch,
    dim,
    hiddenDim: md.positiveInt(k('feed_forward_length')),
    nLayers: md.positiveInt(k('block_count')),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    maxSeqLen: md.positiveInt(k('context_length')),
    normEps: md.number(k('attention.layer_norm_rms_epsilon')),
    ropeTheta: md.number(k('rope.freq_base'), 10000),
    ropeStyle: ARCH_ROPE[arch],
    tiedEmbeddings: !gguf.tensors.some((t) => t.name === 'output.weight'),
    attentionBias: arch === 'qwen2',
    bosId: md.uint('tokenizer.ggml.bos_token_id', 1),
    eosId: md.uint('tokenizer.ggml.eos_token_id', 2),
  };
}

// ------------------------------------------------------------------ tensor decoding

/** Bytes of one Q8_0 block: f16 scale + 32 int8. */
const Q8_0_BLOCK_BYTES = 34;

/** Q8_0 blocks (f16 scale d, 32 × int8 q; x = d·q) -> f32 values. */
export function dequantizeQ8_0(bytes: Uint8Array, elements: number): Float32Array {
  if (elements % 32 !== 0 || bytes.byteLength !== (elements / 32) * Q8_0_BLOCK_BYTES) {
    throw new RangeError(`Q8_0: ${bytes.byteLength} bytes do not hold ${elements} values`);
  }
  const out = new Float32Array(elements);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0, at = 0; b < elements / 32; b++, at += Q8_0_BLOCK_BYTES) {
    const d = f16BitsToF32(view.getUint16(at, true));
    for (let i = 0; i < 32; i++) out[b * 32 + i] = d * view.getInt8(at + 2 + i);
  }
  return out;
}

const DIRECT_DTYPES: Record<string, TensorDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

export interface GgufModelSource extends ModelSource {
  /** The parsed header and metadata (tokenizer, provenance). */
  readonly gguf: GgufFile;
  /** Canonical name -> the GGUF tensor it reads. */
  ggufTensor(canonical: string): GgufTensorInfo;
}

/**
 * The GGUF model in `bytes` (architecture llama or qwen2) as a ModelSource under canonical names; every
 * tensor the config implies is checked for presence, shape and a readable type up front. Closing the
 * source closes `bytes`.
 */
export function ggufSource(bytes: ByteSource, id: string): GgufModelSource {
  const file = bytes.name;
  const gguf = readGgufBytes(bytes);
  const config = ggufModelConfig(gguf);
  const byName = new Map<string, GgufTensorInfo>();
  for (const t of gguf.tensors) {
    const canonical = canonicalTensorName(t.name);
    if (canonical) byName.set(canonical, t);
  }
  checkTensorCount(file, config, byName.size);
  const problems: string[] = [];
  for (const { name, shape } of requiredTensorShapes(config)) {
    const t = byName.get(name);
    const gname = ggufTensorName(name)!;
    if (!t) {
      problems.push(`missing ${gname}`);
      continue;
    }
    const ne = [...shape].reverse();
    if (t.ne.length !== ne.length || t.ne.some((d, i) => d !== ne[i])) {
      problems.push(`${gname} has ne [${t.ne.join(', ')}], the metadata implies [${ne.join(', ')}]`);
    } else if (!(READABLE_GGML_TYPES as readonly string[]).includes(t.type.name)) {
      problems.push(`${gname} is ${t.type.name} (aser reads ${READABLE_GGML_TYPES.join(', ')}; re-export the model as F16 or Q8_0)`);
    }
  }
  if (problems.length) {
    const list = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    throw new FormatError(file, `tensors do not match the ${config.arch} metadata: ${list}`);
  }

  const refs = new Map<string, TensorRef>();
  for (const [name, t] of byName) {
    const elements = t.ne.reduce((a, b) => a * b, 1);
    const direct = DIRECT_DTYPES[t.type.name];
    const q8 = t.type.name === 'Q8_0';
    if (!direct && !q8) continue; // an optional tensor of a type we cannot decode: not offered
    const readRaw = () => bytes.read(t.offset, t.byteLength, t.name);
    refs.set(name, {
      name,
      dtype: direct ?? 'f32',
      shape: [...t.ne].reverse(),
      byteLength: direct ? t.byteLength : elements * 4,
      read: q8 ? () => new Uint8Array(dequantizeQ8_0(readRaw(), elements).buffer) : readRaw,
    });
  }
  return {
    ...tensorMapSource(file, id, config, refs, () => bytes.close()),
    gguf,
    ggufTensor(canonical) {
      const t = byName.get(canonical);
      if (!t) throw new FormatError(file, `no tensor named ${canonical}`);
      return t;
    },
  };
}
