import { describe, expect, it } from 'vitest';
import { Sampler, argmax, createSampler } from '../../runtime/sampler.js';
import { createRng } from '../../core/rng.js';
import { SamplerError } from '../../runtime/errors.js';

const logitsOf = (probs: number[]) => Float32Array.from(probs, (p) => Math.log(p));

function frequencies(s: Sampler, logits: Float32Array, n: number): number[] {
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
  return counts.map((c) => c / n);
}

describe('sampler', () => {
  it('is greedy at temperature 0 (first index on ties)', () => {
    expect(argmax([1, 5, 5, 2])).toBe(1);
    expect(new Sampler({ temperature: 0, seed: 1 }).sample(Float32Array.of(0.1, -3, 7.5, 7.4))).toBe(2);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const run = (seed: number) => Array.from({ length: 40 }, ((s) => () => s(logits))(createSampler({ temperature: 1, topP: 0.9, seed })));
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
    expect(createRng(3)()).toBe(createRng(3)());
  });

  it('samples the softmax distribution at temperature 1 and sharpens it below 1', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const f = frequencies(new Sampler({ temperature: 1, seed: 11 }), logitsOf(probs), 40000);
    f.forEach((v, i) => expect(Math.abs(v - probs[i]!)).toBeLessThan(0.01)); // ~4σ at n = 40000
    const sharp = frequencies(new Sampler({ temperature: 0.5, seed: 12 }), logitsOf(probs), 40000);
    const z = probs.reduce((a, p) => a + p * p, 0);
    sharp.forEach((v, i) => expect(Math.abs(v - (probs[i]! * probs[i]!) / z)).toBeLessThan(0.01));
  });

  it('keeps only the nucleus with top-p', () => {
    const probs = [0.05, 0.5, 0.15, 0.3];
    const f = frequencies(new Sampler({ temperature: 1, topP: 0.7, seed: 13 }), logitsOf(probs), 20000);
    expect(f[0]).toBe(0);
    expect(f[2]).toBe(0);
    expect(Math.abs(f[1]! - 0.5 / 0.8)).toBeLessThan(0.015);
    // topP below the top token's mass leaves only that token.
    expect(frequencies(new Sampler({ temperature: 1, topP: 0.2, seed: 14 }), logitsOf(probs), 500)[1]).toBe(1);
  });

  it('keeps the k most likely with top-k, and applies top-p to their mass', () => {
    const probs = [0.05, 0.4, 0.1, 0.3, 0.15];
    const f = frequencies(new Sampler({ temperature: 1, topK: 2, seed: 15 }), logitsOf(probs), 20000);
    expect([f[0], f[2], f[4]]).toEqual([0, 0, 0]);
    expect(Math.abs(f[1]! - 0.4 / 0.7)).toBeLessThan(0.015);
    // top-k 3 keeps 0.4, 0.3, 0.15 (mass 0.85); top-p 0.8 of that (0.68) is passed after 0.4 + 0.3.
    const g = frequencies(new Sampler({ temperature: 1, topK: 3, topP: 0.8, seed: 16 }), logitsOf(probs), 20000);
    expect([g[0], g[2], g[4]]).toEqual([0, 0, 0]);
    // Equal logits at the k-th place: the lowest ids stay.
    const tied = Float32Array.of(0, 1, 1, 1, 2);
    const h = frequencies(new Sampler({ temperature: 1, topK: 3, seed: 17 }), tied, 2000);
    expect([h[0], h[3]]).toEqual([0, 0]);
  });

  it('rejects bad options', () => {
    expect(() => new Sampler({ topK: 1.5 })).toThrow(/topK 1.5/);
    expect(() => new Sampler({ temperature: -1 })).toThrow(SamplerError);
    expect(() => new Sampler({ topP: 0 })).toThrow(/topP 0/);
    expect(() => new Sampler({ topP: 1.5 })).toThrow(SamplerError);
  });

  it('min-p drops tokens below min_p × the most likely one and renormalizes the rest', () => {
    // After temperature 1: probabilities 0.5, 0.3, 0.15, 0.05 → min_p 0.25 keeps those ≥ 0.125 (ids 0, 1, 2).
    const logits = logitsOf([0.5, 0.3, 0.15, 0.05]);
    const freq = frequencies(new Sampler({ temperature: 1, minP: 0.25, seed: 3 }), logits, 20000);
    expect(freq[3]).toBe(0);
    expect(freq[0]! / freq[2]!).toBeCloseTo(0.5 / 0.15, 0);
    expect(freq[0]).toBeCloseTo(0.5 / 0.95, 1);
    // min_p 1 keeps only the most likely token.
    expect(new Set(Array.from({ length: 50 }, () => new Sampler({ temperature: 2, minP: 1, seed: 9 }).sample(logits)))).toEqual(new Set([0]));
    expect(() => new Sampler({ minP: 1.5 })).toThrow(/minP/);
  });

  it('applies llama.cpp repeat penalty and OpenAI presence/frequency penalties to what was seen', () => {
    const logits = Float32Array.of(2, 1.9, -1, 0.5);
    // Greedy picks 0; a repeat penalty on the prompt's token 0 (2 / 1.5 = 1.33 < 1.9) makes it 1.
    const repeat = new Sampler({ temperature: 0, repeatPenalty: 1.5 });
    repeat.observePrompt([3, 0]);
    expect(repeat.sample(logits)).toBe(1);
    // Negative logits are multiplied: token 2 goes further down, never up.
    const negative = new Sampler({ temperature: 0, repeatPenalty: 2 });
    negative.observePrompt([2]);
    expect(negative.sample(Float32Array.of(-1, -1.5, -0.9))).toBe(0);
    // Frequency penalty grows with each use: 0, then 1 (2 − 0.5 < 1.9), then 0 again (1.5 vs 1.9 − 0.5), …
    const freq = new Sampler({ temperature: 0, frequencyPenalty: 0.5 });
    expect([0, 1, 2, 3].map(() => freq.sample(logits))).toEqual([0, 1, 0, 1]);
    // Presence penalty is paid once, however often: once 0 and 1 were both used, 0 leads again for good.
    const presence = new Sampler({ temperature: 0, presencePenalty: 1.2 });
    expect([0, 1, 2, 3].map(() => presence.sample(logits))).toEqual([0, 1, 0, 0]);
    expect(presence.hostOnly).toBe(true);
    expect(new Sampler({ temperature: 1, topK: 3 }).hostOnly).toBe(false);
    expect(() => new Sampler({ repeatPenalty: 0 })).toThrow(/repeatPenalty/);
    expect(() => new Sampler({ presencePenalty: 3 })).toThrow(/presencePenalty/);
  });
});
