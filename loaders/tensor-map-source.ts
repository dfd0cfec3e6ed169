// The ModelSource shape shared by single-file loaders (llama2.c, GGUF): a name → TensorRef map over one
// open file, where a missing name is a FormatError naming the file.
import type { ModelConfig, ModelSource, TensorRef } from '../core/model.js';
import { FormatError } from './errors.js';

export function tensorMapSource(file: string, id: string, config: ModelConfig, refs: Map<string, TensorRef>, close: () => void): ModelSource {
  return {
    id,
    config,
    tensor(name) {
      const t = refs.get(name);
      if (!t) throw new FormatError(file, `no tensor named ${name}`);
      return t;
    },
    has: (name) => refs.has(name),
    names: () => [...refs.keys()],
    close,
  };
}
