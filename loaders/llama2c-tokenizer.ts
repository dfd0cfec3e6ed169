// llama2.c `tokenizer.bin` from a file (the format and the tokenizer: loaders/llama2c-vocab.ts).
import { checkedTokenizerSize, llama2cTokenizerFromBytes, type Llama2cTokenizer } from './llama2c-vocab.js';
import { openFileBytes } from './read-at.js';

export { Llama2cTokenizer, parseLlama2cTokenizer, type Llama2cVocab } from './llama2c-vocab.js';

/** Reads a llama2.c tokenizer.bin; `expectedVocabSize` (from the checkpoint) is checked when given. */
export function loadLlama2cTokenizer(file: string, expectedVocabSize?: number): Llama2cTokenizer {
  const bytes = openFileBytes(file, 'llama2.c tokenizer');
  try {
    return llama2cTokenizerFromBytes(bytes.name, bytes.read(0, checkedTokenizerSize(file, bytes.size), 'tokenizer'), expectedVocabSize);
  } finally {
    bytes.close();
  }
}
