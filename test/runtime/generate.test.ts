import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { Executor } from '../../runtime/executor.js';
import { generate } from '../../runtime/generate.js';
import type { ModelSource } from '../../core/model.js';
import { CpuLlama } from '../reference/cpu-llama.js';
import { ContextOverflowError, NonFiniteError } from '../../runtime/errors.js';
import { Sampler } from '../../runtime/sampler.js';
import { main } from '../../cli/main.js';

let model: ModelSource;
let ex: Executor;
let greedy20: number[];

beforeAll(async () => {
  model = loadLlama2c('../shared/models/stories260K/model.bin', 'stories260k');
  greedy20 = new CpuLlama(model).greedy([1], 20);
  ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: 64 });
});
afterAll(() => {
  ex.destroy();
  model.close();
});

describe('generate', () => {
  it('streams the greedy tokens of the reference', async () => {
    const streamed: number[] = [];
    const r = await generate(ex, [1], { maxTokens: 20, onToken: (id, i) => void expect(i).toBe(streamed.push(id) - 1) });
    expect(r.tokens).toEqual(greedy20);
    expect(streamed).toEqual(greedy20);
    expect(r.stopReason).toBe('max_tokens');
    expect(ex.position).toBe(20); // BOS + 19 fed back; the last token is not forwarded
  });

  it('is reproducible per seed when sampling', async () => {
    const opts = { maxTokens: 40, temperature: 1.5, topP: 0.95, seed: 1234 };
    const a = await generate(ex, [1], opts);
    const b = await generate(ex, [1], opts);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.seed).toBe(1234);
    const c = await generate(ex, [1], { ...opts, seed: 99 });
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('stops at a stop token without emitting it', async () => {
    const r = await generate(ex, [1], { maxTokens: 20, stopTokens: [greedy20[4]!] });
    expect(r.stopReason).toBe('stop');
    expect(r.tokens).toEqual(greedy20.slice(0, 4));
  });

  it('stops at the end of the context and rejects prompts that do not fit', async () => {
    const prompt = greedy20.slice(0, 10);
    prompt[0] = 1;
    const r = await generate(ex, prompt.concat(prompt, prompt, prompt, prompt, prompt).slice(0, 60), { maxTokens: 100 });
    expect(r.stopReason).toBe('context');
    expect(r.tokens.length).toBe(5); // positions 60..63 fed back, the 5th token has no room
    await expect(generate(ex, new Array(65).fill(5), { maxTokens: 1 })).rejects.toThrow(ContextOverflowError);
    await expect(generate(ex, new Array(65).fill(5), { maxTokens: 1 })).rejects.toThrow(/65 tokens does not fit the context of 64/);
  });

  it('picks the same tokens with GPU and host sampling: greedy, and seeded temperature 0.8 / top-p 0.9 / top-k 40', async () => {
    const greedy = await generate(ex, [1], { maxTokens: 30, sampling: 'gpu' });
    expect((await generate(ex, [1], { maxTokens: 30, sampling: 'host' })).tokens).toEqual(greedy.tokens);
    for (const settings of [{ temperature: 0.8, topP: 0.9, topK: 40 }, { temperature: 1 }, { temperature: 1.2, topK: 5 }, { temperature: 0.9, topP: 0.5 }]) {
      const opts = { maxTokens: 40, seed: 4321, ...settings };
      const gpu = await generate(ex, [1, 403, 407], { ...opts, sampling: 'gpu' });
      const host = await generate(ex, [1, 403, 407], { ...opts, sampling: 'host' });
      expect(gpu.tokens).toEqual(host.tokens);
      expect(gpu.tokens.length).toBe(40);
    }
  });

  it('sample() draws from the logits forward() left, as the host sampler does', async () => {
    ex.reset();
    await ex.forward([1, 365, 117, 363]);
    const logits = await ex.logits();
    const gpu = new Sampler({ temperature: 1, topK: 50, topP: 0.95, seed: 5 });
    const host = new Sampler({ temperature: 1, topK: 50, topP: 0.95, seed: 5 });
    for (let i = 0; i < 20; i++) expect(await ex.sample(gpu.nextDraw())).toBe(host.sample(logits));
  });

  it('forwardSample throws on NaN/Inf logits like logits() does', async () => {
    // A NaN in the final norm's weight makes every logit NaN.
    const bad: ModelSource = {
      ...model,
      tensor(name) {
        const t = model.tensor(name);
        if (name !== 'model.norm.weight') return t;
        return { ...t, read: () => { const b = t.read(); new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)[5] = NaN; return b; } };
      },
    };
    const nan = await Executor.create(await testGpu(), bad, { dtype: 'f32', maxSeqLen: 16 });
    try {
      await expect(nan.forwardSample([1], { temperature: 0, topK: 0, topP: 1, u: 0 })).rejects.toThrow(NonFiniteError);
      await expect(nan.forwardSample([2], { temperature: 0.8, topK: 40, topP: 0.9, u: 0.5 })).rejects.toThrow(/512 of 512 logits are NaN\/Inf at position 1/);
    } finally {
      nan.destroy();
    }
  });
});

describe('aser generate --sampling', () => {
  async function run(args: string[]): Promise<{ code: number; out: Record<string, unknown> }> {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...xs: unknown[]) => void lines.push(xs.join(' ')));
    try {
      const code = await main(['generate', '--model', '../shared/models/stories260K/model.bin', '--json', ...args]);
      return { code, out: lines.length ? JSON.parse(lines.at(-1)!) : {} };
    } finally {
      spy.mockRestore();
    }
  }

  it('prints the same text on the GPU and the host, greedy and seeded; rejects a bad site or top-k', async () => {
    for (const sampled of [[], ['--temperature', '0.8', '--top-p', '0.9', '--top-k', '40', '--seed', '7']]) {
      const args = ['--prompt', 'Once upon a time', '--max-tokens', '40', ...sampled];
      const gpu = await run([...args, '--sampling', 'gpu']);
      const host = await run([...args, '--sampling', 'host']);
      expect([gpu.code, host.code]).toEqual([0, 0]);
      expect(gpu.out.text).toBe(host.out.text);
      expect((gpu.out.text as string).length).toBeGreaterThan(40);
    }
    const errors = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect((await run(['--sampling', 'cpu'])).code).toBe(2);
      expect((await run(['--top-k', '2.5'])).code).toBe(2);
    } finally {
      errors.mockRestore();
    }
  });
});
