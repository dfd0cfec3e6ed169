// GGUF files on disk (the format itself: loaders/gguf-format.ts, re-exported here).
import { closeSync, readSync } from 'node:fs';
import { readGgufBytes, GGUF_MAGIC, type GgufFile } from './gguf-format.js';
import { openFileBytes, openForRead } from './read-at.js';

export * from './gguf-format.js';

/** Parses a GGUF file's header, metadata and tensor infos. */
export function readGguf(file: string): GgufFile {
  const bytes = openFileBytes(file, 'GGUF file');
  try {
    return readGgufBytes(bytes);
  } finally {
    bytes.close();
  }
}

/** True when `file` starts with the GGUF magic (cheap sniff for --model resolution). */
export function isGgufFile(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openForRead(file, 'file');
    const head = new Uint8Array(4);
    return readSync(fd, head, 0, 4, 0) === 4 && new DataView(head.buffer).getUint32(0, true) === GGUF_MAGIC;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
