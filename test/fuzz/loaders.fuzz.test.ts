// Property-based fuzzing of every file loader (bounded for CI; `npm run bench -- fuzz` runs ≥ 10,000
// cases per format): each mutated or generated file must load consistently or fail with a typed
// LoadError, within the per-case time bound. The targets live in bench/lib/fuzz-targets.ts.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  artifactTarget, classify, ggufTarget, hfConfigTarget, hfTokenizerTarget, llama2cTarget,
  llama2cTokenizerTarget, safetensorsTarget, type FuzzTarget,
} from '../../bench/lib/fuzz-targets.js';

const RUNS = Number(process.env.ASER_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.ASER_FUZZ_SEED ?? 8);
const targets: Array<FuzzTarget<any>> = [];

function fuzz<T>(target: FuzzTarget<T>, runs = RUNS): Record<string, number> {
  targets.push(target);
  const seen: Record<string, number> = {};
  fc.assert(
    fc.property(target.arbitrary, (input) => {
      const r = classify(target, input);
      seen[r.outcome] = (seen[r.outcome] ?? 0) + 1;
      if (r.failure) throw new Error(`${target.name}: ${r.failure}`);
    }),
    { numRuns: runs, seed: SEED },
  );
  return seen;
}

afterAll(() => {
  for (const t of targets) t.cleanup();
});

describe('fuzzed loaders end in a consistent load or a typed error', () => {
  it('safetensors: mutated, JSON-mutated and generated headers', () => {
    const seen = fuzz(safetensorsTarget());
    // Both outcomes occur, so the generator reaches past the header checks.
    expect(seen.loaded).toBeGreaterThan(0);
    expect(seen.FormatError).toBeGreaterThan(RUNS / 4);
  });

  it('llama2.c checkpoints: mutated files and generated headers', () => {
    const seen = fuzz(llama2cTarget());
    expect(seen.loaded).toBeGreaterThan(0);
    expect(seen.FormatError).toBeGreaterThan(0);
  });

  it('GGUF: mutated tiny llama file', () => {
    const seen = fuzz(ggufTarget());
    expect(seen.FormatError).toBeGreaterThan(0);
  });

  it('llama2.c tokenizer.bin: mutated stories260K tokenizer', () => {
    const seen = fuzz(llama2cTokenizerTarget('models/stories260k/tokenizer.bin'), Math.min(RUNS, 150));
    expect(seen.FormatError).toBeGreaterThan(0);
  });

  it('artifact manifests and tensor files: JSON and byte mutations', () => {
    const runs = Math.min(RUNS, 150);
    const seen = fuzz(artifactTarget(), runs);
    expect(seen.FormatError).toBeGreaterThan(runs / 4);
  });

  it('HF config.json mutated against fixed weights: a consistent model or a typed error', () => {
    const seen = fuzz(hfConfigTarget());
    expect(seen.loaded).toBeGreaterThan(0);
    expect(seen.FormatError).toBeGreaterThan(0);
  });

  it('HF tokenizer.json: mutated stories260K tokenizer', () => {
    const seen = fuzz(hfTokenizerTarget('models/stories260k/tokenizer.json'), Math.min(RUNS, 150));
    expect(seen.FormatError).toBeGreaterThan(0);
  });
});
