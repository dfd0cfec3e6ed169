// GGUF (llama.cpp's single-file model format), versions 2 and 3, as a file: header, typed metadata,
// tensor infos, then tensor data at an aligned offset. Parsed through a bounded, buffered cursor: every
// length and count is checked against the bytes left in the file before anything is allocated, so a
// hostile or truncated file ends in a FormatError, never an unbounded allocation. Tensor data is read
// lazily (loaders/gguf.ts), one tensor at a time. Layout (little-endian):
//
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count ×  { string key | u32 value_type | value }          string = u64 byte length + UTF-8
//   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to here, aligned)
//
// ne[0] is the fastest-moving dimension (a [out, in] matrix is listed as ne = [in, out]).
import type { ByteSource } from './byte-source.js';
import { FormatError } from './errors.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

// ------------------------------------------------------------------ metadata values

/** GGUF metadata value types, by their on-disk id. */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
export type GgufScalarType = Exclude<GgufValueType, 'array'>;
export type GgufNumberType = Exclude<GgufScalarType, 'bool' | 'string' | 'u64' | 'i64'>;

/**
 * One metadata value with its declared type (kept so a file can be re-written as it was).
 * u64/i64 are bigints (exact); numeric arrays of up-to-32-bit types are typed arrays.
 */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: 'u64' | 'i64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType; value: GgufArrayItems };

export type GgufArrayItems =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | boolean[] | string[];

/** Bytes per item of the fixed-size value types. */
export const GGUF_VALUE_BYTES: Record<Exclude<GgufScalarType, 'string'>, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8,
};

// ------------------------------------------------------------------ tensor types

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Elements per block (1 for plain floats and ints). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** ggml tensor types by id (ggml.h); sizes let us lay out files holding types we cannot decode. */
const GGML_TYPE_LIST: Array<[number, string, number, number]> = [
  [0, 'F32', 1, 4], [1, 'F16', 1, 2], [2, 'Q4_0', 32, 18], [3, 'Q4_1', 32, 20], [6, 'Q5_0', 32, 22], [7, 'Q5_1', 32, 24],
  [8, 'Q8_0', 32, 34], [9, 'Q8_1', 32, 36], [10, 'Q2_K', 256, 84], [11, 'Q3_K', 256, 110], [12, 'Q4_K', 256, 144],
  [13, 'Q5_K', 256, 176], [14, 'Q6_K', 256, 210], [15, 'Q8_K', 256, 292], [16, 'IQ2_XXS', 256, 66], [17, 'IQ2_XS', 256, 74],
  [18, 'IQ3_XXS', 256, 98], [19, 'IQ1_S', 256, 50], [20, 'IQ4_NL', 32, 18], [21, 'IQ3_S', 256, 110], [22, 'IQ2_S', 256, 82],
  [23, 'IQ4_XS', 256, 136], [24, 'I8', 1, 1], [25, 'I16', 1, 2], [26, 'I32', 1, 4], [27, 'I64', 1, 8], [28, 'F64', 1, 8],
  [29, 'IQ1_M', 256, 56], [30, 'BF16', 1, 2], [34, 'TQ1_0', 256, 54], [35, 'TQ2_0', 256, 66], [39, 'MXFP4', 32, 17],
];
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  GGML_TYPE_LIST.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);
export const GGML_TYPE_ID = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
/** The tensor types aser decodes (Q8_0 is dequantized to f32 on read). */
export const READABLE_GGML_TYPES = ['F32', 'F16', 'BF16', 'Q8_0'] as const;

const GGML_MAX_DIMS = 4;

// ------------------------------------------------------------------ parsed file

export interface GgufTensorInfo {
  name: string;
  /** ggml order, fastest first: ne[0] = columns (`in` of a matrix). */
  ne: number[];
  type: GgmlTypeInfo;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  file: string;
  version: number;
  alignment: number;
  /** Absolute offset where tensor data starts. */
  dataOffset: number;
  fileBytes: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
}

