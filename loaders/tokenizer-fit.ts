// A tokenizer must not name ids the model has no rows for. Portable (shared by loaders/registry.ts and the web page).
import type { TextTokenizer } from '../core/model.js';
import { FormatError } from './errors.js';

/** `tok`, when its vocabulary fits the model's `vocabSize` (unchecked when undefined); else a FormatError naming `file`. */
export function checkTokenizerFits<T extends TextTokenizer>(file: string, tok: T, vocabSize: number | undefined): T {
  if (vocabSize !== undefined && tok.vocabSize > vocabSize) {
    throw new FormatError(file, `the tokenizer has ${tok.vocabSize} tokens but the model only ${vocabSize}: not this model's tokenizer`);
  }
  return tok;
}
