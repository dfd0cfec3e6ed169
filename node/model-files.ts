// `aser convert` and `aser export` as library calls: a model named as on every command (preset or
// path, loaders/registry.ts) written in another format (loaders/convert.ts, loaders/gguf-writer.ts).
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { convertLlama2cToHf } from '../loaders/convert.js';
import { exportGguf, type GgufExportDType } from '../loaders/gguf-writer.js';
import { ggufVocabForExport } from '../loaders/gguf-tokenizer.js';
import type { GgufModelSource } from '../loaders/gguf.js';
import { resolveModel } from '../loaders/registry.js';
import { UsageError } from '../core/errors.js';

/** A llama2.c model (preset or .bin) as a Hugging Face directory; the tokenizer.json from `tokenizerDir` (default: next to the model). */
export function convertModelToHf(model: string, out: string, opts: { tokenizerDir?: string; overwrite: boolean }) {
  const resolved = resolveModel(model);
  resolved.source.close();
  if (resolved.format !== 'llama2c') throw new UsageError(`${model} is a ${resolved.format} model, not llama2.c`);
  return convertLlama2cToHf(resolved.path, opts.tokenizerDir ?? dirname(resolved.path), out, { overwrite: opts.overwrite });
}

/** A model as a GGUF file llama.cpp loads, with its vocabulary embedded; says where the vocabulary came from. */
export function exportModelGguf(model: string, out: string, opts: { dtype: GgufExportDType; tokenizer?: string; overwrite: boolean }) {
  if (existsSync(out) && !opts.overwrite) throw new UsageError(`${out} already exists`, 'pass --overwrite to replace it');
  const resolved = resolveModel(model, { tokenizer: opts.tokenizer });
  try {
    const c = resolved.source.config;
    const gguf = resolved.format === 'gguf' ? (resolved.source as GgufModelSource).gguf : undefined;
    const { vocab, from } = ggufVocabForExport(resolved.path, c, { tokenizer: opts.tokenizer, gguf });
    const result = exportGguf(resolved.source, vocab, out, { dtype: opts.dtype });
    return { ...result, vocabulary: from, model: resolved.source.id };
  } finally {
    resolved.source.close();
  }
}