/** Reads the file front to back in chunks; every read is bounds-checked against the file size first. */
class Cursor {
  private static readonly CHUNK = 1 << 20;
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer, 0, 0);
  private bufStart = 0;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly source: ByteSource,
    readonly file: string,
    readonly fileBytes: number,
  ) {}

  get remaining(): number {
    return this.fileBytes - this.pos;
  }

  /** Makes bytes [pos, pos+n) available at this.buf[pos - bufStart]. */
  private need(n: number, what: string): number {
    if (n > this.remaining) {
      throw new FormatError(this.file, `truncated ${what}: needs ${n} bytes at offset ${this.pos}, the file ends at ${this.fileBytes}`);
    }
    const at = this.pos - this.bufStart;
    if (at >= 0 && at + n <= this.buf.byteLength) return at;
    const length = Math.min(Math.max(n, Cursor.CHUNK), this.remaining);
    this.buf = this.source.read(this.pos, length, what);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  u32(what: string): number {
    const at = this.need(4, what);
    this.pos += 4;
    return this.view.getUint32(at, true);
  }

  /** A u64 that must fit a JS number (counts, lengths, dims, offsets). */
  u64(what: string): number {
    const at = this.need(8, what);
    this.pos += 8;
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(this.file, `${what} = ${v} at offset ${this.pos - 8} is not a plausible size`);
    return Number(v);
  }

  bytes(n: number, what: string): Uint8Array {
    const at = this.need(n, what);
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  string(what: string): string {
    const length = this.u64(`${what} length`);
    const bytes = this.bytes(length, what);
    try {
      return this.utf8.decode(bytes);
    } catch {
      throw new FormatError(this.file, `${what} at offset ${this.pos - length} is not valid UTF-8`);
    }
  }

  valueType(what: string): GgufValueType {
    const id = this.u32(`${what} type`);
    const type = GGUF_VALUE_TYPES[id];
    if (type === undefined) throw new FormatError(this.file, `${what} has unknown value type ${id} (offset ${this.pos - 4})`);
    return type;
  }

  scalar(type: GgufScalarType, what: string): GgufValue {
    if (type === 'string') return { type, value: this.string(what) };
    const size = GGUF_VALUE_BYTES[type];
    const at = this.need(size, what);
    this.pos += size;
    const v = this.view;
    switch (type) {
      case 'u8': return { type, value: v.getUint8(at) };
      case 'i8': return { type, value: v.getInt8(at) };
      case 'u16': return { type, value: v.getUint16(at, true) };
      case 'i16': return { type, value: v.getInt16(at, true) };
      case 'u32': return { type, value: v.getUint32(at, true) };
      case 'i32': return { type, value: v.getInt32(at, true) };
      case 'f32': return { type, value: v.getFloat32(at, true) };
      case 'f64': return { type, value: v.getFloat64(at, true) };
      case 'u64': return { type, value: v.getBigUint64(at, true) };
      case 'i64': return { type, value: v.getBigInt64(at, true) };
      case 'bool': {
        const b = v.getUint8(at);
        if (b > 1) throw new FormatError(this.file, `${what}: bool byte ${b} at offset ${this.pos - 1} is neither 0 nor 1`);
        return { type, value: b === 1 };
      }
    }
  }

  array(what: string): GgufValue {
    const itemType = this.valueType(`${what} item`);
    if (itemType === 'array') throw new FormatError(this.file, `${what}: nested arrays are not supported`);
    const count = this.u64(`${what} item count`);
    // Every item takes at least its fixed size (a string at least its 8-byte length).
    const minItemBytes = itemType === 'string' ? 8 : GGUF_VALUE_BYTES[itemType];
    if (count * minItemBytes > this.remaining) {
      throw new FormatError(this.file, `${what} claims ${count} items of ${itemType}, more than the ${this.remaining} bytes left in the file`);
    }
    if (itemType === 'string') {
      const items: string[] = new Array(count);
      for (let i = 0; i < count; i++) items[i] = this.string(`${what}[${i}]`);
      return { type: 'array', itemType, value: items };
    }
    if (itemType === 'bool') {
      const raw = this.bytes(count, what);
      const items: boolean[] = new Array(count);
      for (let i = 0; i < count; i++) {
        if (raw[i]! > 1) throw new FormatError(this.file, `${what}[${i}]: bool byte ${raw[i]} is neither 0 nor 1`);
        items[i] = raw[i] === 1;
      }
      return { type: 'array', itemType, value: items };
    }
    const raw = this.bytes(count * GGUF_VALUE_BYTES[itemType], what).slice(); // aligned copy
    const b = raw.buffer;
    const items: GgufArrayItems = {
      u8: () => new Uint8Array(b), i8: () => new Int8Array(b), u16: () => new Uint16Array(b), i16: () => new Int16Array(b),
      u32: () => new Uint32Array(b), i32: () => new Int32Array(b), f32: () => new Float32Array(b), f64: () => new Float64Array(b),
      u64: () => new BigUint64Array(b), i64: () => new BigInt64Array(b),
    }[itemType]();
    return { type: 'array', itemType, value: items };
  }
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Parses a GGUF file's header, metadata and tensor infos (no tensor data is read). */
export function readGgufBytes(bytes: ByteSource): GgufFile {
  const file = bytes.name;
  const stat = { size: bytes.size };
  const c = new Cursor(bytes, file, stat.size);
  if (stat.size < 4) throw new FormatError(file, `file is ${stat.size} bytes, too short for a GGUF header`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const seen = String.fromCharCode(magic & 0xff, (magic >> 8) & 0xff, (magic >> 16) & 0xff, (magic >>> 24) & 0xff);
    throw new FormatError(file, `not a GGUF file: magic ${JSON.stringify(seen)} (0x${magic.toString(16).padStart(8, '0')}), expected "GGUF"`);
  }
  const version = c.u32('header version');
  if (version !== 2 && version !== 3) {
    const hint = version === 1 ? ' (GGUF v1 predates 64-bit counts; re-convert the model with a current llama.cpp)'
      : (version & 0xffffff) === 0 && version >>> 24 <= 3 ? ' (a big-endian GGUF; only little-endian files are supported)' : '';
    throw new FormatError(file, `GGUF version ${version} is not supported (versions 2 and 3)${hint}`);
  }
  const tensorCount = c.u64('tensor count');
  const kvCount = c.u64('metadata count');
  // A key-value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 8 + 4 + 8.
  if (kvCount * 13 > c.remaining) throw new FormatError(file, `header claims ${kvCount} metadata entries, more than the ${c.remaining} bytes left can hold (truncated or corrupt file)`);
  if (tensorCount * 32 > c.remaining) throw new FormatError(file, `header claims ${tensorCount} tensors, more than the ${c.remaining} bytes left can hold (truncated or corrupt file)`);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`);
    if (metadata.has(key)) throw new FormatError(file, `duplicate metadata key ${key}`);
    const type = c.valueType(`metadata ${key}`);
    metadata.set(key, type === 'array' ? c.array(`metadata ${key}`) : c.scalar(type, `metadata ${key}`));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignValue = metadata.get('general.alignment');
  if (alignValue) {
    if (alignValue.type !== 'u32' || alignValue.value === 0 || (alignValue.value & (alignValue.value - 1)) !== 0) {
      throw new FormatError(file, `general.alignment must be a u32 power of two, got ${describeValue(alignValue)}`);
    }
    alignment = alignValue.value;
  }

  const infos: Array<Omit<GgufTensorInfo, 'offset'> & { relOffset: number }> = [];
  const seen = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor ${i} name`);
    if (seen.has(name)) throw new FormatError(file, `duplicate tensor name ${name}`);
    seen.add(name);
    const nDims = c.u32(`tensor ${name} dimension count`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS) throw new FormatError(file, `tensor ${name} has ${nDims} dimensions (1..${GGML_MAX_DIMS} allowed)`);
    const ne: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(`tensor ${name} dimension ${d}`);
      ne.push(n);
      elements *= n;
    }
    if (!Number.isSafeInteger(elements) || elements > stat.size * 8) {
      throw new FormatError(file, `tensor ${name} has dimensions [${ne.join(', ')}], too many elements for a ${stat.size}-byte file`);
    }
    const typeId = c.u32(`tensor ${name} type`);
    const type = GGML_TYPES.get(typeId);
    if (!type) throw new FormatError(file, `tensor ${name} has unknown ggml type ${typeId}`);
    if (ne[0]! % type.blockSize !== 0) {
      throw new FormatError(file, `tensor ${name}: row length ${ne[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`);
    }
    const relOffset = c.u64(`tensor ${name} offset`);
    if (relOffset % alignment !== 0) throw new FormatError(file, `tensor ${name}: data offset ${relOffset} is not a multiple of the alignment ${alignment}`);
    infos.push({ name, ne, type, relOffset, byteLength: (elements / type.blockSize) * type.typeSize });
  }

  const dataOffset = alignUp(c.pos, alignment);
  if (tensorCount > 0 && dataOffset > stat.size) {
    throw new FormatError(file, `truncated: tensor data should start at offset ${dataOffset}, the file ends at ${stat.size}`);
  }
  const tensors = infos.map(({ relOffset, ...t }) => ({ ...t, offset: dataOffset + relOffset }));
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = dataOffset;
  for (const t of byOffset) {
    if (t.offset < end) throw new FormatError(file, `tensor ${t.name} at offset ${t.offset} overlaps the tensor data before it (which ends at ${end})`);
    end = t.offset + t.byteLength;
    if (end > stat.size) {
      throw new FormatError(file, `truncated tensor data: ${t.name} (${t.type.name} [${t.ne.join(', ')}], ${t.byteLength} bytes at offset ${t.offset}) runs past the end of the file (${stat.size} bytes)`);
    }
  }
  return { file, version, alignment, dataOffset, fileBytes: stat.size, metadata, tensors };
}

