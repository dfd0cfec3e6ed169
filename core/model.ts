// The in-memory model contract between loaders/ (which read files) and the executor (which runs them).
// Portable: plain data and byte arrays, no Node APIs.

import type { GgmlBlockFormat } from './ggml-blocks.js';

/** How RoPE pairs the dimensions of a head. */
export type RopeStyle =
  /** llama2.c / Meta checkpoints: rotate adjacent pairs (2i, 2i+1). */
  | 'interleaved'
  /** Hugging Face checkpoints (q/k rows permuted at conversion): rotate (i, i + headDim/2). */
  | 'half';

export interface RopeScaling {
  /** Only "llama3" changes frequencies today; others are rejected by the config loader. */
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
  arch: 'llama' | 'qwen2';
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Longest context the model was trained for; the executor's KV cache never exceeds it. */
  maxSeqLen: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  ropeStyle: RopeStyle;
  tiedEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen). */
  attentionBias: boolean;
  bosId: number;
  eosId: number;
}

export type TensorDType = 'f32' | 'f16' | 'bf16';

/** One weight tensor, read on demand so no loader holds a whole model in JS memory. */
export interface TensorRef {
  name: string;
  dtype: TensorDType;
  /** Row-major; linear weights are [out, in] as in PyTorch. */
  shape: number[];
  byteLength: number;
  /** Reads exactly this tensor's bytes (little-endian) into a fresh array. */
  read(): Uint8Array;
  /**
   * Reads bytes [byteOffset, byteOffset + byteLength) of the tensor only (file-backed sources), so a
   * loader can stream a large tensor row block by row block; absent = only whole reads.
   */
  readRange?(byteOffset: number, byteLength: number): Uint8Array;
  /**
   * Set when the tensor is stored block-quantized (GGUF Q8_0/Q4_0/Q4_K/Q6_K): `dtype` is then 'f32',
   * what read()/readRange() give after dequantizing on the host, and this reads the raw blocks of whole
   * rows instead, so a GPU loader can upload them as stored and dequantize there.
   */
  blocks?: GgmlBlockRows;
}

/** Raw block-quantized rows of a 2-D tensor (a 1-D one is one row). */
export interface GgmlBlockRows {
  format: GgmlBlockFormat;
  /** Bytes of one row: cols / blockSize blocks. */
  rowBytes: number;
  /** The raw blocks of rows [rowStart, rowStart + rowCount). */
  readRows(rowStart: number, rowCount: number): Uint8Array;
}

/**
 * Canonical (Hugging Face) tensor names, whatever the source format:
 *   model.embed_tokens.weight, model.norm.weight, lm_head.weight (absent when tied),
 *   model.layers.{i}.input_layernorm.weight, model.layers.{i}.post_attention_layernorm.weight,
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight (+ {q,k,v}_proj.bias when attentionBias),
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight
 * q/k rows are in the order `config.ropeStyle` expects.
 */
export interface ModelSource {
  /** Short identity for logs, caches and artifacts (e.g. "stories260k" or a directory name). */
  id: string;
  config: ModelConfig;
  tensor(name: string): TensorRef;
  has(name: string): boolean;
  names(): string[];
  /** Releases file handles. */
  close(): void;
}

/** Text <-> token ids. */
export interface TextTokenizer {
  vocabSize: number;
  bosId: number;
  eosId: number;
  encode(text: string, options?: { bos?: boolean }): number[];
  decode(ids: number[]): string;
}

export function layerTensorName(layer: number, suffix: string): string {
  return `model.layers.${layer}.${suffix}`;
}

/** The block linears in execution order; `input` names the activation they read (shared by q/k/v and by gate/up). */
export const BLOCK_LINEARS = [
  { name: 'self_attn.q_proj', input: 'attn_in' },
  { name: 'self_attn.k_proj', input: 'attn_in' },
  { name: 'self_attn.v_proj', input: 'attn_in' },
  { name: 'self_attn.o_proj', input: 'attn_out' },
  { name: 'mlp.gate_proj', input: 'mlp_in' },
  { name: 'mlp.up_proj', input: 'mlp_in' },
  { name: 'mlp.down_proj', input: 'mlp_act' },
] as const;
export type BlockLinearName = (typeof BLOCK_LINEARS)[number]['name'];
export type LinearInputKind = (typeof BLOCK_LINEARS)[number]['input'];

/**
 * "model.layers.3.self_attn.k_proj" → "3:attn_in": the block linears with equal keys read the same
 * input (q|k|v, gate|up). undefined for a name that is not a block linear.
 */
export function sharedInputKey(moduleName: string): string | undefined {
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(moduleName);
  const linear = m && BLOCK_LINEARS.find((l) => l.name === m[2]);
  return linear ? `${Number(m[1])}:${linear.input}` : undefined;
}
