// A Hugging Face model from its parts: config.json's token ids and a set of safetensors weights checked
// against the config. Portable (the directory is opened by loaders/hf-model.ts, or picked in a page).
import type { ModelConfig, ModelSource } from '../core/model.js';
import { checkRequiredTensors } from './model-tensors.js';
import type { SafetensorsSet } from './safetensors-format.js';

/** config.json's bos_token_id / eos_token_id (the first when a list), if it is a token id. */
export function tokenIdField(json: Record<string, unknown>, field: string): number | undefined {
  const v = Array.isArray(json[field]) ? (json[field] as unknown[])[0] : json[field];
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** `weights` as a ModelSource, after checking every tensor `config` implies; closing it closes `weights`. */
export function hfWeightsSource(where: string, config: ModelConfig, weights: SafetensorsSet, id: string): ModelSource {
  checkRequiredTensors(where, config, (n) => weights.has(n), (n) => weights.entry(n).shape, weights.names().length);
  return {
    id,
    config,
    tensor: (name) => weights.tensor(name),
    has: (name) => weights.has(name),
    names: () => weights.names(),
    close: () => weights.close(),
  };
}
