// GGUF v3 writer and the `aser export --format gguf` path: a ModelSource + a SentencePiece vocabulary
// -> a llama GGUF that llama.cpp loads. The header (metadata + tensor infos) is built in memory, then
// tensors are streamed one at a time (read, convert, write), all into a temporary file renamed into
// place (loaders/atomic.ts). HF-style q/k rows ('half' RoPE) are permuted back to the adjacent-pair
// order llama.cpp's LLAMA rope (type NORM) expects, as llama.cpp's convert_hf_to_gguf.py does.
import type { ModelConfig, ModelSource, TensorRef } from '../core/model.js';
import { bytesToF32, f32ToF16Array, f32ToF16Bits } from '../core/dtype.js';
import { writeAll, writeFileAtomic } from './atomic.js';
import { GgufWriteError } from './errors.js';
import { GGUF_TOKEN_TYPE, type GgufVocab } from './gguf-vocab.js';
import { requiredTensorShapes } from './hf-model.js';
import {
  GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_BYTES, GGUF_VALUE_TYPES, type GgmlTypeInfo,
  type GgufScalarType, type GgufValue,
} from './gguf-file.js';
import { ggufTensorName } from './gguf.js';

export interface GgufWriteTensor {
  name: string;
  /** ggml type name: 'F32', 'F16', 'BF16', 'Q8_0', … (the bytes must already be in that type). */
  type: string;
  /** ggml order, fastest first (a [out, in] matrix is [in, out]). */
  ne: number[];
  /** Produces exactly the tensor's bytes; called once, while writing. */
  data: () => Uint8Array;
}

/** Little-endian byte builder for the header. */
class ByteBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly utf8 = new TextEncoder();

  private reserve(n: number): number {
    if (this.length + n > this.buf.byteLength) {
      const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // reserve() may replace this.view, so it runs before the view is read.
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.byteLength);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = this.utf8.encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  scalar(type: GgufScalarType, v: number | bigint | boolean | string): void {
    if (type === 'string') return this.string(v as string);
    const at = this.reserve(GGUF_VALUE_BYTES[type]);
    const d = this.view;
    switch (type) {
      case 'u8': return d.setUint8(at, v as number);
      case 'i8': return d.setInt8(at, v as number);
      case 'u16': return d.setUint16(at, v as number, true);
      case 'i16': return d.setInt16(at, v as number, true);
      case 'u32': return d.setUint32(at, v as number, true);
      case 'i32': return d.setInt32(at, v as number, true);
      case 'f32': return d.setFloat32(at, v as number, true);
      case 'f64': return d.setFloat64(at, v as number, true);
      case 'u64': return d.setBigUint64(at, BigInt(v as bigint), true);
      case 'i64': return d.setBigInt64(at, BigInt(v as bigint), true);
      case 'bool': return d.setUint8(at, v ? 1 : 0);
    }
  }
  value(v: GgufValue): void {
    this.u32(GGUF_VALUE_TYPES.indexOf(v.type));
    if (v.type !== 'array') return this.scalar(v.type, v.value);
    this.u32(GGUF_VALUE_TYPES.indexOf(v.itemType));
    this.u64(v.value.length);
    for (let i = 0; i < v.value.length; i++) this.scalar(v.itemType, v.value[i]!);
  }
  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const typeByName = new Map<string, GgmlTypeInfo>([...GGML_TYPES.values()].map((t) => [t.name, t]));
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export interface GgufWriteOptions {
  /** Data alignment (default 32); written as general.alignment when not the default. */
  alignment?: number;
}

/** Writes a GGUF v3 file atomically: `metadata` in order, then the tensors in order. Returns the file size. */
export function writeGguf(path: string, metadata: Array<[string, GgufValue]>, tensors: GgufWriteTensor[], options: GgufWriteOptions = {}): number {
  const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) throw new GgufWriteError(path, `alignment ${alignment} is not a power of two`);
  const kv = metadata.filter(([k]) => k !== 'general.alignment');
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) kv.push(['general.alignment', { type: 'u32', value: alignment }]);
  const keys = new Set<string>();
  for (const [k] of kv) {
    if (keys.has(k)) throw new GgufWriteError(path, `duplicate metadata key ${k}`);
    keys.add(k);
  }

  const h = new ByteBuilder();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(tensors.length);
  h.u64(kv.length);
  for (const [key, value] of kv) {
    h.string(key);
    h.value(value);
  }
  const layout = tensors.map((t) => {
    const type = typeByName.get(t.type);
    if (!type) throw new GgufWriteError(path, `tensor ${t.name}: unknown ggml type ${t.type}`);
    if (t.ne.length < 1 || t.ne.length > 4 || t.ne.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new GgufWriteError(path, `tensor ${t.name}: bad dimensions [${t.ne.join(', ')}]`);
    }
    if (t.ne[0]! % type.blockSize !== 0) throw new GgufWriteError(path, `tensor ${t.name}: row length ${t.ne[0]} is not a multiple of the ${t.type} block size`);
    const elements = t.ne.reduce((a, b) => a * b, 1);
    return { t, type, byteLength: (elements / type.blockSize) * type.typeSize, offset: 0 };
  });
  let offset = 0;
  for (const l of layout) {
    l.offset = offset;
    offset = alignUp(offset + l.byteLength, alignment);
  }
  for (const { t, type, offset: at } of layout) {
    h.string(t.name);
    h.u32(t.ne.length);
    for (const d of t.ne) h.u64(d);
    h.u32(type.id);
    h.u64(at);
  }
  const header = h.finish();
  const dataStart = alignUp(header.byteLength, alignment);

  writeFileAtomic(path, (fd) => {
    writeAll(fd, header);
    writeAll(fd, new Uint8Array(dataStart - header.byteLength));
    let written = 0;
    for (const { t, byteLength, offset: at } of layout) {
      if (written < at) writeAll(fd, new Uint8Array(at - written));
      const bytes = t.data();
      if (bytes.byteLength !== byteLength) {
        throw new GgufWriteError(path, `tensor ${t.name}: got ${bytes.byteLength} bytes, ${t.type} [${t.ne.join(', ')}] needs ${byteLength}`);
      }
      writeAll(fd, bytes);
      written = at + byteLength;
    }
  });
  return dataStart + (layout.length ? layout[layout.length - 1]!.offset + layout[layout.length - 1]!.byteLength : 0);
}