export function describeValue(v: GgufValue): string {
  if (v.type === 'array') return `array of ${v.value.length} ${v.itemType}`;
  return `${v.type} ${typeof v.value === 'string' ? JSON.stringify(v.value.slice(0, 80)) : String(v.value)}`;
}

// ------------------------------------------------------------------ typed metadata access

function shortestF32Decimal(x: number): number {
  for (let digits = 1; digits < 10; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

/** Typed reads of metadata with file-and-key errors. */
export class GgufMetadata {
  constructor(
    readonly file: string,
    readonly map: Map<string, GgufValue>,
  ) {}

  has(key: string): boolean {
    return this.map.has(key);
  }

  private fail(key: string, want: string): never {
    const v = this.map.get(key);
    throw new FormatError(this.file, v === undefined ? `missing metadata ${key} (${want})` : `metadata ${key} must be ${want}, got ${describeValue(v)}`);
  }

  /** Any integer type, as a non-negative safe integer. */
  uint(key: string, fallback?: number): number {
    const v = this.map.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v && v.type !== 'array' && v.type !== 'f32' && v.type !== 'f64' && v.type !== 'bool' && v.type !== 'string') {
      const n = Number(v.value);
      if (Number.isSafeInteger(n) && n >= 0) return n;
    }
    this.fail(key, 'a non-negative integer');
  }

  positiveInt(key: string, fallback?: number): number {
    const n = this.uint(key, fallback);
    if (n === 0) this.fail(key, 'a positive integer');
    return n;
  }

  /** A number; f32 values come back as the shortest decimal that rounds to them (1e-5, not 9.99999974e-6). */
  number(key: string, fallback?: number): number {
    const v = this.map.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v && v.type !== 'array' && v.type !== 'bool' && v.type !== 'string') {
      const n = Number(v.value);
      if (Number.isFinite(n)) return v.type === 'f32' ? shortestF32Decimal(n) : n;
    }
    this.fail(key, 'a number');
  }

  string(key: string, fallback?: string): string {
    const v = this.map.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v?.type === 'string') return v.value;
    this.fail(key, 'a string');
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.map.get(key);
    if (v === undefined) return fallback;
    if (v.type === 'bool') return v.value;
    this.fail(key, 'a bool');
  }

  stringArray(key: string): string[] | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    if (v.type === 'array' && v.itemType === 'string') return v.value as string[];
    this.fail(key, 'an array of strings');
  }

  /** Numeric array as plain numbers (any numeric item type). */
  numberArray(key: string): ArrayLike<number> | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    if (v.type === 'array' && v.itemType !== 'string' && v.itemType !== 'bool') {
      return v.itemType === 'u64' || v.itemType === 'i64' ? Array.from(v.value as BigInt64Array, Number) : (v.value as Float32Array);
    }
    this.fail(key, 'a numeric array');
  }
}

