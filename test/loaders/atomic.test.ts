import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAll, writeBytesAtomic, writeDirAtomic, writeFileAtomic } from '../../loaders/atomic.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'aser-atomic-'));

describe('atomic writes', () => {
  it('replaces a file whole, and leaves it untouched when the writer fails', () => {
    const dir = tmp();
    const file = join(dir, 'a.txt');
    writeBytesAtomic(file, 'first');
    writeBytesAtomic(file, new TextEncoder().encode('second'));
    expect(readFileSync(file, 'utf8')).toBe('second');
    expect(() => writeFileAtomic(file, (fd) => { writeAll(fd, new Uint8Array(10)); throw new Error('disk full'); })).toThrow('disk full');
    expect(readFileSync(file, 'utf8')).toBe('second');
    expect(readdirSync(dir)).toEqual(['a.txt']);
    writeBytesAtomic(join(dir, 'sub', 'deep.txt'), 'x'); // parent directories are created
    expect(readFileSync(join(dir, 'sub', 'deep.txt'), 'utf8')).toBe('x');
  });

  it('creates a directory whole: nothing appears on failure, an existing one is replaced only when asked', () => {
    const parent = tmp();
    const out = join(parent, 'model');
    expect(() => writeDirAtomic(out, (d) => { writeFileSync(join(d, 'half.bin'), 'x'); throw new Error('conversion failed'); })).toThrow('conversion failed');
    expect(readdirSync(parent)).toEqual([]);
    writeDirAtomic(out, (d) => writeBytesAtomic(join(d, 'v1.txt'), '1'));
    expect(() => writeDirAtomic(out, () => {})).toThrow(/already exists/);
    // A failed overwrite keeps the old directory.
    expect(() => writeDirAtomic(out, () => { throw new Error('nope'); }, { overwrite: true })).toThrow('nope');
    expect(readdirSync(out)).toEqual(['v1.txt']);
    writeDirAtomic(out, (d) => writeBytesAtomic(join(d, 'v2.txt'), '2'), { overwrite: true });
    expect(readdirSync(out)).toEqual(['v2.txt']);
    expect(readdirSync(parent)).toEqual(['model']);
    expect(existsSync(join(out, 'v1.txt'))).toBe(false);
  });
});
