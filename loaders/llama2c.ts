// llama2.c checkpoints from a file (the format itself: loaders/llama2c-format.ts).
import type { ModelSource } from '../core/model.js';
import { llama2cSource } from './llama2c-format.js';
import { openFileBytes } from './read-at.js';

export { tensorF32 } from './llama2c-format.js';

export function loadLlama2c(file: string, id = file): ModelSource {
  const bytes = openFileBytes(file, 'llama2.c checkpoint');
  try {
    return llama2cSource(bytes, id);
  } catch (err) {
    bytes.close();
    throw err;
  }
}
