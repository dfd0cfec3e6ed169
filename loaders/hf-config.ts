// Hugging Face config.json from a file (the parsing and checks: loaders/hf-config-json.ts, re-exported here).
import type { ModelConfig } from '../core/model.js';
import { parseHfConfig, type HfConfigFallbacks } from './hf-config-json.js';
import { readJsonFile } from './json-file.js';

export * from './hf-config-json.js';

export function loadHfConfig(file: string, fallbacks?: HfConfigFallbacks): ModelConfig {
  return parseHfConfig(file, readJsonFile(file, 'config.json'), fallbacks);
}
