// Models, tokenizers and artifacts from bytes a page can get: fetched from the site (or any URL) or
// picked by the user. Every format check is the loaders' own (loaders/*-format.ts, artifact-reader.ts),
// so the page refuses exactly what `aser` refuses, with the same messages.
import type { ModelSource, TextTokenizer } from '../core/model.js';
import { memoryByteSource } from '../loaders/byte-source.js';
import { FormatError, LoadError, NotFoundError } from '../loaders/errors.js';
import { llama2cSource } from '../loaders/llama2c-format.js';
import { ggufSource } from '../loaders/gguf-model.js';
import { parseHfConfig } from '../loaders/hf-config-json.js';
import { hfWeightsSource, tokenIdField } from '../loaders/hf-model-json.js';
import { isRecord } from '../loaders/json-record.js';
import { ggufTokenizer } from '../loaders/gguf-vocab.js';
import { llama2cTokenizerFromBytes } from '../loaders/llama2c-vocab.js';
import { hfTokenizerFromJson } from '../loaders/hf-tokenizer-json.js';
import { checkTokenizerFits } from '../loaders/tokenizer-fit.js';
import { SafetensorsFile } from '../loaders/safetensors-format.js';
import { MANIFEST_FILE, validateManifest } from '../loaders/artifact-schema.js';
import {
  ARTIFACT_TENSOR_DTYPES, artifactReader, checkArtifactFile, checkArtifactModel, type ArtifactReader,
} from '../loaders/artifact-reader.js';

/** A file's name (as picked or as the last part of its URL) and its bytes. */
export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

export interface WebModel {
  id: string;
  format: 'llama2c' | 'gguf' | 'hf';
  source: ModelSource;
  tokenizer: TextTokenizer;
  /** sha256 of the weight file: what an artifact made from this model records. */
  sha256: string;
  weightBytes: number;
}

