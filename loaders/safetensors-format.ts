// safetensors: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the tensor bytes. The header is checked against the file before anything is trusted (offsets in
// bounds, no overlaps or holes, sizes that match dtype x shape); tensors are read lazily through a
// ByteSource. Portable: files are opened by loaders/safetensors.ts (with shards and the writer).
import type { TensorDType, TensorRef } from '../core/model.js';
import type { ByteSource } from './byte-source.js';
import { FormatError, LoadError } from './errors.js';
import { isRecord } from './json-record.js';

/** Every dtype the safetensors format defines, with its width in bytes. */
export const SAFETENSORS_DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
} as const;
export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** The dtypes weights may have (what TensorRef carries); the default for readers. */
export const WEIGHT_DTYPES: readonly SafetensorsDType[] = ['F32', 'F16', 'BF16'];

const TO_TENSOR_DTYPE: Partial<Record<SafetensorsDType, TensorDType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
export const FROM_TENSOR_DTYPE: Record<TensorDType, SafetensorsDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** A header larger than this is not a real checkpoint (the largest real ones are a few MB). */
export const MAX_HEADER_BYTES = 100 << 20;

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte offsets in the file: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsOpenOptions {
  /** dtypes accepted (default F32, F16, BF16); any other is a FormatError naming the tensor. */
  dtypes?: readonly SafetensorsDType[];
}

export function isDtype(x: unknown): x is SafetensorsDType {
  return typeof x === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_BYTES, x);
}

/** Parses and validates a header against the size of the data section that follows it. */
export function parseSafetensorsHeader(
  file: string,
  headerBytes: Uint8Array,
  dataStart: number,
  dataBytes: number,
  options: SafetensorsOpenOptions = {},
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new FormatError(file, 'safetensors header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new FormatError(file, `safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(header)) throw new FormatError(file, 'safetensors header is not a JSON object');

  const metadata: Record<string, string> = {};
  const rawMeta = header.__metadata__;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isRecord(rawMeta)) throw new FormatError(file, '__metadata__ is not an object of strings');
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw new FormatError(file, `__metadata__.${k} is not a string`);
      metadata[k] = v;
    }
  }

  const allowed = new Set(options.dtypes ?? WEIGHT_DTYPES);
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isRecord(raw)) throw new FormatError(file, `tensor ${name}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isDtype(dtype)) throw new FormatError(file, `tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!allowed.has(dtype)) {
      throw new FormatError(file, `tensor ${name} has dtype ${dtype}; only ${[...allowed].join(', ')} can be loaded here`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(file, `tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new FormatError(file, `tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw new FormatError(file, `tensor ${name}: ${dtype} ${JSON.stringify(shape)} needs ${expected} bytes, data_offsets span ${end - begin}`);
    }
    if (end > dataBytes) {
      throw new FormatError(file, `truncated: tensor ${name} ends at data byte ${end}, the file holds ${dataBytes} bytes of data`);
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], begin: dataStart + begin, end: dataStart + end });
  }

  // The data section must be tiled exactly: sorted by offset, each tensor starts where the last ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  let prev = '(header)';
  for (const e of sorted) {
    if (e.begin < at) throw new FormatError(file, `tensor ${e.name} overlaps ${prev} (data offsets ${e.begin - dataStart} < ${at - dataStart})`);
    if (e.begin > at) throw new FormatError(file, `hole of ${e.begin - at} bytes before tensor ${e.name} (data offset ${at - dataStart})`);
    at = e.end;
    prev = e.name;
  }
  if (at !== dataStart + dataBytes) {
    throw new FormatError(file, `${dataStart + dataBytes - at} bytes after the last tensor are not described by the header`);
  }
  return { entries, metadata };
}

/** A set of named tensors read lazily: one safetensors file, or the shards of one checkpoint. */
export interface SafetensorsSet {
  readonly metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  entry(name: string): SafetensorsEntry & { file: string };
  /** The raw little-endian bytes of any dtype. */
  read(name: string): Uint8Array;
  /** A TensorRef for a weight (F32/F16/BF16); other dtypes are a FormatError. */
  tensor(name: string): TensorRef;
  close(): void;
}

export class SafetensorsFile implements SafetensorsSet {
  private readonly byName: Map<string, SafetensorsEntry>;
  private closed = false;

  readonly file: string;

  private constructor(
    private readonly bytes: ByteSource,
    entries: SafetensorsEntry[],
    readonly metadata: Record<string, string>,
  ) {
    this.file = bytes.name;
    this.byName = new Map(entries.map((e) => [e.name, e]));
  }

  /** Parses and checks the header of `bytes`; the tensors are read on demand, and close() closes `bytes`. */
  static fromBytes(bytes: ByteSource, options: SafetensorsOpenOptions = {}): SafetensorsFile {
    const file = bytes.name;
    const size = bytes.size;
    if (size < 8) throw new FormatError(file, `file is ${size} bytes, too short for a safetensors header`);
    const lenBytes = bytes.read(0, 8, 'header length');
    const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
    if (headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw new FormatError(file, `safetensors header length ${headerLen} exceeds the ${MAX_HEADER_BYTES >> 20} MiB limit (not a safetensors file?)`);
    }
    const n = Number(headerLen);
    if (8 + n > size) throw new FormatError(file, `truncated: header length ${n} runs past the end of the ${size}-byte file`);
    const { entries, metadata } = parseSafetensorsHeader(file, bytes.read(8, n, 'header'), 8 + n, size - 8 - n, options);
    return new SafetensorsFile(bytes, entries, metadata);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): SafetensorsEntry & { file: string } {
    const e = this.byName.get(name);
    if (!e) throw new FormatError(this.file, `no tensor named ${name}`);
    return { ...e, file: this.file };
  }

  read(name: string): Uint8Array {
    const e = this.entry(name);
    if (this.closed) throw new LoadError(this.file, `read of ${name} after close()`);
    return this.bytes.read(e.begin, e.end - e.begin, name);
  }

  tensor(name: string): TensorRef {
    const e = this.entry(name);
    const dtype = TO_TENSOR_DTYPE[e.dtype];
    if (!dtype) throw new FormatError(this.file, `tensor ${name} has dtype ${e.dtype}, not a weight dtype (F32, F16, BF16)`);
    const byteLength = e.end - e.begin;
    return {
      name, dtype, shape: [...e.shape], byteLength,
      read: () => this.read(name),
      readRange: (offset, length) => {
        if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= byteLength)) {
          throw new LoadError(this.file, `${name}: byte range [${offset}, ${offset + length}) is outside the tensor's ${byteLength} bytes`);
        }
        if (this.closed) throw new LoadError(this.file, `read of ${name} after close()`);
        return this.bytes.read(e.begin + offset, length, name);
      },
    };
  }

  close(): void {
    if (!this.closed) this.bytes.close();
    this.closed = true;
  }
}

