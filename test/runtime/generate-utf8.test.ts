// Generation streams whole characters when the model's tokens split them: a hand-built model whose
// greedy continuation of each token is the next token of a fixed LLaMA-3 token sequence (byte-level
// tokens that cut 𠀋 in three pieces, then 家族 and naïve) runs through the executor, generate() and the streaming
// detokenizer exactly as `aser generate` does; the streamed text must be the original string.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHfModel } from '../../loaders/hf-model.js';
import { loadHfTokenizer } from '../../loaders/hf-tokenizer.js';
import { writeSafetensors, type SafetensorsWriteTensor } from '../../loaders/safetensors.js';
import { synthHfConfigJson } from '../../loaders/synth.js';
import { createDetokenizer } from '../../loaders/detokenizer.js';
import { Executor } from '../../runtime/executor.js';
import { generate } from '../../runtime/generate.js';
import type { ModelConfig } from '../../core/model.js';
import { testGpu } from '../helpers/gpu.js';

const llama3 = loadHfTokenizer('../shared/tokenizers/llama3/tokenizer.json');
const TEXT = ' 𠀋 家族 naïve';
const DIM = 64;
const CONFIG: ModelConfig = {
  arch: 'llama', dim: DIM, hiddenDim: 64, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 16, vocabSize: llama3.vocabSize, maxSeqLen: 64,
  normEps: 1e-5, ropeTheta: 500000, ropeStyle: 'half', tiedEmbeddings: false, attentionBias: false, bosId: llama3.bosId, eosId: llama3.eosId,
};

let dir: string;
let chain: number[];
beforeAll(() => {
  chain = llama3.encode(TEXT, { bos: false });
  dir = mkdtempSync(join(tmpdir(), 'aser-utf8-'));
  // Token i of [BOS, ...chain] is embedded as the one-hot e_i; lm_head maps e_i to token i+1 (then EOS).
  // The block's o_proj/down_proj are zero, so the residual stream is the embedding itself.
  const seq = [CONFIG.bosId, ...chain];
  const V = CONFIG.vocabSize;
  const embed = new Float32Array(V * DIM);
  const head = new Float32Array(V * DIM);
  seq.forEach((id, i) => {
    embed[id * DIM + i] = 1;
    head[(seq[i + 1] ?? CONFIG.eosId) * DIM + i] = 10;
  });
  const f32 = (name: string, shape: number[], a: Float32Array): SafetensorsWriteTensor => ({ name, dtype: 'F32', shape, data: new Uint8Array(a.buffer) });
  const small = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.05);
  const p = 'model.layers.0.';
  writeSafetensors(join(dir, 'model.safetensors'), [
    f32('model.embed_tokens.weight', [V, DIM], embed),
    f32('lm_head.weight', [V, DIM], head),
    f32('model.norm.weight', [DIM], new Float32Array(DIM).fill(1)),
    f32(p + 'input_layernorm.weight', [DIM], new Float32Array(DIM).fill(1)),
    f32(p + 'post_attention_layernorm.weight', [DIM], new Float32Array(DIM).fill(1)),
    f32(p + 'self_attn.q_proj.weight', [DIM, DIM], small(DIM * DIM, 1)),
    f32(p + 'self_attn.k_proj.weight', [DIM, DIM], small(DIM * DIM, 2)),
    f32(p + 'self_attn.v_proj.weight', [DIM, DIM], small(DIM * DIM, 3)),
    f32(p + 'self_attn.o_proj.weight', [DIM, DIM], new Float32Array(DIM * DIM)),
    f32(p + 'mlp.gate_proj.weight', [64, DIM], small(64 * DIM, 4)),
    f32(p + 'mlp.up_proj.weight', [64, DIM], small(64 * DIM, 5)),
    f32(p + 'mlp.down_proj.weight', [DIM, 64], new Float32Array(64 * DIM)),
  ]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(synthHfConfigJson(CONFIG)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('generation across multi-byte characters (LLaMA-3 tokenizer)', () => {
  it('the token sequence really splits characters across tokens', () => {
    expect(chain.length).toBeLessThan(DIM); // one one-hot channel per position
    expect(new Set(chain).size).toBe(chain.length); // distinct, so "next token" is a function of the token
    const broken = chain.filter((id) => llama3.decode([id]).includes('\uFFFD'));
    expect(broken.length).toBe(3);
    expect(llama3.decode(chain)).toBe(TEXT);
  });

  {
    // One run (the 128256-row classifier is slow on llvmpipe); the host embedding path is the new one.
    const embedding = 'host';
    it('streams the exact text, no U+FFFD in any piece', async () => {
      const { source } = loadHfModel(dir, { tokenizer: llama3 });
      const ex = await Executor.create(await testGpu(), source, { dtype: 'f32', maxSeqLen: 64, embedding });
      try {
        const prompt = [CONFIG.bosId];
        const detok = createDetokenizer(llama3, prompt);
        const pieces: string[] = [];
        const result = await generate(ex, prompt, { maxTokens: chain.length + 1, temperature: 0, onToken: (id) => void pieces.push(detok.push(id)) });
        pieces.push(detok.flush());
        expect(result.tokens).toEqual(chain);
        expect(result.stopReason).toBe('stop');
        expect(pieces.join('')).toBe(TEXT);
        for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
        expect(pieces.slice(0, 3)).toEqual(['', '', ' 𠀋']); // bytes held back until the character is whole
        expect(pieces).toContain(' 家');
      } finally {
        ex.destroy();
        source.close();
      }
    });
  }
});