/**
 * f32 -> Q8_0 blocks as ggml's reference quantizer does: d = max|x| / 127 stored as f16,
 * q = round(x / d) (half away from zero). `values.length` must be a multiple of 32.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new RangeError(`Q8_0 needs a multiple of 32 values, got ${values.length}`);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[b * 32 + i]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let i = 0; i < 32; i++) {
      const x = Math.fround(values[b * 32 + i]! * id);
      view.setInt8(b * 34 + 2 + i, Math.sign(x) * Math.round(Math.abs(x)));
    }
  }
  return out;
}

// ------------------------------------------------------------------ model export

/** llama.cpp token types (llama_token_type / gguf-py TokenType). */
export { GGUF_TOKEN_TYPE, type GgufVocab } from './gguf-vocab.js';

export type GgufExportDType = 'f32' | 'f16';

export interface GgufExportOptions {
  dtype?: GgufExportDType;
  /** general.name (default: the source id). */
  name?: string;
}

export interface GgufExportResult {
  path: string;
  bytes: number;
  tensorCount: number;
  dtype: GgufExportDType;
  config: ModelConfig;
}

/**
 * Rows of a [nHeads*headDim, cols] q/k projection from rotate-half to adjacent-pair order, per head:
 * row h*headDim + 2j + p takes HF row h*headDim + p*(headDim/2) + j (llama.cpp convert_hf_to_gguf.py
 * `permute`, the inverse of HF's). `elemBytes` is the dtype width.
 */
export function halfToInterleavedRows(data: Uint8Array, rows: number, cols: number, nHeads: number, elemBytes: number): Uint8Array {
  if (rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) throw new RangeError(`cannot split ${rows} rows into ${nHeads} heads of even size`);
  const rowBytes = cols * elemBytes;
  if (data.byteLength !== rows * rowBytes) throw new RangeError(`expected ${rows * rowBytes} bytes for [${rows}, ${cols}], got ${data.byteLength}`);
  const headDim = rows / nHeads;
  const half = headDim / 2;
  const out = new Uint8Array(data.byteLength);
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      for (let p = 0; p < 2; p++) {
        const dst = h * headDim + 2 * j + p;
        const src = h * headDim + p * half + j;
        out.set(data.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      }
    }
  }
  return out;
}

/** The tensor bytes in `type` (F32 or F16), widening/narrowing as needed. */
function tensorBytesAs(t: TensorRef, type: 'F32' | 'F16'): Uint8Array {
  const want = type === 'F32' ? 'f32' : 'f16';
  const raw = t.read();
  if (t.dtype === want) return raw;
  const f32 = bytesToF32(raw, t.dtype);
  return type === 'F32' ? new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength) : new Uint8Array(f32ToF16Array(f32).buffer);
}

