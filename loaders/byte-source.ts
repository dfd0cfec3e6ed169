// Positioned reads over bytes wherever they live: a file (Node, loaders/read-at.ts) or an array
// already in memory (a browser's fetch or file picker). The format parsers read through this, so
// the same header checks and tensor layouts serve `aser` and the web page. Portable: no Node APIs.
import { FormatError, LoadError } from './errors.js';

export interface ByteSource {
  /** Names the bytes in errors: a path, a URL or a picked file's name. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`, in a fresh array; a short read is a FormatError naming `what`. */
  read(offset: number, length: number, what: string): Uint8Array;
  close(): void;
}

/** Bytes held in memory as a ByteSource; reads copy, so callers may keep or change what they get. */
export function memoryByteSource(name: string, bytes: Uint8Array): ByteSource {
  let closed = false;
  return {
    name,
    size: bytes.byteLength,
    read(offset, length, what) {
      if (closed) throw new LoadError(name, `read of ${what} after close()`);
      if (offset + length > bytes.byteLength) {
        throw new FormatError(name, `short read of ${what}: got ${Math.max(0, bytes.byteLength - offset)} of ${length} bytes at offset ${offset}`);
      }
      return bytes.slice(offset, offset + length);
    },
    close() {
      closed = true;
    },
  };
}
