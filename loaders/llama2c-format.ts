// llama2.c checkpoints: the legacy v0 header (7 int32) and the v1 "ak42" export (256-byte header, fp32).
// Weights are read lazily, one tensor at a time, and exposed under canonical Hugging Face names with
// ropeStyle 'interleaved' (llama2.c rotates adjacent pairs), so no q/k permutation happens here.
// Portable: reads through a ByteSource (a file in Node: loaders/llama2c.ts; fetched bytes in a page).
import type { ModelConfig, ModelSource, TensorRef } from '../core/model.js';
import type { ByteSource } from './byte-source.js';
import { tensorMapSource } from './tensor-map-source.js';
import { FormatError } from './errors.js';

const MAGIC_AK42 = 0x616b3432;
const V1_HEADER_BYTES = 256;
const V0_HEADER_BYTES = 28;

interface Llama2cHeader {
  version: 0 | 1;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  maxSeqLen: number;
  sharedClassifier: boolean;
  headerBytes: number;
}

function parseHeader(file: string, head: DataView, fileBytes: number): Llama2cHeader {
  if (fileBytes < V0_HEADER_BYTES) throw new FormatError(file, `file is ${fileBytes} bytes, too short for a llama2.c header`);
  const magic = head.getUint32(0, true);
  let h: Llama2cHeader;
  if (magic === MAGIC_AK42) {
    if (fileBytes < V1_HEADER_BYTES) throw new FormatError(file, 'truncated v1 header');
    const version = head.getInt32(4, true);
    if (version !== 1) {
      throw new FormatError(file, `llama2.c export version ${version} is not supported (only fp32 version 1 and legacy v0)`);
    }
    const i = (k: number) => head.getInt32(8 + 4 * k, true);
    h = {
      version: 1, dim: i(0), hiddenDim: i(1), nLayers: i(2), nHeads: i(3), nKvHeads: i(4), vocabSize: i(5), maxSeqLen: i(6),
      sharedClassifier: head.getUint8(36) !== 0, headerBytes: V1_HEADER_BYTES,
    };
  } else {
    const i = (k: number) => head.getInt32(4 * k, true);
    const vocab = i(5);
    // v0 signals an unshared classifier with a negative vocab size.
    h = {
      version: 0, dim: i(0), hiddenDim: i(1), nLayers: i(2), nHeads: i(3), nKvHeads: i(4), vocabSize: Math.abs(vocab), maxSeqLen: i(6),
      sharedClassifier: vocab > 0, headerBytes: V0_HEADER_BYTES,
    };
  }
  const fields: Array<[string, number, number]> = [
    ['dim', h.dim, 1 << 16], ['hidden_dim', h.hiddenDim, 1 << 18], ['n_layers', h.nLayers, 1024], ['n_heads', h.nHeads, 1024],
    ['n_kv_heads', h.nKvHeads, 1024], ['vocab_size', h.vocabSize, 1 << 22], ['max_seq_len', h.maxSeqLen, 1 << 22],
  ];
  for (const [name, value, max] of fields) {
    if (!Number.isInteger(value) || value <= 0 || value > max) {
      throw new FormatError(file, `not a llama2.c checkpoint: header field ${name} = ${value} (wrong magic or corrupt header)`);
    }
  }
  if (h.dim % h.nHeads !== 0 || h.nHeads % h.nKvHeads !== 0 || (h.dim / h.nHeads) % 2 !== 0) {
    throw new FormatError(file, `inconsistent header: dim ${h.dim}, n_heads ${h.nHeads}, n_kv_heads ${h.nKvHeads}`);
  }
  return h;
}