/** The llama.* / general.* / tokenizer.ggml.* metadata of a llama GGUF. */
export function llamaGgufMetadata(config: ModelConfig, vocab: GgufVocab, opts: { name: string; dtype: GgufExportDType }): Array<[string, GgufValue]> {
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const f32 = (value: number): GgufValue => ({ type: 'f32', value });
  const md: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: opts.name }],
    // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1
    ['general.file_type', u32(opts.dtype === 'f32' ? 0 : 1)],
    ['llama.context_length', u32(config.maxSeqLen)],
    ['llama.embedding_length', u32(config.dim)],
    ['llama.block_count', u32(config.nLayers)],
    ['llama.feed_forward_length', u32(config.hiddenDim)],
    ['llama.rope.dimension_count', u32(config.headDim)],
    ['llama.attention.head_count', u32(config.nHeads)],
    ['llama.attention.head_count_kv', u32(config.nKvHeads)],
    ['llama.attention.layer_norm_rms_epsilon', f32(config.normEps)],
    ['llama.rope.freq_base', f32(config.ropeTheta)],
    ['llama.vocab_size', u32(config.vocabSize)],
  ];
  if (config.headDim * config.nHeads !== config.dim) {
    md.push(['llama.attention.key_length', u32(config.headDim)], ['llama.attention.value_length', u32(config.headDim)]);
  }
  md.push(
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.tokenTypes }],
    ['tokenizer.ggml.bos_token_id', u32(vocab.bosId)],
    ['tokenizer.ggml.eos_token_id', u32(vocab.eosId)],
    ['tokenizer.ggml.unknown_token_id', u32(vocab.unkId)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: vocab.addBos }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  );
  return md;
}

/**
 * Writes `source` (a llama model) as a llama GGUF v3 with `vocab` embedded. Matrices and the embedding
 * are stored in `dtype`; norm weights stay F32 (as llama.cpp's converter keeps 1-D tensors).
 */
export function exportGguf(source: ModelSource, vocab: GgufVocab, path: string, options: GgufExportOptions = {}): GgufExportResult {
  const c = source.config;
  const dtype = options.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new GgufWriteError(path, `dtype ${String(dtype)} is not f32 or f16`);
  if (c.arch !== 'llama') throw new GgufWriteError(path, `${source.id} is a ${c.arch} model; GGUF export supports llama only`);
  if (c.ropeScaling) throw new GgufWriteError(path, `${source.id} uses ${c.ropeScaling.type} RoPE scaling, which the GGUF export does not write (rope_freqs.weight)`);
  if (vocab.tokens.length > c.vocabSize || vocab.scores.length !== vocab.tokens.length || vocab.tokenTypes.length !== vocab.tokens.length) {
    throw new GgufWriteError(path, `vocabulary of ${vocab.tokens.length} tokens (${vocab.scores.length} scores, ${vocab.tokenTypes.length} types) does not fit the model's ${c.vocabSize}`);
  }
  // llama.cpp needs one token per embedding row: pad as its converter does ([PADi], unused, score -1000).
  const pad = c.vocabSize - vocab.tokens.length;
  const fullVocab: GgufVocab = pad === 0 ? vocab : {
    ...vocab,
    tokens: [...vocab.tokens, ...Array.from({ length: pad }, (_, i) => `[PAD${i + 1}]`)],
    scores: Float32Array.from([...vocab.scores, ...new Array<number>(pad).fill(-1000)]),
    tokenTypes: Int32Array.from([...vocab.tokenTypes, ...new Array<number>(pad).fill(GGUF_TOKEN_TYPE.unused)]),
  };
  const tensors: GgufWriteTensor[] = requiredTensorShapes(c).map(({ name, shape }) => {
    const t = source.tensor(name);
    const gname = ggufTensorName(name);
    if (!gname) throw new GgufWriteError(path, `tensor ${name} has no GGUF name`);
    const type = shape.length === 1 ? 'F32' : dtype === 'f32' ? 'F32' : 'F16';
    const heads = name.endsWith('q_proj.weight') ? c.nHeads : name.endsWith('k_proj.weight') ? c.nKvHeads : 0;
    const permute = c.ropeStyle === 'half' && heads > 0;
    return {
      name: gname,
      type,
      ne: [...shape].reverse(),
      data: () => {
        const bytes = tensorBytesAs(t, type);
        return permute ? halfToInterleavedRows(bytes, shape[0]!, shape[1]!, heads, type === 'F32' ? 4 : 2) : bytes;
      },
    };
  });
  const metadata = llamaGgufMetadata(c, fullVocab, { name: options.name ?? source.id, dtype });
  const bytes = writeGguf(path, metadata, tensors);
  return { path, bytes, tensorCount: tensors.length, dtype, config: { ...c, ropeStyle: 'interleaved' } };
}
