// --model resolution: a preset name from models.json, a llama2.c .bin file, a GGUF file, or a Hugging
// Face directory -> ModelSource + TextTokenizer. Nothing is ever downloaded; a missing model is a
// NotFoundError that says where to put the files or which variable to set.
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelSource, TextTokenizer } from '../core/model.js';
import { FormatError, LoadError, NotFoundError } from './errors.js';
import { isGgufFile } from './gguf-file.js';
import { loadGguf } from './gguf.js';
import { ggufTokenizer } from './gguf-tokenizer.js';
import { loadHfModel } from './hf-model.js';
import { loadHfTokenizer } from './hf-tokenizer.js';
import { checkTokenizerFits } from './tokenizer-fit.js';
import { isRecord, readJsonFile } from './json-file.js';
import { loadLlama2c } from './llama2c.js';
import { loadLlama2cTokenizer } from './llama2c-tokenizer.js';

export type ModelFormat = 'llama2c' | 'hf' | 'gguf';

export interface ModelPreset {
  name: string;
  format: ModelFormat;
  /** Absolute path the preset resolves to now (its env variable applied). */
  path: string;
  /** Where the path came from: the env variable's name when it was set, else 'models.json'. */
  pathFrom: string;
  /** Absolute tokenizer path (llama2c presets). */
  tokenizer?: string;
  /** Variable that overrides `path` (hf presets). */
  env?: string;
  description?: string;
  /** Where the weights come from (a URL, or a PROVENANCE file). */
  source?: string;
  license?: string;
}

export interface ModelRegistry {
  file: string;
  defaultName: string;
  presets: Map<string, ModelPreset>;
}

export interface ResolveOptions {
  /** tokenizer.json, llama2.c tokenizer.bin, or a directory holding one; overrides the model's own. */
  tokenizer?: string;
  /** models.json to use (default: the repository's, found next to the loaders). */
  registry?: string;
  /** Environment for preset variables (default process.env). */
  env?: Record<string, string | undefined>;
}

export interface ResolvedModel {
  source: ModelSource;
  tokenizer: TextTokenizer;
  format: ModelFormat;
  /** The model file (llama2c) or directory (hf) that was loaded. */
  path: string;
  preset?: ModelPreset;
}

/**
 * The repository's models.json: loaders/registry.ts sits one level below the root, the compiled
 * dist/loaders/registry.js two levels.
 */
export function findModelsJson(): string {
  const candidates = ['../models.json', '../../models.json'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new NotFoundError(candidates[0]!, 'models.json not found next to the loaders (looked in the repository root)');
  return found;
}

function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(1));
  return isAbsolute(p) ? p : resolve(base, p);
}

export function loadRegistry(file = findModelsJson(), env: Record<string, string | undefined> = process.env): ModelRegistry {
  const json = readJsonFile(file, 'models.json');
  if (!isRecord(json) || !isRecord(json.models)) throw new FormatError(file, 'no "models" object');
  const base = dirname(file);
  const presets = new Map<string, ModelPreset>();
  for (const [name, raw] of Object.entries(json.models)) {
    if (!isRecord(raw)) throw new FormatError(file, `models.${name} is not an object`);
    const { format, path, tokenizer, env: envName } = raw;
    if (format !== 'llama2c' && format !== 'hf') throw new FormatError(file, `models.${name}.format must be "llama2c" or "hf", got ${JSON.stringify(format)}`);
    if (typeof path !== 'string' || path === '') throw new FormatError(file, `models.${name}.path must be a non-empty string`);
    if (tokenizer !== undefined && typeof tokenizer !== 'string') throw new FormatError(file, `models.${name}.tokenizer must be a string`);
    if (envName !== undefined && typeof envName !== 'string') throw new FormatError(file, `models.${name}.env must be a string`);
    const override = envName ? env[envName] : undefined;
    const str = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : undefined);
    presets.set(name, {
      name, format,
      path: override ? resolve(expandPath(override, process.cwd())) : expandPath(path, base),
      pathFrom: override ? envName! : 'models.json',
      tokenizer: tokenizer ? expandPath(tokenizer, base) : undefined,
      env: envName, description: str('description'), source: str('source'), license: str('license'),
    });
  }
  const defaultName = typeof json.default === 'string' ? json.default : [...presets.keys()][0] ?? '';
  if (!presets.has(defaultName)) throw new FormatError(file, `default model ${JSON.stringify(defaultName)} is not among the models`);
  return { file, defaultName, presets };
}

/**
 * Loads a tokenizer file: tokenizer.json (HF, with tokenizer_config.json beside it), a llama2.c
 * tokenizer.bin, or a directory holding either. `vocabSize`: the model's, checked against.
 */
export function loadTokenizerFile(path: string, opts: { vocabSize?: number; bosId?: number; eosId?: number } = {}): TextTokenizer {
  let file = path;
  if (existsSync(path) && statSync(path).isDirectory()) {
    file = [join(path, 'tokenizer.json'), join(path, 'tokenizer.bin')].find((f) => existsSync(f)) ?? join(path, 'tokenizer.json');
  }
  if (!existsSync(file)) throw new NotFoundError(file, 'tokenizer not found (give a tokenizer.json, a llama2.c tokenizer.bin, or a directory with one)');
  const tok: TextTokenizer = extname(file) === '.json'
    ? loadHfTokenizer(file, { bosId: opts.bosId, eosId: opts.eosId })
    : loadLlama2cTokenizer(file, opts.vocabSize);
  return checkTokenizerFits(file, tok, opts.vocabSize);
}

