// Hugging Face tokenizer.json (+ tokenizer_config.json) from files (the tokenizer: loaders/hf-tokenizer-json.ts).
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FormatError, NotFoundError } from './errors.js';
import { hfTokenizerFromJson, type HfTokenizer, type HfTokenizerOptions } from './hf-tokenizer-json.js';
import { isRecord, readJsonFile } from './json-file.js';

export { HfTokenizer, hfTokenizerFromJson, type HfEncodeOptions, type HfTokenizerOptions } from './hf-tokenizer-json.js';

/**
 * Loads `tokenizer.json` (a file, or a directory holding one) with the `tokenizer_config.json` beside
 * it when there is one.
 */
export function loadHfTokenizer(path: string, options: HfTokenizerOptions = {}): HfTokenizer {
  let file = path;
  if (existsSync(path) && statSync(path).isDirectory()) file = join(path, 'tokenizer.json');
  if (!existsSync(file)) {
    throw new NotFoundError(file, 'no tokenizer.json: put the model\'s Hugging Face tokenizer.json (and tokenizer_config.json) here');
  }
  const json = readJsonFile(file, 'tokenizer.json');
  const configFile = join(dirname(file), 'tokenizer_config.json');
  let config: Record<string, unknown> = {};
  if (existsSync(configFile)) {
    const c = readJsonFile(configFile, 'tokenizer_config.json');
    if (!isRecord(c)) throw new FormatError(configFile, 'tokenizer_config.json is not a JSON object');
    config = c;
  }
  return hfTokenizerFromJson(file, json, config, options);
}