/** Bytes of `url`; a failed request is a NotFoundError naming the URL and the status. */
export async function fetchBytes(url: string, what: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new NotFoundError(url, `cannot fetch ${what} (${(err as Error).message})`);
  }
  if (!res.ok) throw new NotFoundError(url, `cannot fetch ${what}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** As fetchBytes, or undefined on 404 (an optional file such as tokenizer_config.json). */
async function fetchOptional(url: string, what: string): Promise<Uint8Array | undefined> {
  const res = await fetch(url).catch(() => undefined);
  if (res?.status === 404) return undefined;
  return fetchBytes(url, what);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function parseJson(file: string, bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new FormatError(file, `${what} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * The tokenizer among `files` for a model of `vocabSize` tokens: tokenizer.json (+ tokenizer_config.json)
 * first, else a llama2.c tokenizer.bin, as `aser` picks one next to a checkpoint.
 */
function tokenizerOf(files: NamedBytes[], where: string, config: { vocabSize: number; bosId: number; eosId: number }): TextTokenizer {
  const byName = (n: string) => files.find((f) => f.name === n);
  const json = byName('tokenizer.json');
  if (json) {
    const file = `${where}tokenizer.json`;
    const cfg = byName('tokenizer_config.json');
    const tok = hfTokenizerFromJson(file, parseJson(file, json.bytes, 'tokenizer.json'),
      cfg ? parseJson(`${where}tokenizer_config.json`, cfg.bytes, 'tokenizer_config.json') : {}, { bosId: config.bosId, eosId: config.eosId });
    return checkTokenizerFits(file, tok, config.vocabSize);
  }
  const bin = byName('tokenizer.bin') ?? files.find((f) => /tok.*\.bin$/.test(f.name));
  if (bin) return checkTokenizerFits(where + bin.name, llama2cTokenizerFromBytes(where + bin.name, bin.bytes, config.vocabSize), config.vocabSize);
  throw new NotFoundError(where, 'no tokenizer: pick the model\'s tokenizer.json (+ tokenizer_config.json) or llama2.c tokenizer.bin with it');
}

/** A GGUF model with its embedded vocabulary, or the tokenizer.json / tokenizer.bin given with it (as `aser --tokenizer`). */
async function ggufModel(file: NamedBytes, files: NamedBytes[], where: string): Promise<WebModel> {
  const id = file.name.replace(/\.gguf$/, '');
  const source = ggufSource(memoryByteSource(where + file.name, file.bytes), id);
  try {
    const hasTokenizer = files.some((f) => f.name === 'tokenizer.json' || f.name.endsWith('.bin'));
    const tokenizer = hasTokenizer ? tokenizerOf(files, where, source.config) : ggufTokenizer(source.gguf);
    return { id, format: 'gguf', source, tokenizer, sha256: await sha256Hex(file.bytes), weightBytes: file.bytes.byteLength };
  } catch (err) {
    source.close();
    throw err;
  }
}

/**
 * A Hugging Face directory: config.json, one model.safetensors (sharded checkpoints are not read in the
 * page yet) and tokenizer.json (+ tokenizer_config.json); BOS/EOS from config.json, else the tokenizer.
 */
async function hfModel(files: NamedBytes[], where: string): Promise<WebModel> {
  const dir = where || 'the picked directory/';
  const byName = (n: string) => files.find((f) => f.name === n);
  const configFile = byName('config.json');
  if (!configFile) throw new NotFoundError(`${dir}config.json`, 'missing: a Hugging Face model directory needs its config.json');
  const json = parseJson(`${dir}config.json`, configFile.bytes, 'config.json');
  if (!isRecord(json)) throw new FormatError(`${dir}config.json`, 'config.json is not a JSON object');
  const shards = files.filter((f) => f.name.endsWith('.safetensors'));
  if (shards.length !== 1) {
    throw new NotFoundError(dir, shards.length === 0 ? 'no .safetensors weights' : `${shards.length} safetensors shards: sharded checkpoints cannot be opened in the page yet (aser reads them)`);
  }
  const tokenizerJson = byName('tokenizer.json');
  if (!tokenizerJson) throw new NotFoundError(`${dir}tokenizer.json`, 'missing: pick the model\'s tokenizer.json (and tokenizer_config.json) with it');
  const tokenizerConfig = byName('tokenizer_config.json');
  const tokenizer = hfTokenizerFromJson(`${dir}tokenizer.json`, parseJson(`${dir}tokenizer.json`, tokenizerJson.bytes, 'tokenizer.json'),
    tokenizerConfig ? parseJson(`${dir}tokenizer_config.json`, tokenizerConfig.bytes, 'tokenizer_config.json') : {},
    { bosId: tokenIdField(json, 'bos_token_id'), eosId: tokenIdField(json, 'eos_token_id') });
  const config = parseHfConfig(`${dir}config.json`, json, { bosId: tokenizer.bosId, eosId: tokenizer.eosId });
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new FormatError(dir, `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize} (vocab_size): wrong tokenizer?`);
  }
  const weights = shards[0]!;
  const id = where ? where.replace(/\/$/, '').split('/').pop()! || 'hf-model' : 'hf-model';
  const st = SafetensorsFile.fromBytes(memoryByteSource(dir + weights.name, weights.bytes));
  try {
    const source = hfWeightsSource(dir, config, st, id);
    return { id, format: 'hf', source, tokenizer, sha256: await sha256Hex(weights.bytes), weightBytes: weights.bytes.byteLength };
  } catch (err) {
    st.close();
    throw err;
  }
}

/** A llama2.c checkpoint (or a GGUF) and its tokenizer, from picked files (or fetched ones). */
export async function modelFromFiles(files: NamedBytes[], where = ''): Promise<WebModel> {
  const gguf = files.find((f) => f.name.endsWith('.gguf'));
  if (gguf) return ggufModel(gguf, files, where);
  if (files.some((f) => f.name === 'config.json' || f.name.endsWith('.safetensors'))) return hfModel(files, where);
  const weights = files.find((f) => f.name.endsWith('.bin') && !/^tok/.test(f.name));
  if (!weights) throw new NotFoundError(where || 'the picked files', 'no model among them: pick a llama2.c checkpoint (.bin) and its tokenizer');
  const id = weights.name === 'model.bin' && where ? where.replace(/\/$/, '').split('/').pop()! : weights.name.replace(/\.bin$/, '');
  const source = llama2cSource(memoryByteSource(where + weights.name, weights.bytes), id);
  try {
    const tokenizer = tokenizerOf(files, where, source.config);
    return { id, format: 'llama2c', source, tokenizer, sha256: await sha256Hex(weights.bytes), weightBytes: weights.bytes.byteLength };
  } catch (err) {
    source.close();
    throw err;
  }
}

