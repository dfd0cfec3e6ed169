// In-memory ModelSources for tests: seeded random LLaMA/Qwen-shaped models (any config the executor
// supports, weights stored as f32/f16/bf16), and a view of a real llama2.c model converted to Hugging
// Face's rotate-half RoPE layout the way HF's conversion script permutes q/k rows.
import type { ModelConfig, ModelSource, TensorDType, TensorRef } from '../../core/model.js';
import { f32ToBf16Array, f32ToF16Array } from '../../core/dtype.js';
import { seededValues } from '../kernels/run-plan.js';

function tensorRef(name: string, shape: number[], values: Float32Array, dtype: TensorDType): TensorRef {
  const bytes = dtype === 'f32' ? new Uint8Array(values.buffer.slice(0)) : new Uint8Array((dtype === 'f16' ? f32ToF16Array(values) : f32ToBf16Array(values)).buffer);
  return { name, dtype, shape, byteLength: bytes.byteLength, read: () => bytes.slice() };
}

function sourceOf(id: string, config: ModelConfig, tensors: Map<string, TensorRef>): ModelSource {
  return {
    id, config,
    tensor(name) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${id}: no tensor ${name}`);
      return t;
    },
    has: (name) => tensors.has(name),
    names: () => [...tensors.keys()],
    close() {},
  };
}

export const SYNTHETIC_CONFIG: ModelConfig = {
  arch: 'llama', dim: 48, hiddenDim: 100, nLayers: 2, nHeads: 6, nKvHeads: 2, headDim: 8, vocabSize: 97, maxSeqLen: 96,
  normEps: 1e-6, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: true, bosId: 1, eosId: 2,
  ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
};

/** A seeded random model; weights scaled ~1/√in so activations stay O(1) and logits spread out. */
export function syntheticModel(config: ModelConfig = SYNTHETIC_CONFIG, seed = 1, dtype: TensorDType = 'f32'): ModelSource {
  const tensors = new Map<string, TensorRef>();
  let s = seed * 1000;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const v = seededValues(shape.reduce((a, b) => a * b, 1), s++, scale).map((x) => x + offset);
    tensors.set(name, tensorRef(name, shape, v, dtype));
  };
  const c = config;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  add('model.embed_tokens.weight', [c.vocabSize, c.dim], 1);
  add('model.norm.weight', [c.dim], 0.2, 1);
  if (!c.tiedEmbeddings) add('lm_head.weight', [c.vocabSize, c.dim], 2 / Math.sqrt(c.dim));
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    add(p + 'input_layernorm.weight', [c.dim], 0.2, 1);
    add(p + 'post_attention_layernorm.weight', [c.dim], 0.2, 1);
    add(p + 'self_attn.q_proj.weight', [qDim, c.dim], 3 / Math.sqrt(c.dim));
    add(p + 'self_attn.k_proj.weight', [kvDim, c.dim], 3 / Math.sqrt(c.dim));
    add(p + 'self_attn.v_proj.weight', [kvDim, c.dim], 1.7 / Math.sqrt(c.dim));
    add(p + 'self_attn.o_proj.weight', [c.dim, qDim], 1.7 / Math.sqrt(qDim));
    if (c.attentionBias) {
      add(p + 'self_attn.q_proj.bias', [qDim], 0.5);
      add(p + 'self_attn.k_proj.bias', [kvDim], 0.5);
      add(p + 'self_attn.v_proj.bias', [kvDim], 0.5);
    }
    add(p + 'mlp.gate_proj.weight', [c.hiddenDim, c.dim], 1.7 / Math.sqrt(c.dim));
    add(p + 'mlp.up_proj.weight', [c.hiddenDim, c.dim], 1.7 / Math.sqrt(c.dim));
    add(p + 'mlp.down_proj.weight', [c.dim, c.hiddenDim], 1.7 / Math.sqrt(c.hiddenDim));
  }
  return sourceOf(`synthetic-${seed}-${dtype}`, c, tensors);
}

/**
 * The same model with 'half' RoPE: q/k rows of each head reordered (2i + c → c·half + i), as HF's
 * convert_llama_weights_to_hf permute() does. Attention scores are unchanged, so logits must be too.
 */
export function asHalfStyle(model: ModelSource): ModelSource {
  const c = model.config;
  if (c.ropeStyle !== 'interleaved') throw new Error('asHalfStyle: model is not interleaved');
  const hd = c.headDim;
  const half = hd / 2;
  const permuteRows = (t: TensorRef): TensorRef => {
    const rowBytes = t.byteLength / t.shape[0]!;
    return {
      ...t,
      read() {
        const src = t.read();
        const dst = new Uint8Array(src.length);
        for (let r = 0; r < t.shape[0]!; r++) {
          const head = Math.floor(r / hd), within = r % hd;
          const i = Math.floor(within / 2), cc = within % 2;
          const to = head * hd + cc * half + i;
          dst.set(src.subarray(r * rowBytes, (r + 1) * rowBytes), to * rowBytes);
        }
        return dst;
      },
    };
  };
  const tensors = new Map<string, TensorRef>();
  for (const name of model.names()) {
    const t = model.tensor(name);
    tensors.set(name, /self_attn\.[qk]_proj\./.test(name) ? permuteRows(t) : t);
  }
  return sourceOf(`${model.id}+half`, { ...c, ropeStyle: 'half' }, tensors);
}
