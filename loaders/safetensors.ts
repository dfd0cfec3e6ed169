// safetensors files: opening one (the format itself: loaders/safetensors-format.ts), sharded
// checkpoints through model.safetensors.index.json, a model directory's weights, and the writer
// (atomic, streaming one tensor at a time).
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { TensorDType, TensorRef } from '../core/model.js';
import { writeAll, writeFileAtomic } from './atomic.js';
import { FormatError, LoadError, NotFoundError } from './errors.js';
import { isRecord, readJsonFile } from './json-file.js';
import { openFileBytes } from './read-at.js';
import {
  FROM_TENSOR_DTYPE, SAFETENSORS_DTYPE_BYTES, SafetensorsFile, isDtype, type SafetensorsDType, type SafetensorsOpenOptions, type SafetensorsSet,
} from './safetensors-format.js';

export {
  MAX_HEADER_BYTES, SAFETENSORS_DTYPE_BYTES, SafetensorsFile, WEIGHT_DTYPES, parseSafetensorsHeader,
  type SafetensorsDType, type SafetensorsEntry, type SafetensorsOpenOptions, type SafetensorsSet,
} from './safetensors-format.js';

export function openSafetensors(file: string, options?: SafetensorsOpenOptions): SafetensorsFile {
  const bytes = openFileBytes(file, 'safetensors file');
  try {
    return SafetensorsFile.fromBytes(bytes, options);
  } catch (err) {
    bytes.close();
    throw err;
  }
}

/** The shards of one checkpoint, addressed through the index's weight_map. */
class ShardedSafetensors implements SafetensorsSet {
  constructor(
    private readonly indexFile: string,
    private readonly shardOf: Map<string, SafetensorsFile>,
    private readonly shards: SafetensorsFile[],
    readonly metadata: Record<string, string>,
  ) {}

  private shard(name: string): SafetensorsFile {
    const s = this.shardOf.get(name);
    if (!s) throw new FormatError(this.indexFile, `no tensor named ${name} in weight_map`);
    return s;
  }
  names(): string[] {
    return [...this.shardOf.keys()];
  }
  has(name: string): boolean {
    return this.shardOf.has(name);
  }
  entry(name: string) {
    return this.shard(name).entry(name);
  }
  read(name: string): Uint8Array {
    return this.shard(name).read(name);
  }
  tensor(name: string): TensorRef {
    return this.shard(name).tensor(name);
  }
  close(): void {
    for (const s of this.shards) s.close();
  }
}

/** Opens a sharded checkpoint from its `*.safetensors.index.json` ({weight_map: {tensor: shard file}}). */
export function openSafetensorsIndex(indexFile: string, options?: SafetensorsOpenOptions): SafetensorsSet {
  const index = readJsonFile(indexFile, 'safetensors index');
  if (!isRecord(index) || !isRecord(index.weight_map)) throw new FormatError(indexFile, 'no "weight_map" object in the safetensors index');
  const dir = join(indexFile, '..');
  const shardNames = new Map<string, string>();
  for (const [name, shard] of Object.entries(index.weight_map)) {
    if (typeof shard !== 'string' || shard === '' || shard !== basename(shard)) {
      throw new FormatError(indexFile, `weight_map.${name} must be a shard file name in the same directory, got ${JSON.stringify(shard)}`);
    }
    shardNames.set(name, shard);
  }
  const opened = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(shardNames.values())) opened.set(shard, openSafetensors(join(dir, shard), options));
    const shardOf = new Map<string, SafetensorsFile>();
    for (const [name, shard] of shardNames) {
      const file = opened.get(shard)!;
      if (!file.has(name)) throw new FormatError(indexFile, `weight_map puts ${name} in ${shard}, which has no such tensor`);
      shardOf.set(name, file);
    }
    const metadata: Record<string, string> = {};
    if (isRecord(index.metadata)) for (const [k, v] of Object.entries(index.metadata)) metadata[k] = String(v);
    return new ShardedSafetensors(indexFile, shardOf, [...opened.values()], metadata);
  } catch (err) {
    for (const f of opened.values()) f.close();
    throw err;
  }
}

/**
 * The weights of a Hugging Face model directory: `model.safetensors`, else
 * `model.safetensors.index.json` (sharded), else the directory's only `*.safetensors` file.
 */
export function openSafetensorsDir(dir: string, options?: SafetensorsOpenOptions): SafetensorsSet {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return openSafetensors(single, options);
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) return openSafetensorsIndex(index, options);
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  } catch (err) {
    throw new NotFoundError(dir, `cannot read the model directory (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (files.length === 1) return openSafetensors(join(dir, files[0]!), options);
  throw new NotFoundError(dir, files.length === 0
    ? 'no model.safetensors or model.safetensors.index.json (only safetensors weights are supported, not .bin/.pth)'
    : `${files.length} .safetensors files but no model.safetensors.index.json saying which tensor is where`);
}

export interface SafetensorsWriteTensor {
  name: string;
  dtype: SafetensorsDType | TensorDType;
  shape: number[];
  /** The little-endian bytes, or a function producing them when the writer reaches this tensor (so a
   *  large model streams through one tensor at a time). */
  data: Uint8Array | (() => Uint8Array);
}

function normalizeDtype(d: SafetensorsDType | TensorDType): SafetensorsDType {
  if (isDtype(d)) return d;
  const mapped = FROM_TENSOR_DTYPE[d as TensorDType];
  if (!mapped) throw new RangeError(`unknown dtype ${String(d)}`);
  return mapped;
}

/**
 * Writes a safetensors file atomically (temporary file, fsync, rename): tensors in the given order,
 * contiguous, header padded with spaces to 8 bytes; `metadata` becomes `__metadata__`.
 */
export function writeSafetensors(path: string, tensors: SafetensorsWriteTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new LoadError(path, `tensor name ${t.name} is reserved or used twice`);
    const dtype = normalizeDtype(t.dtype);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new LoadError(path, `tensor ${t.name}: bad shape ${JSON.stringify(t.shape)}`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (t.data instanceof Uint8Array && t.data.byteLength !== bytes) {
      throw new LoadError(path, `tensor ${t.name}: ${dtype} ${JSON.stringify(t.shape)} needs ${bytes} bytes, got ${t.data.byteLength}`);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    sizes.push(bytes);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const utf8 = new TextEncoder();
  const pad = (8 - (utf8.encode(json).byteLength % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = utf8.encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);

  writeFileAtomic(path, (fd) => {
    writeAll(fd, prefix);
    writeAll(fd, headerBytes);
    tensors.forEach((t, i) => {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.byteLength !== sizes[i]) throw new LoadError(path, `tensor ${t.name}: expected ${sizes[i]} bytes, the producer gave ${data.byteLength}`);
      writeAll(fd, data);
    });
  });
}
