// llama2.c checkpoint -> Hugging Face directory (config.json, model.safetensors in f32, tokenizer files),
// written atomically as a directory. llama2.c rotates adjacent pairs (2i, 2i+1) of each head; HF rotates
// (i, i + headDim/2), so q_proj/k_proj rows are permuted exactly as HF's convert_llama_weights_to_hf.py
// `permute` does; every other tensor is copied byte for byte.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig, ModelSource } from '../core/model.js';
import { writeBytesAtomic, writeDirAtomic } from './atomic.js';
import { FormatError, NotFoundError } from './errors.js';
import { toHfConfigJson } from './hf-config.js';
import { requiredTensorShapes } from './hf-model.js';
import { loadHfTokenizer } from './hf-tokenizer.js';
import { loadLlama2c } from './llama2c.js';
import { writeSafetensors, type SafetensorsWriteTensor } from './safetensors.js';

/**
 * Rows of a [nHeads*headDim, cols] projection from interleaved-pair to rotate-half order, per head:
 * HF row h*headDim + p*(headDim/2) + j takes source row h*headDim + 2j + p (p in {0,1}), i.e. torch's
 * w.view(nHeads, headDim/2, 2, cols).transpose(1, 2).reshape(rows, cols). `elemBytes` is the dtype width.
 */
export function interleavedToHalfRows(data: Uint8Array, rows: number, cols: number, nHeads: number, elemBytes: number): Uint8Array {
  if (rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) throw new RangeError(`cannot split ${rows} rows into ${nHeads} heads of even size`);
  const rowBytes = cols * elemBytes;
  if (data.byteLength !== rows * rowBytes) throw new RangeError(`expected ${rows * rowBytes} bytes for [${rows}, ${cols}], got ${data.byteLength}`);
  const headDim = rows / nHeads;
  const half = headDim / 2;
  const out = new Uint8Array(data.byteLength);
  for (let h = 0; h < nHeads; h++) {
    for (let p = 0; p < 2; p++) {
      for (let j = 0; j < half; j++) {
        const dst = h * headDim + p * half + j;
        const src = h * headDim + 2 * j + p;
        out.set(data.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      }
    }
  }
  return out;
}

export interface ConvertOptions {
  /** Replace an existing output directory (default false). */
  overwrite?: boolean;
}

export interface ConvertResult {
  dir: string;
  config: ModelConfig;
  tensorCount: number;
  /** Size of model.safetensors. */
  weightBytes: number;
}

/**
 * Writes `source` as a Hugging Face directory with the tokenizer files from `tokenizerDir`. Interleaved
 * q/k rows are permuted to rotate-half, so the result has ropeStyle 'half' like every HF checkpoint.
 */
export function writeHfModelDir(source: ModelSource, tokenizerDir: string, outDir: string, options: ConvertOptions = {}): ConvertResult {
  const tokenizerJson = join(tokenizerDir, 'tokenizer.json');
  const tokenizerConfig = join(tokenizerDir, 'tokenizer_config.json');
  if (!existsSync(tokenizerJson)) throw new NotFoundError(tokenizerJson, 'missing: the conversion copies tokenizer.json (and tokenizer_config.json) from this directory');
  // Fails early on a tokenizer that does not fit the model (the converted directory is checked the same way on load).
  const tokenizer = loadHfTokenizer(tokenizerDir, { bosId: source.config.bosId, eosId: source.config.eosId });
  if (tokenizer.vocabSize > source.config.vocabSize) {
    throw new FormatError(tokenizerJson, `has ${tokenizer.vocabSize} tokens but the model only ${source.config.vocabSize}: not this model's tokenizer`);
  }

  const c = source.config;
  const config: ModelConfig = { ...c, ropeStyle: 'half' };
  const permute = c.ropeStyle === 'interleaved';
  const tensors: SafetensorsWriteTensor[] = requiredTensorShapes(c).map(({ name }) => {
    const t = source.tensor(name);
    const heads = name.endsWith('q_proj.weight') ? c.nHeads : name.endsWith('k_proj.weight') ? c.nKvHeads : 0;
    const elemBytes = t.byteLength / t.shape.reduce((a, b) => a * b, 1);
    return {
      name, dtype: t.dtype, shape: t.shape,
      data: permute && heads > 0 ? () => interleavedToHalfRows(t.read(), t.shape[0]!, t.shape[1]!, heads, elemBytes) : () => t.read(),
    };
  });
  const weightsDtype = tensors.every((t) => t.dtype === 'f32') ? 'float32' : tensors.every((t) => t.dtype === 'f16') ? 'float16' : 'bfloat16';

  writeDirAtomic(outDir, (tmp) => {
    writeBytesAtomic(join(tmp, 'config.json'), JSON.stringify(toHfConfigJson(config, weightsDtype), null, 2) + '\n');
    // transformers refuses safetensors files without format metadata.
    writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt', source: source.id });
    writeBytesAtomic(join(tmp, 'tokenizer.json'), readFileSync(tokenizerJson));
    if (existsSync(tokenizerConfig)) writeBytesAtomic(join(tmp, 'tokenizer_config.json'), readFileSync(tokenizerConfig));
  }, options);
  return { dir: outDir, config, tensorCount: tensors.length, weightBytes: statSync(join(outDir, 'model.safetensors')).size };
}

/** llama2.c `.bin` + an HF tokenizer directory (tokenizer.json, tokenizer_config.json) -> HF model directory. */
export function convertLlama2cToHf(modelPath: string, tokenizerDir: string, outDir: string, options: ConvertOptions = {}): ConvertResult {
  const source = loadLlama2c(modelPath);
  try {
    return writeHfModelDir(source, tokenizerDir, outDir, options);
  } finally {
    source.close();
  }
}
