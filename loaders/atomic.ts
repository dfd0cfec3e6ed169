// Atomic writes: build the result under a temporary name in the same directory, fsync it, then rename,
// so a crash or an error never leaves a half-written file or model directory where a reader would look.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LoadError } from './errors.js';

/** A hidden, unique temporary name beside `path` (same directory, so a rename is atomic). */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/** This process's temporary siblings of `path` (what tempSibling made and a finished write renamed away). */
export function ownTempSiblings(path: string): string[] {
  const prefix = `.${basename(path)}.tmp-${process.pid}-`;
  try {
    return readdirSync(dirname(path)).filter((name) => name.startsWith(prefix)).map((name) => join(dirname(path), name));
  } catch {
    return [];
  }
}

/** fsync a directory so a rename inside it is durable (best effort: some file systems refuse). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Not supported here; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes everything to `fd`, looping over partial writes. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

/**
 * Creates `path` atomically: `write(fd)` fills a temporary sibling, which is fsynced and renamed over
 * `path` (replacing an existing file). On any error the temporary file is removed and `path` is untouched.
 */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  const fd = openSync(tmp, 'wx');
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

/** Atomic whole-file write of bytes or text. */
export function writeBytesAtomic(path: string, data: Uint8Array | string): void {
  writeFileAtomic(path, (fd) => writeAll(fd, typeof data === 'string' ? new TextEncoder().encode(data) : data));
}

export interface DirWriteOptions {
  /** Replace an existing directory at `dir` (default false: an existing one is an error). */
  overwrite?: boolean;
}

/**
 * Creates directory `dir` atomically: `fill(tmpDir)` writes the files into a temporary sibling directory
 * (use the plain or atomic writers there; each file is fsynced by writeFileAtomic), which is renamed to
 * `dir` at the end. An existing `dir` is replaced only with `overwrite`: it is moved aside first and
 * removed once the new one is in place.
 */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void, options: DirWriteOptions = {}): void {
  if (existsSync(dir) && !options.overwrite) {
    throw new LoadError(dir, 'already exists; choose another output directory or allow overwriting');
  }
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = tempSibling(dir);
  mkdirSync(tmp);
  try {
    fill(tmp);
    fsyncDir(tmp);
    if (existsSync(dir)) {
      const old = tempSibling(dir);
      renameSync(dir, old);
      try {
        renameSync(tmp, dir);
      } catch (err) {
        renameSync(old, dir); // put the previous directory back
        throw err;
      }
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  fsyncDir(dirname(dir));
}
