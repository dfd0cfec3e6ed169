// A Hugging Face model directory (config.json, safetensors weights, tokenizer.json) -> ModelSource +
// TextTokenizer. HF names are already the canonical ones; every tensor the config implies is checked
// for presence and shape up front, so a wrong or partial download fails at load with the list of what is off.
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ModelConfig, ModelSource, TextTokenizer } from '../core/model.js';
import { FormatError, NotFoundError } from './errors.js';
import { hfWeightsSource, tokenIdField } from './hf-model-json.js';

export { checkRequiredTensors, checkTensorCount, requiredTensorCount, requiredTensorShapes } from './model-tensors.js';
import { parseHfConfig } from './hf-config.js';
import { loadHfTokenizer } from './hf-tokenizer.js';
import { isRecord, readJsonFile } from './json-file.js';
import { openSafetensorsDir, type SafetensorsSet } from './safetensors.js';

export interface LoadedModel {
  source: ModelSource;
  tokenizer: TextTokenizer;
}


/** Opens the weights of an HF directory as a ModelSource, checked against `config`. */
export function openHfWeights(dir: string, config: ModelConfig, id = basename(resolve(dir))): ModelSource {
  const weights: SafetensorsSet = openSafetensorsDir(dir);
  try {
    return hfWeightsSource(dir, config, weights, id);
  } catch (err) {
    weights.close();
    throw err;
  }
}

export interface HfModelOptions {
  /** A tokenizer to use instead of the directory's tokenizer.json. */
  tokenizer?: TextTokenizer;
  /** Identity for logs and caches (default: the directory name). */
  id?: string;
}

/**
 * Loads a Hugging Face model directory: config.json (llama / qwen2), model.safetensors or its sharded
 * index, and tokenizer.json (+ tokenizer_config.json). BOS/EOS come from config.json, else the tokenizer.
 */
export function loadHfModel(dir: string, options: HfModelOptions = {}): LoadedModel {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new NotFoundError(dir, 'no such model directory (expected config.json, *.safetensors and tokenizer.json inside)');
  }
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile)) throw new NotFoundError(configFile, 'missing: a Hugging Face model directory needs its config.json');
  const json = readJsonFile(configFile, 'config.json');
  if (!isRecord(json)) throw new FormatError(configFile, 'config.json is not a JSON object');

  const tokenizer = options.tokenizer ?? loadHfTokenizer(dir, { bosId: tokenIdField(json, 'bos_token_id'), eosId: tokenIdField(json, 'eos_token_id') });
  const config = parseHfConfig(configFile, json, { bosId: tokenizer.bosId, eosId: tokenizer.eosId });
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new FormatError(dir, `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize} (vocab_size): wrong tokenizer?`);
  }
  const source = openHfWeights(dir, config, options.id);
  return { source, tokenizer };
}
