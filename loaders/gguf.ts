// GGUF models from a file (the format and the model: loaders/gguf-model.ts, re-exported here).
import { basename, extname } from 'node:path';
import { ggufSource, type GgufModelSource } from './gguf-model.js';
import { openFileBytes } from './read-at.js';

export * from './gguf-model.js';

/**
 * Opens a GGUF model (architecture llama or qwen2) as a ModelSource under canonical names. Every
 * tensor the config implies is checked for presence, shape and a readable type up front.
 */
export function loadGguf(file: string, id = basename(file, extname(file))): GgufModelSource {
  const bytes = openFileBytes(file, 'GGUF file');
  try {
    return ggufSource(bytes, id);
  } catch (err) {
    bytes.close();
    throw err;
  }
}
