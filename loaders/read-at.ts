// Positioned reads for the lazy loaders: open a file for reading, read exactly N bytes at an offset.
// Reads go in chunks because one readSync call is capped below 2 GiB and may return fewer bytes.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ByteSource } from './byte-source.js';
import { FormatError, LoadError, NotFoundError } from './errors.js';

const CHUNK_BYTES = 1 << 30;

/** Opens `file` read-only; a missing or unreadable file becomes a NotFoundError saying what it should have been. */
export function openForRead(file: string, what: string): number {
  try {
    return openSync(file, 'r');
  } catch (err) {
    throw new NotFoundError(file, `cannot open ${what} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** Reads exactly `length` bytes at `position` into a fresh array; a short read is a FormatError naming `what`. */
export function readAt(fd: number, file: string, position: number, length: number, what: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, out, done, Math.min(CHUNK_BYTES, length - done), position + done);
    if (got <= 0) throw new FormatError(file, `short read of ${what}: got ${done} of ${length} bytes at offset ${position}`);
    done += got;
  }
  return out;
}

/**
 * A regular file as a ByteSource (read lazily, positioned); anything else is a FormatError
 * "not a <what>: not a regular file". close() releases the descriptor.
 */
export function openFileBytes(file: string, what: string): ByteSource {
  const fd = openForRead(file, what);
  let size: number;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FormatError(file, `not a ${what}: not a regular file`);
    size = stat.size;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let closed = false;
  return {
    name: file,
    size,
    read(offset, length, part) {
      if (closed) throw new LoadError(file, `read of ${part} after close()`);
      return readAt(fd, file, offset, length, part);
    },
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}