/** The tensors of a checkpoint in file order: [canonical name, shape] (null name = skipped, e.g. RoPE tables). */
function tensorLayout(h: Llama2cHeader): Array<[string | null, number[]]> {
  const headDim = h.dim / h.nHeads;
  const kvDim = headDim * h.nKvHeads;
  const L = h.nLayers;
  const perLayer = (suffix: string, shape: number[]) =>
    Array.from({ length: L }, (_, l) => [`model.layers.${l}.${suffix}`, shape] as [string, number[]]);
  const blockLinears: Array<[string, number[]]> = [
    ['self_attn.q_proj.weight', [h.dim, h.dim]],
    ['self_attn.k_proj.weight', [kvDim, h.dim]],
    ['self_attn.v_proj.weight', [kvDim, h.dim]],
    ['self_attn.o_proj.weight', [h.dim, h.dim]],
  ];
  const mlp: Array<[string, number[]]> = [
    ['mlp.gate_proj.weight', [h.hiddenDim, h.dim]],
    ['mlp.down_proj.weight', [h.dim, h.hiddenDim]],
    ['mlp.up_proj.weight', [h.hiddenDim, h.dim]],
  ];
  const classifier: Array<[string | null, number[]]> = h.sharedClassifier ? [] : [['lm_head.weight', [h.vocabSize, h.dim]]];
  if (h.version === 1) {
    return [
      ...perLayer('input_layernorm.weight', [h.dim]),
      ...perLayer('post_attention_layernorm.weight', [h.dim]),
      ['model.norm.weight', [h.dim]],
      ['model.embed_tokens.weight', [h.vocabSize, h.dim]],
      ...blockLinears.flatMap(([s, shape]) => perLayer(s, shape)),
      ...mlp.flatMap(([s, shape]) => perLayer(s, shape)),
      ...classifier,
    ];
  }
  return [
    ['model.embed_tokens.weight', [h.vocabSize, h.dim]],
    ...perLayer('input_layernorm.weight', [h.dim]),
    ...blockLinears.flatMap(([s, shape]) => perLayer(s, shape)),
    ...perLayer('post_attention_layernorm.weight', [h.dim]),
    ...mlp.flatMap(([s, shape]) => perLayer(s, shape)),
    ['model.norm.weight', [h.dim]],
    [null, [h.maxSeqLen, headDim / 2]], // freq_cis_real (unused: RoPE is computed)
    [null, [h.maxSeqLen, headDim / 2]], // freq_cis_imag
    ...classifier,
  ];
}

/** The checkpoint in `bytes` as a ModelSource; closing it closes `bytes`. */
export function llama2cSource(bytes: ByteSource, id = bytes.name): ModelSource {
  const file = bytes.name;
  const fileBytes = bytes.size;
  const headBytes = bytes.read(0, Math.min(V1_HEADER_BYTES, fileBytes), 'header');
  const h = parseHeader(file, new DataView(headBytes.buffer), fileBytes);

  const tensors = new Map<string, TensorRef>();
  let offset = h.headerBytes;
  for (const [name, shape] of tensorLayout(h)) {
    const byteLength = shape.reduce((a, b) => a * b, 1) * 4;
    const at = offset;
    offset += byteLength;
    if (!name) continue;
    tensors.set(name, { name, dtype: 'f32', shape, byteLength, read: () => bytes.read(at, byteLength, name) });
  }
  if (offset > fileBytes) {
    throw new FormatError(file, `truncated checkpoint: header promises ${offset} bytes of weights, file has ${fileBytes}`);
  }
  // Exports write exactly what the header describes; extra bytes mean the header is not this file's.
  if (offset < fileBytes) {
    throw new FormatError(file, `${fileBytes - offset} bytes after the last tensor: the header (dim ${h.dim}, ${h.nLayers} layers, vocab ${h.vocabSize}) does not describe this ${fileBytes}-byte file`);
  }
  const config: ModelConfig = {
    arch: 'llama', dim: h.dim, hiddenDim: h.hiddenDim, nLayers: h.nLayers, nHeads: h.nHeads, nKvHeads: h.nKvHeads,
    headDim: h.dim / h.nHeads, vocabSize: h.vocabSize, maxSeqLen: h.maxSeqLen, normEps: 1e-5, ropeTheta: 10000,
    ropeStyle: 'interleaved', tiedEmbeddings: h.sharedClassifier, attentionBias: false, bosId: 1, eosId: 2,
  };
  return tensorMapSource(file, id, config, tensors, () => bytes.close());
}

/** Decodes a little-endian f32 tensor (the only dtype llama2.c v0/v1 checkpoints hold). */
export function tensorF32(t: TensorRef): Float32Array {
  const bytes = t.read();
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
