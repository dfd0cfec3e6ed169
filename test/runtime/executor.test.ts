import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu, NO_SHADER_F16 } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { openNodeDevice } from '../../node/gpu.js';
import { Executor } from '../../runtime/executor.js';
import { captureLinearInputs } from '../../quant/capture.js';
import { createDenseLinear } from '../../runtime/dense-linear.js';
import { PipelineCache } from '../../runtime/pipelines.js';
import type { LinearOp } from '../../runtime/linear.js';
import type { LinearInputKind, ModelSource } from '../../core/model.js';
import { CpuLlama } from '../reference/cpu-llama.js';
import { asHalfStyle, syntheticModel } from '../reference/synthetic-model.js';
import { maxAbsDiff } from '../kernels/run-plan.js';
import { ContextOverflowError, ExecutorError, NonFiniteError } from '../../runtime/errors.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER = '../shared/tokenizers/tok512/tokenizer.bin';
// f32 GPU vs float64 CPU on logits of magnitude ≤ 20: f32 rounding through 5 layers stays ~1e-5.
const F32_TOL = 1e-4;
// f16 weights and KV cache (11-bit mantissa): logits move by up to 0.015 on stories260K (measured),
// NLLs by 0.002; the bounds leave about 3x margin.
const F16_TOL = 0.05;
const F16_NLL_TOL = 0.01;

let model: ModelSource;
let ref: CpuLlama;
let prompt: number[];
let refRows: Float64Array[];

beforeAll(() => {
  model = loadLlama2c(MODEL, 'stories260k');
  ref = new CpuLlama(model);
  const tok = loadLlama2cTokenizer(TOKENIZER, 512);
  prompt = tok.encode('Once upon a time, there was a little dog named Max. He liked to run in the park with his friend Sue.', { bos: true });
  refRows = ref.logits(prompt);
});
afterAll(() => model.close());

