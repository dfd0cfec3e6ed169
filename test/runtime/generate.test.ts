import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { Executor } from '../../runtime/executor.js';
import { generate } from '../../runtime/generate.js';
import type { ModelSource } from '../../core/model.js';
import { CpuLlama } from '../reference/cpu-llama.js';
import { ContextOverflowError } from '../../runtime/errors.js';

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
});