function loadLlama2cModel(file: string, id: string, tokenizerPath: string | undefined): ResolvedModel {
  const source = loadLlama2c(file, id);
  try {
    let tok = tokenizerPath;
    if (!tok) {
      const dir = dirname(file);
      tok = [join(dir, 'tokenizer.json'), join(dir, 'tokenizer.bin')].find((f) => existsSync(f));
      if (!tok) {
        throw new NotFoundError(dir, `no tokenizer next to ${basename(file)}: put its tokenizer.json (+ tokenizer_config.json) or llama2.c tokenizer.bin there, or pass --tokenizer`);
      }
    }
    const tokenizer = loadTokenizerFile(tok, { vocabSize: source.config.vocabSize, bosId: source.config.bosId, eosId: source.config.eosId });
    return { source, tokenizer, format: 'llama2c', path: file };
  } catch (err) {
    source.close();
    throw err;
  }
}

/** A GGUF file with `tokenizerPath` when given, else its embedded SentencePiece vocabulary. */
function loadGgufModel(file: string, id: string, tokenizerPath: string | undefined): ResolvedModel {
  const source = loadGguf(file, id);
  try {
    const c = source.config;
    const tokenizer = tokenizerPath
      ? loadTokenizerFile(tokenizerPath, { vocabSize: c.vocabSize, bosId: c.bosId, eosId: c.eosId })
      : ggufTokenizer(source.gguf);
    return { source, tokenizer, format: 'gguf', path: file };
  } catch (err) {
    source.close();
    throw err;
  }
}

function loadHfDir(dir: string, id: string | undefined, tokenizerPath: string | undefined): ResolvedModel {
  const tokenizer = tokenizerPath ? loadTokenizerFile(tokenizerPath) : undefined;
  const { source, tokenizer: tok } = loadHfModel(dir, { tokenizer, id });
  return { source, tokenizer: tok, format: 'hf', path: dir };
}

function missingPresetError(p: ModelPreset): NotFoundError {
  if (p.format === 'llama2c') return new NotFoundError(p.path, `model ${p.name} is missing from the checkout (restore ${p.source ?? 'its files'})`);
  const from = p.source ? `the Hugging Face repo ${p.source.replace('https://huggingface.co/', '')}` : `model ${p.name}`;
  const files = 'config.json, the *.safetensors weights (+ model.safetensors.index.json), tokenizer.json and tokenizer_config.json';
  if (p.pathFrom !== 'models.json') {
    return new NotFoundError(p.path, `model ${p.name}: ${p.pathFrom} points here but there is no model directory; download ${from} (${files}) here or fix ${p.pathFrom}`);
  }
  return new NotFoundError(p.path, `model ${p.name} is not installed: download ${from} (${files}) into this directory, or set ${p.env ?? 'the path in models.json'} to where it is`);
}

/** A preset name, a llama2.c checkpoint, a GGUF file, or a Hugging Face directory -> model and tokenizer. */
export function resolveModel(nameOrPath: string, options: ResolveOptions = {}): ResolvedModel {
  const env = options.env ?? process.env;
  const registry = loadRegistry(options.registry ?? findModelsJson(), env);
  const preset = registry.presets.get(nameOrPath);
  if (preset) {
    if (!existsSync(preset.path)) throw missingPresetError(preset);
    const resolved = preset.format === 'llama2c'
      ? loadLlama2cModel(preset.path, preset.name, options.tokenizer ?? preset.tokenizer)
      : loadHfDir(preset.path, preset.name, options.tokenizer);
    return { ...resolved, preset };
  }

  const path = resolve(expandPath(nameOrPath, process.cwd()));
  if (!existsSync(path)) {
    const names = [...registry.presets.keys()].join(', ');
    throw new NotFoundError(nameOrPath, `no such model: not a preset in ${registry.file} (${names}) and no file or directory by that name; give a llama2.c .bin checkpoint, a .gguf file or a Hugging Face model directory`);
  }
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'config.json'))) return loadHfDir(path, undefined, options.tokenizer);
    if (existsSync(join(path, 'model.bin'))) return loadLlama2cModel(join(path, 'model.bin'), basename(path), options.tokenizer);
    throw new NotFoundError(path, 'not a model directory: no config.json (Hugging Face) and no model.bin (llama2.c)');
  }
  const name = basename(path);
  if (name === 'config.json' || extname(name) === '.safetensors' || name.endsWith('.safetensors.index.json')) {
    return loadHfDir(dirname(path), undefined, options.tokenizer);
  }
  if (extname(name) === '.json') throw new LoadError(path, 'a JSON file is not a model: give the model directory (Hugging Face) or a llama2.c .bin');
  if (extname(name) === '.gguf' || isGgufFile(path)) return loadGgufModel(path, basename(path, extname(path)), options.tokenizer);
  return loadLlama2cModel(path, basename(path, extname(path)), options.tokenizer);
}

/** The presets of the repository's models.json, for `--help` texts and `aser info`. */
export function listPresets(options: Pick<ResolveOptions, 'registry' | 'env'> = {}): ModelPreset[] {
  return [...loadRegistry(options.registry ?? findModelsJson(), options.env ?? process.env).presets.values()];
}