/**
 * A model on the site or at a URL: a directory URL (ending in /) holding a Hugging Face model
 * (config.json, model.safetensors, tokenizer.json) or model.bin and a tokenizer, the URL of a .bin
 * checkpoint with its tokenizer beside it, or the URL of a .gguf (its embedded vocabulary).
 */
export async function modelFromUrl(url: string): Promise<WebModel> {
  const dir = url.endsWith('/') ? url : url.slice(0, url.lastIndexOf('/') + 1);
  const weightsName = url.endsWith('/') ? 'model.bin' : url.slice(url.lastIndexOf('/') + 1);
  if (url.endsWith('/')) {
    const config = await fetchOptional(dir + 'config.json', 'config.json');
    if (config) {
      const files: NamedBytes[] = [{ name: 'config.json', bytes: config }];
      for (const [name, optional] of [['model.safetensors', false], ['tokenizer.json', false], ['tokenizer_config.json', true]] as const) {
        const bytes = optional ? await fetchOptional(dir + name, name) : await fetchBytes(dir + name, name);
        if (bytes) files.push({ name, bytes });
      }
      return modelFromFiles(files, dir);
    }
  }
  const files: NamedBytes[] = [{ name: weightsName, bytes: await fetchBytes(dir + weightsName, 'the model weights') }];
  if (weightsName.endsWith('.gguf')) return modelFromFiles(files, dir);
  const json = await fetchOptional(dir + 'tokenizer.json', 'tokenizer.json');
  if (json) {
    files.push({ name: 'tokenizer.json', bytes: json });
    const cfg = await fetchOptional(dir + 'tokenizer_config.json', 'tokenizer_config.json');
    if (cfg) files.push({ name: 'tokenizer_config.json', bytes: cfg });
  } else {
    const bin = await fetchOptional(dir + 'tokenizer.bin', 'tokenizer.bin');
    if (bin) files.push({ name: 'tokenizer.bin', bytes: bin });
  }
  return modelFromFiles(files, dir);
}

/**
 * An ASER artifact whose files `get` supplies (manifest.json first): the manifest's checks, the model's
 * sha256 against the one it was made from, every tensor file's size and sha256, then a reader.
 */
async function artifactFrom(where: string, get: (name: string, what: string) => Promise<Uint8Array | undefined>, modelSha256: string): Promise<ArtifactReader> {
  const manifestFile = where + MANIFEST_FILE;
  const raw = await get(MANIFEST_FILE, 'the artifact manifest');
  if (!raw) throw new NotFoundError(manifestFile, `not an ASER artifact: ${MANIFEST_FILE} is missing`);
  const manifest = validateManifest(manifestFile, parseJson(manifestFile, raw, 'artifact manifest'));
  checkArtifactModel(manifestFile, manifest, modelSha256);
  const files = new Map<string, Uint8Array>();
  for (const [name, entry] of Object.entries(manifest.files)) {
    const bytes = await get(name, `tensor file ${name}`);
    if (!bytes) throw new NotFoundError(where + name, `tensor file listed in ${MANIFEST_FILE} is missing (incomplete or damaged artifact)`);
    await checkArtifactFile(where + name, entry, bytes.byteLength, () => sha256Hex(bytes));
    files.set(name, bytes);
  }
  return artifactReader(manifest, (file) => SafetensorsFile.fromBytes(memoryByteSource(where + file, files.get(file)!), ARTIFACT_TENSOR_DTYPES));
}

/** An artifact directory at a URL (e.g. /artifact/ from `npm run web -- --artifact DIR`). */
export function artifactFromUrl(url: string, modelSha256: string): Promise<ArtifactReader> {
  const base = url.endsWith('/') ? url : `${url}/`;
  return artifactFrom(base, (name, what) => fetchOptional(base + name, what), modelSha256);
}

/** An artifact directory the user picked. */
export function artifactFromFiles(files: NamedBytes[], modelSha256: string): Promise<ArtifactReader> {
  return artifactFrom('artifact/', async (name) => files.find((f) => f.name === name)?.bytes, modelSha256);
}

/** A failure as one line for the page (loader errors already name their file). */
export function describeError(err: unknown): string {
  if (err instanceof LoadError) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
