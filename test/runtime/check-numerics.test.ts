// --check-numerics: a NaN/Inf injected into one weight of one layer is reported at that layer and op
// (the executor checks every op output of every block in execution order). Without the mode, the
// per-step check of the final logits still catches it, naming the step. Real WebGPU on llvmpipe.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource } from '../../core/model.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { SYNTHETIC_CONFIG, syntheticModel } from '../reference/synthetic-model.js';
import { NonFiniteError } from '../../runtime/errors.js';

const CONFIG = { ...SYNTHETIC_CONFIG, nLayers: 4 };

/** The synthetic model with `value` written into element `at` of one tensor. */
function poisoned(tensor: string, value: number, at = 5): ModelSource {
  const synth = syntheticModel(CONFIG, 3);
  return {
    ...synth,
    tensor(name) {
      const t = synth.tensor(name);
      if (name !== tensor) return t;
      return { ...t, read: () => { const b = t.read(); new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)[at] = value; return b; } };
    },
  };
}

async function firstError(model: ModelSource, opts: { checkNumerics?: boolean; fuseProjections?: boolean }): Promise<NonFiniteError> {
  const ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 32, ...opts });
  try {
    await ex.forward([1, 5, 9, 13]);
    await ex.logits();
  } catch (err) {
    expect(err).toBeInstanceOf(NonFiniteError);
    return err as NonFiniteError;
  } finally {
    ex.destroy();
  }
  throw new Error('no NonFiniteError');
}

describe('--check-numerics names the first bad layer and op', () => {
  it('an Inf weight in layer 2 down_proj, a NaN in layer 1 q_proj (fused and separate), a NaN in layer 3 gate_proj', async () => {
    const down = await firstError(poisoned('model.layers.2.mlp.down_proj.weight', Infinity), { checkNumerics: true });
    expect(down.where).toMatchObject({ layer: 2, op: 'down_proj', step: 1 });
    expect(down.message).toMatch(/NaN\/Inf in layer 2 at down_proj output .*step 1/);

    const q = poisoned('model.layers.1.self_attn.q_proj.weight', NaN);
    expect((await firstError(q, { checkNumerics: true })).where).toMatchObject({ layer: 1, op: 'qkv_proj' });
    expect((await firstError(q, { checkNumerics: true, fuseProjections: false })).where).toMatchObject({ layer: 1, op: 'q_proj' });

    const gate = await firstError(poisoned('model.layers.3.mlp.gate_proj.weight', NaN), { checkNumerics: true, fuseProjections: false });
    expect(gate.where).toMatchObject({ layer: 3, op: 'gate_proj' });
  });

  it('without the mode the logits check still fails, naming the step and pointing at --check-numerics', async () => {
    const err = await firstError(poisoned('model.layers.2.mlp.down_proj.weight', Infinity), {});
    expect(err.where.layer).toBeUndefined();
    expect(err.message).toMatch(/logits are NaN\/Inf at position 3 \(step 1,.*--check-numerics/);
  });

  it('changes nothing on a healthy model: same logits and NLL with and without the checks', async () => {
    const gpu = await testGpu();
    const model = syntheticModel(CONFIG, 3);
    const plain = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 32 });
    const checked = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 32, checkNumerics: true });
    try {
      const tokens = [1, 7, 3, 9, 4, 11];
      for (const ex of [plain, checked]) await ex.forward(tokens);
      expect(Array.from(await checked.logits())).toEqual(Array.from(await plain.logits()));
      for (const ex of [plain, checked]) ex.reset();
      expect(Array.from(await checked.nll(tokens, [7, 3, 9, 4, 11, 2]))).toEqual(Array.from(await plain.nll(tokens, [7, 3, 9, 4, 11, 2])));
    } finally {
      plain.destroy();
      checked.destroy();
    }
  });

  it('aser ppl --check-numerics on a stories260K copy with a NaN in layer 3 down_proj names layer 3 in one line', () => {
    const model = '../shared/models/stories260K/model.bin';
    const c = loadLlama2c(model).config;
    // v1 layout: 256-byte header, norms, final norm, embedding, wq wk wv wo, w1 (gate), w2 (down), w3.
    const kv = c.nKvHeads * c.headDim;
    const before = 2 * c.nLayers * c.dim + c.dim + c.vocabSize * c.dim + c.nLayers * (2 * c.dim * c.dim + 2 * kv * c.dim) + c.nLayers * c.hiddenDim * c.dim;
    const bytes = readFileSync(model);
    const at = 256 + 4 * (before + 3 * c.dim * c.hiddenDim + 17);
    bytes.writeFloatLE(NaN, at);
    const file = join(mkdtempSync(join(tmpdir(), 'aser-nan-')), 'model.bin');
    writeFileSync(file, bytes);
    const tok = '../shared/models/stories260K/tokenizer.bin';
    const run = (...extra: string[]) => spawnSync(process.execPath, ['dist/cli/aser.js', 'ppl', '--model', file, '--tokenizer', tok, '--ctx', '64', '--max-windows', '2', ...extra], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
    const checked = run('--check-numerics');
    expect(checked.status).toBe(1);
    expect(checked.stderr).toMatch(/NaN\/Inf in layer 3 at down_proj output/);
    expect(checked.stderr).not.toMatch(/\n\s+at /);
    const plain = run();
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/logits are NaN\/Inf .*step 1/);
  });
});
