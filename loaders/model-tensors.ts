// The tensors a model config implies and the checks every weight reader runs against them. Portable.
import type { ModelConfig } from '../core/model.js';
import { layerTensorName } from '../core/model.js';
import { FormatError } from './errors.js';

/** Every tensor a model with `config` needs, with its shape (linear weights [out, in]). */
export function requiredTensorShapes(config: ModelConfig): Array<{ name: string; shape: number[] }> {
  const { dim, hiddenDim, vocabSize, nHeads, nKvHeads, headDim } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const out = [
    { name: 'model.embed_tokens.weight', shape: [vocabSize, dim] },
    { name: 'model.norm.weight', shape: [dim] },
  ];
  if (!config.tiedEmbeddings) out.push({ name: 'lm_head.weight', shape: [vocabSize, dim] });
  for (let l = 0; l < config.nLayers; l++) {
    const t = (suffix: string, shape: number[]) => out.push({ name: layerTensorName(l, suffix), shape });
    t('input_layernorm.weight', [dim]);
    t('post_attention_layernorm.weight', [dim]);
    t('self_attn.q_proj.weight', [qDim, dim]);
    t('self_attn.k_proj.weight', [kvDim, dim]);
    t('self_attn.v_proj.weight', [kvDim, dim]);
    t('self_attn.o_proj.weight', [dim, qDim]);
    if (config.attentionBias) {
      t('self_attn.q_proj.bias', [qDim]);
      t('self_attn.k_proj.bias', [kvDim]);
      t('self_attn.v_proj.bias', [kvDim]);
    }
    t('mlp.gate_proj.weight', [hiddenDim, dim]);
    t('mlp.up_proj.weight', [hiddenDim, dim]);
    t('mlp.down_proj.weight', [dim, hiddenDim]);
  }
  return out;
}

/** How many tensors `config` implies, computed without listing them (a lying config may imply billions). */
export function requiredTensorCount(config: ModelConfig): number {
  return 2 + (config.tiedEmbeddings ? 0 : 1) + config.nLayers * (9 + (config.attentionBias ? 3 : 0));
}

/**
 * Refuses a config that implies far more tensors than the weights hold, before anything is listed or
 * allocated per layer (num_hidden_layers = 2^40 must not become a 2^40-entry list). A few missing
 * tensors pass here, so checkRequiredTensors can name them.
 */
export function checkTensorCount(where: string, config: ModelConfig, available: number): void {
  const need = requiredTensorCount(config);
  if (need > 2 * available + 64) {
    throw new FormatError(where, `the config implies ${need} tensors (${config.nLayers} layers), the weights hold ${available}: config and weights do not belong together`);
  }
}

/** Throws one FormatError listing every missing tensor and every shape mismatch (the first few of each). */
export function checkRequiredTensors(where: string, config: ModelConfig, has: (name: string) => boolean, shapeOf: (name: string) => number[], available?: number): void {
  if (available !== undefined) checkTensorCount(where, config, available);
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const { name, shape } of requiredTensorShapes(config)) {
    if (!has(name)) missing.push(name);
    else if (JSON.stringify(shapeOf(name)) !== JSON.stringify(shape)) mismatched.push(`${name} is [${shapeOf(name)}], the config implies [${shape}]`);
  }
  const list = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? ` and ${xs.length - 5} more` : '');
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} tensor(s): ${list(missing)}`);
  if (mismatched.length) problems.push(`wrong shape: ${list(mismatched)}`);
  if (problems.length) throw new FormatError(where, `weights do not match config.json: ${problems.join('; ')}`);
}
