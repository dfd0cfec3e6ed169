import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, NotFoundError } from '../../loaders/errors.js';
import {
  openSafetensors, openSafetensorsDir, openSafetensorsIndex, writeSafetensors,
} from '../../loaders/safetensors.js';
import { bytesToF32, f32ToBf16Array, f32ToF16Array } from '../../core/dtype.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'aser-st-'));
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A raw safetensors file with an arbitrary (possibly lying) header, for the error cases. */
function rawFile(path: string, header: unknown, data: Uint8Array, lengthOverride?: bigint): string {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

describe('safetensors', () => {
  const values = Float32Array.from({ length: 24 }, (_, i) => (i - 11.5) / 4);

  it('writes and reads back f32, f16 and bf16 tensors with metadata, lazily and exactly', () => {
    const dir = tmp();
    const file = join(dir, 'w.safetensors');
    writeSafetensors(file, [
      { name: 'a.weight', dtype: 'f32', shape: [4, 6], data: bytesOf(values) },
      { name: 'b.weight', dtype: 'F16', shape: [24], data: () => bytesOf(f32ToF16Array(values)) },
      { name: 'c.bias', dtype: 'bf16', shape: [2, 3, 4], data: bytesOf(f32ToBf16Array(values)) },
      { name: 'empty', dtype: 'f32', shape: [0, 5], data: new Uint8Array(0) },
    ], { format: 'pt', note: 'tested' });
    // Header length is a multiple of 8 and the file is exactly header + data.
    const raw = readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(raw.length).toBe(8 + n + 96 + 48 + 48);
    expect(readdirSync(dir)).toEqual(['w.safetensors']); // no temporary file left behind

    const st = openSafetensors(file);
    expect(st.metadata).toEqual({ format: 'pt', note: 'tested' });
    expect(st.names().sort()).toEqual(['a.weight', 'b.weight', 'c.bias', 'empty']);
    const a = st.tensor('a.weight');
    expect({ dtype: a.dtype, shape: a.shape, byteLength: a.byteLength }).toEqual({ dtype: 'f32', shape: [4, 6], byteLength: 96 });
    expect([...bytesToF32(a.read(), 'f32')]).toEqual([...values]);
    // Values exactly representable in f16/bf16 survive the round trip unchanged.
    expect([...bytesToF32(st.tensor('b.weight').read(), 'f16')]).toEqual([...values]);
    expect(st.tensor('c.bias')).toMatchObject({ dtype: 'bf16', shape: [2, 3, 4] });
    expect([...bytesToF32(st.tensor('c.bias').read(), 'bf16')]).toEqual([...values]);
    expect(st.tensor('empty').read().length).toBe(0);
    expect(() => st.tensor('nope')).toThrow(/no tensor named nope/);
    st.close();
    expect(() => a.read()).toThrow(/after close/);
  });

  it('reads non-weight dtypes only when asked, and names the tensor and dtype otherwise', () => {
    const dir = tmp();
    const file = join(dir, 'q.safetensors');
    writeSafetensors(file, [
      { name: 'w', dtype: 'f32', shape: [2], data: bytesOf(new Float32Array([1, 2])) },
      { name: 'packed', dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
    ]);
    expect(() => openSafetensors(file)).toThrow(FormatError);
    expect(() => openSafetensors(file)).toThrow(/tensor packed has dtype U8; only F32, F16, BF16/);
    const st = openSafetensors(file, { dtypes: ['F32', 'U8'] });
    expect([...st.read('packed')]).toEqual([1, 2, 3]);
    expect(() => st.tensor('packed')).toThrow(/not a weight dtype/);
    st.close();
  });

  it('opens a sharded checkpoint through its index', () => {
    const dir = tmp();
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'x', dtype: 'f32', shape: [2], data: bytesOf(new Float32Array([1, 2])) }]);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [
      { name: 'y', dtype: 'f32', shape: [1], data: bytesOf(new Float32Array([3])) },
      { name: 'unlisted', dtype: 'f32', shape: [1], data: bytesOf(new Float32Array([4])) },
    ]);
    const index = { metadata: { total_size: 12 }, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } };
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    const set = openSafetensorsDir(dir);
    expect(set.names().sort()).toEqual(['x', 'y']);
    expect([...bytesToF32(set.tensor('y').read(), 'f32')]).toEqual([3]);
    expect(set.entry('x').file).toBe(join(dir, 'model-00001-of-00002.safetensors'));
    expect(set.metadata.total_size).toBe('12');
    set.close();

    const bad = join(dir, 'bad.index.json');
    writeFileSync(bad, JSON.stringify({ weight_map: { z: 'model-00001-of-00002.safetensors' } }));
    expect(() => openSafetensorsIndex(bad)).toThrow(/weight_map puts z in model-00001-of-00002.safetensors, which has no such tensor/);
    writeFileSync(bad, JSON.stringify({ weight_map: { x: 'model-00009.safetensors' } }));
    expect(() => openSafetensorsIndex(bad)).toThrow(NotFoundError);
    writeFileSync(bad, JSON.stringify({ weight_map: { x: '../elsewhere.safetensors' } }));
    expect(() => openSafetensorsIndex(bad)).toThrow(/shard file name in the same directory/);
    writeFileSync(bad, '{"weight_map": ');
    expect(() => openSafetensorsIndex(bad)).toThrow(/not valid JSON/);
    expect(() => openSafetensorsDir(tmp())).toThrow(/no model.safetensors or model.safetensors.index.json/);
  });

  it('refuses truncated files and headers that lie, naming the file and the reason', () => {
    const dir = tmp();
    const eight = new Uint8Array(8);
    const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const cases: Array<[string, () => string, RegExp]> = [
      ['tiny', () => (writeFileSync(join(dir, 'tiny'), Uint8Array.of(1, 2, 3)), join(dir, 'tiny')), /too short for a safetensors header/],
      ['huge header length', () => rawFile(join(dir, 'huge'), ok, eight, 1n << 40n), /header length 1099511627776 exceeds the 100 MiB limit/],
      ['header past end', () => rawFile(join(dir, 'past'), ok, eight, 5000n), /header length 5000 runs past the end/],
      ['bad JSON', () => rawFile(join(dir, 'json'), '{"w": {"dtype": "F32",', eight), /header is not valid JSON/],
      ['not an object', () => rawFile(join(dir, 'arr'), [1, 2], eight), /not a JSON object/],
      ['unknown dtype', () => rawFile(join(dir, 'dt'), { w: { dtype: 'F31', shape: [2], data_offsets: [0, 8] } }, eight), /tensor w: unknown dtype "F31"/],
      ['size mismatch', () => rawFile(join(dir, 'size'), { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight), /F32 \[3\] needs 12 bytes, data_offsets span 8/],
      ['truncated data', () => rawFile(join(dir, 'trunc'), ok, eight.subarray(0, 5)), /truncated: tensor w ends at data byte 8, the file holds 5/],
      ['overlap', () => rawFile(join(dir, 'overlap'), { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /tensor b overlaps a/],
      ['hole', () => rawFile(join(dir, 'hole'), { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /hole of 4 bytes before tensor a/],
      ['trailing bytes', () => rawFile(join(dir, 'trail'), { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, eight), /4 bytes after the last tensor/],
      ['bad offsets', () => rawFile(join(dir, 'offs'), { a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, eight), /data_offsets \[8,4\] is not \[begin, end\]/],
      ['bad shape', () => rawFile(join(dir, 'shape'), { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, eight), /shape \[-1\] is not a list/],
      ['bad metadata', () => rawFile(join(dir, 'meta'), { __metadata__: { n: 3 }, ...ok }, eight), /__metadata__.n is not a string/],
    ];
    for (const [label, make, reason] of cases) {
      const file = make();
      let err: unknown;
      try {
        openSafetensors(file).close();
      } catch (e) {
        err = e;
      }
      expect(err, label).toBeInstanceOf(FormatError);
      expect((err as FormatError).file, label).toBe(file);
      expect((err as Error).message, label).toMatch(reason);
    }
    expect(() => openSafetensors(join(dir, 'missing.safetensors'))).toThrow(NotFoundError);
    // A real file cut short.
    const good = join(dir, 'good.safetensors');
    writeSafetensors(good, [{ name: 'w', dtype: 'f32', shape: [64], data: new Uint8Array(256) }]);
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, readFileSync(good).subarray(0, statSync(good).size - 10));
    expect(() => openSafetensors(cut)).toThrow(/truncated: tensor w ends at data byte 256, the file holds 246/);
  });

  it('writes atomically: a failing producer or bad input leaves no file behind', () => {
    const dir = tmp();
    const file = join(dir, 'x.safetensors');
    writeSafetensors(file, [{ name: 'keep', dtype: 'f32', shape: [1], data: new Uint8Array(4) }]);
    const before = readFileSync(file);
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'f32', shape: [4], data: () => { throw new Error('producer failed'); } }])).toThrow(/producer failed/);
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'f32', shape: [4], data: () => new Uint8Array(3) }])).toThrow(/expected 16 bytes, the producer gave 3/);
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'f32', shape: [4], data: new Uint8Array(3) }])).toThrow(/needs 16 bytes, got 3/);
    expect(() => writeSafetensors(file, [
      { name: 'w', dtype: 'f32', shape: [1], data: new Uint8Array(4) },
      { name: 'w', dtype: 'f32', shape: [1], data: new Uint8Array(4) },
    ])).toThrow(/used twice/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['x.safetensors']);
    expect(existsSync(join(dir, 'x.safetensors'))).toBe(true);
  });
});