describe('executor on stories260K (f32)', () => {
  let ex: Executor;
  beforeAll(async () => {
    ex = await Executor.create(await testGpu(), model, { dtype: 'f32' });
  });
  afterAll(() => ex.destroy());

  it('prefill logits equal the float64 reference', async () => {
    expect(prompt.length).toBeGreaterThan(20);
    ex.reset();
    await ex.forward(prompt);
    expect(ex.position).toBe(prompt.length);
    expect(maxAbsDiff(await ex.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
  });

  it('token-by-token decode equals the reference at every position', async () => {
    ex.reset();
    let worst = 0;
    for (let i = 0; i < prompt.length; i++) {
      await ex.forward([prompt[i]!]);
      worst = Math.max(worst, maxAbsDiff(await ex.logits(), refRows[i]!));
    }
    expect(worst).toBeLessThan(F32_TOL);
  });

  it('decode after a partial prefill equals the full prefill', async () => {
    ex.reset();
    await ex.forward(prompt);
    const full = await ex.logits();
    for (const split of [1, 7, prompt.length - 1]) {
      ex.reset();
      await ex.forward(prompt.slice(0, split));
      await ex.forward(prompt.slice(split));
      expect(maxAbsDiff(await ex.logits(), full)).toBeLessThan(1e-5);
    }
  });

  it('computes per-token NLL on the GPU equal to the reference', async () => {
    ex.reset();
    const tokens = prompt.slice(0, -1);
    const targets = prompt.slice(1);
    const got = await ex.nll(tokens, targets);
    expect(maxAbsDiff(got, ref.nll(tokens, targets))).toBeLessThan(F32_TOL);
    // After nll() the last row's logits are available, as after forward().
    expect(maxAbsDiff(await ex.logits(), refRows[tokens.length - 1]!)).toBeLessThan(F32_TOL);
  });

  it('greedy decoding from BOS reproduces the reference and the known TinyStories answer', async () => {
    const want = ref.greedy([1], 20);
    ex.reset();
    const got: number[] = [];
    await ex.forward([1]);
    for (let i = 0; i < 20; i++) {
      const z = await ex.logits();
      let best = 0;
      for (let v = 1; v < z.length; v++) if (z[v]! > z[best]!) best = v;
      got.push(best);
      await ex.forward([best]);
    }
    expect(got).toEqual(want);
    const text = loadLlama2cTokenizer(TOKENIZER, 512).decode(got);
    expect('Once upon a time, there was a little girl named Lily. She loved to play outside in the park.'.startsWith(text.trim())).toBe(true);
    expect(text.trim().length).toBeGreaterThan(60);
  });

  it('rewinds the cache to score another continuation of a shared prefix', async () => {
    ex.reset();
    await ex.forward(prompt.slice(0, 10));
    await ex.forward([5, 6, 7]);
    ex.rewind(10);
    expect(ex.position).toBe(10);
    await ex.forward(prompt.slice(10));
    expect(maxAbsDiff(await ex.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
    expect(() => ex.rewind(prompt.length + 1)).toThrow(/rewind/);
  });

  it('rejects sequences beyond the KV cache and bad token ids with clear errors', async () => {
    ex.reset();
    await expect(ex.forward(new Array(513).fill(5))).rejects.toThrow(ContextOverflowError);
    await expect(ex.forward(new Array(513).fill(5))).rejects.toThrow(/KV cache holds 512/);
    await expect(ex.forward([1, 512])).rejects.toThrow(/token 1 = 512 is not a token id/);
    await expect(ex.forward([])).rejects.toThrow(/no tokens/);
    ex.reset();
    await ex.forward(new Array(500).fill(5));
    await expect(ex.forward(new Array(13).fill(5))).rejects.toThrow(/13 tokens at position 500/);
    expect(ex.position).toBe(500);
  });

  it('reports the four linear inputs of every layer for calibration', async () => {
    const tokens = prompt.slice(0, 12);
    const want = new Map<string, number[]>();
    const s = ref.session((l, kind, x) => {
      const key = `${l}/${kind}`;
      want.set(key, [...(want.get(key) ?? []), ...x]);
    });
    for (const t of tokens) s.step(t);
    const got = new Map<string, Float32Array>();
    await captureLinearInputs(ex, tokens, (l, kind, x, firstRow) => {
      expect(firstRow).toBe(0);
      got.set(`${l}/${kind}`, x);
    });
    expect(got.size).toBe(5 * 4);
    for (const [key, x] of got) expect(maxAbsDiff(x, want.get(key)!), key).toBeLessThan(F32_TOL);
    expect(ex.position).toBe(tokens.length);
    await expect(ex.logits()).rejects.toThrow(/no forward/);
  });
});

describe('executor chunking', () => {
  it('chunked prefill, chunked calibration and sub-chunked NLL match the unchunked run', async () => {
    const gpu = await testGpu();
    const ex = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 64, maxBatchTokens: 7, headRows: 3 });
    try {
      await ex.forward(prompt);
      expect(maxAbsDiff(await ex.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
      ex.reset();
      const tokens = prompt.slice(0, -1);
      const targets = prompt.slice(1).map((t, i) => (i % 5 === 2 ? -1 : t)); // some rows unscored
      const got = await ex.nll(tokens, targets);
      const want = ref.nll(tokens, prompt.slice(1));
      targets.forEach((t, i) => (t < 0 ? expect(got[i]).toBeNaN() : expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(F32_TOL)));
      // The last row's logits come from the last sub-chunk of the nll classifier.
      expect(maxAbsDiff(await ex.logits(), refRows[tokens.length - 1]!)).toBeLessThan(F32_TOL);
      const rows: Record<LinearInputKind, number> = { attn_in: 0, attn_out: 0, mlp_in: 0, mlp_act: 0 };
      await captureLinearInputs(ex, prompt.slice(0, 10), (l, kind, x, firstRow) => {
        if (l === 0) rows[kind] += x.length / (kind === 'mlp_act' ? 172 : 64);
        expect(firstRow % 7).toBe(0);
      });
      expect(rows).toEqual({ attn_in: 10, attn_out: 10, mlp_in: 10, mlp_act: 10 });
    } finally {
      ex.destroy();
    }
  });
});

describe('executor projections', () => {
  it('separate q/k/v and gate/up projections, and linears from linearFactory, give the same logits', async () => {
    const gpu = await testGpu();
    // Also the workgroup-per-row attention (the GPU decode kernel) for every chunk size.
    const separate = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 64, fuseProjections: false, attention: 'keys' });
    try {
      await separate.forward(prompt.slice(0, 5));
      await separate.forward(prompt.slice(5));
      expect(maxAbsDiff(await separate.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
    } finally {
      separate.destroy();
    }
    // The factory supplies layer 1's q_proj and layer 3's up_proj and down_proj: those layers run
    // separately, the others fused; the factory sees every block linear with its weights.
    const cache = new PipelineCache(gpu.device);
    const seen: string[] = [];
    const made: LinearOp[] = [];
    const mixed = await Executor.create(gpu, model, {
      dtype: 'f32', maxSeqLen: 64, pipelines: cache,
      linearFactory: (layer, name, w) => {
        seen.push(`${layer}.${name}`);
        expect(w.weight.length).toBe(w.inFeatures * w.outFeatures);
        if ((layer === 1 && name === 'self_attn.q_proj') || (layer === 3 && name.startsWith('mlp.') && name !== 'mlp.gate_proj')) {
          const op = createDenseLinear(gpu, cache, w, { label: `custom/${layer}.${name}`, dtype: 'f32', maxTokens: 512 });
          made.push(op);
          return op;
        }
        return undefined;
      },
    });
    try {
      expect(seen.length).toBe(5 * 7);
      expect(made.length).toBe(3);
      await mixed.forward(prompt);
      expect(maxAbsDiff(await mixed.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
    } finally {
      mixed.destroy();
    }
  });
});

describe('executor f16', () => {
  it('f16 weights and KV cache stay within tolerance and keep the greedy story', async (ctx) => {
    const gpu = await testGpu();
    ctx.skip(!gpu.features.shaderF16, NO_SHADER_F16);
    const ex = await Executor.create(gpu, model, { dtype: 'f16' });
    try {
      expect(ex.kvDtype).toBe('f16');
      let worst = 0;
      await ex.forward(prompt.slice(0, 1));
      worst = Math.max(worst, maxAbsDiff(await ex.logits(), refRows[0]!));
      await ex.forward(prompt.slice(1));
      worst = Math.max(worst, maxAbsDiff(await ex.logits(), refRows[prompt.length - 1]!));
      expect(worst).toBeLessThan(F16_TOL);
      ex.reset();
      const tokens = prompt.slice(0, -1);
      const got = await ex.nll(tokens, prompt.slice(1));
      const want = ref.nll(tokens, prompt.slice(1));
      expect(maxAbsDiff(got, want)).toBeLessThan(F16_NLL_TOL);
      ex.reset();
      const greedy: number[] = [];
      await ex.forward([1]);
      for (let i = 0; i < 20; i++) {
        const z = await ex.logits();
        greedy.push(z.indexOf(Math.max(...z)));
        await ex.forward([greedy.at(-1)!]);
      }
      expect(greedy).toEqual(ref.greedy([1], 20));
    } finally {
      ex.destroy();
    }
  });
});

describe('executor on other layouts', () => {
  it('rotate-half RoPE on HF-permuted q/k rows gives the interleaved model’s logits', async () => {
    const ex = await Executor.create(await testGpu(), asHalfStyle(model), { dtype: 'f32', maxSeqLen: 64 });
    try {
      await ex.forward(prompt);
      expect(maxAbsDiff(await ex.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
    } finally {
      ex.destroy();
    }
  });

  for (const dtype of ['f32', 'bf16'] as const) {
    it(`GQA 3:1, q/k/v bias, untied head, llama3 rope scaling, half RoPE (${dtype} tensors)`, async () => {
      const synth = syntheticModel(undefined, 3, dtype);
      const cpu = new CpuLlama(synth);
      const tokens = Array.from({ length: 80 }, (_, i) => (i * 37 + 11) % 97);
      const want = cpu.nll(tokens.slice(0, -1), tokens.slice(1));
      const wantLast = cpu.logits(tokens).at(-1)!;
      const ex = await Executor.create(await testGpu(), synth, { dtype: 'f32', maxBatchTokens: 32 });
      try {
        await ex.forward(tokens);
        expect(maxAbsDiff(await ex.logits(), wantLast)).toBeLessThan(F32_TOL);
        ex.reset();
        expect(maxAbsDiff(await ex.nll(tokens.slice(0, -1), tokens.slice(1)), want)).toBeLessThan(F32_TOL);
      } finally {
        ex.destroy();
      }
    });
  }
});

describe('executor NaN/Inf guard', () => {
  it('names the position when the final logits are not finite, in logits() and in nll()', async () => {
    const synth = syntheticModel(undefined, 4);
    const poisoned: ModelSource = {
      ...synth,
      tensor(name) {
        const t = synth.tensor(name);
        if (name !== 'lm_head.weight') return t;
        return { ...t, read: () => { const b = t.read(); new Float32Array(b.buffer, b.byteOffset, 4)[2] = NaN; return b; } };
      },
    };
    const ex = await Executor.create(await testGpu(), poisoned, { dtype: 'f32', maxSeqLen: 32 });
    try {
      await ex.forward([1, 2, 3]);
      await expect(ex.logits()).rejects.toThrow(NonFiniteError);
      ex.reset();
      await expect(ex.nll([1, 2, 3], [2, 3, 4])).rejects.toThrow(/NaN\/Inf at position 0 \(nll step/);
    } finally {
      ex.destroy();
    }
  });
});

describe('executor without shader-f16 / subgroups', () => {
  it('runs f32 and refuses f16 with a clear error', async () => {
    const gpu = await openNodeDevice({ disable: ['subgroups', 'shader-f16'] });
    try {
      await expect(Executor.create(gpu, model, { dtype: 'f16' })).rejects.toThrow(ExecutorError);
      await expect(Executor.create(gpu, model, { dtype: 'f16' })).rejects.toThrow(/shader-f16/);
      const ex = await Executor.create(gpu, model, { dtype: 'f32', maxSeqLen: 64 });
      await ex.forward(prompt);
      expect(maxAbsDiff(await ex.logits(), refRows[prompt.length - 1]!)).toBeLessThan(F32_TOL);
      ex.destroy();
    } finally {
      gpu.device.destroy();
    }
  });
});
