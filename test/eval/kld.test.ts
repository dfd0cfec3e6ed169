// KL divergence to the fp model (eval/kld.ts): fp vs itself is 0, RTN W4A8 is positive and larger than
// ASER W4A8 on stories260K; the top-k form never exceeds the full one; the reference file round-trips.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from '../helpers/gpu.js';
import { loadLlama2c } from '../../loaders/llama2c.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';
import { FormatError } from '../../loaders/errors.js';
import { Executor } from '../../runtime/executor.js';
import type { ModelSource } from '../../core/model.js';
import {
  compareToReference, computeKldReference, logSoftmax, summarizeKld, tokenKld, type KldReference,
} from '../../eval/kld.js';
import { readKldReference, writeKldReference } from '../../eval/kld-store.js';
import { runKld } from '../../eval/kld-run.js';
import { openResultCache } from '../../node/cache.js';
import { loadDatasetText } from '../../loaders/datasets.js';
import { ensureArtifact } from '../../node/artifact-cache.js';

const MODEL = '../shared/models/stories260K/model.bin';
const TOKENIZER = '../shared/tokenizers/tok512/tokenizer.bin';
const SETTINGS = { ctx: 128, protocol: 'llamacpp' as const, maxWindows: 8 };

let model: ModelSource;
let ids: number[];
beforeAll(() => {
  model = loadLlama2c(MODEL, 'stories260k');
  const tok = loadLlama2cTokenizer(TOKENIZER, 512);
  ids = tok.encode(loadDatasetText('tinystories').text.slice(0, 20000), { bos: true });
});
afterAll(() => model.close());

describe('KL divergence to the fp model', () => {
  let ref: KldReference;
  it('fp vs itself: KLD 0, same top token everywhere, Δppl 0; the reference file round-trips', async () => {
    const ex = await Executor.create(await testGpu(), model, { dtype: 'f32', maxSeqLen: SETTINGS.ctx });
    try {
      ref = await computeKldReference(ex, ids, model.config.bosId, SETTINGS);
      expect(ref.mode).toBe('full');
      expect(ref.tokens).toBe(8 * 63); // llamacpp protocol: positions 64..126 of each window
      const s = summarizeKld(await compareToReference(ex, ref));
      expect(s.kldMean).toBeLessThan(1e-6);
      expect(s.kldMax).toBeLessThan(1e-5);
      expect(s.sameTopPct).toBe(100);
      expect(Math.abs(s.deltaPpl)).toBeLessThan(1e-4);
      expect(s.pplRef).toBeGreaterThan(1);
    } finally {
      ex.destroy();
    }
    const path = join(mkdtempSync(join(tmpdir(), 'aser-kld-')), 'ref.bin');
    writeKldReference(path, ref);
    const back = readKldReference(path);
    expect(back.tokens).toBe(ref.tokens);
    expect(Array.from(back.logp.subarray(0, 1000))).toEqual(Array.from(ref.logp.subarray(0, 1000)));
    expect(Array.from(back.targets)).toEqual(Array.from(ref.targets));
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    expect(() => readKldReference(path)).toThrow(FormatError);
  });

  it('top-k with the rest as one bucket never exceeds the full KLD, and equals it at k = vocab', () => {
    const t = 5;
    const lq = logSoftmax(Array.from({ length: ref.vocab }, (_, v) => Math.sin(v * 0.37) * 3));
    const full = tokenKld(ref, t, lq);
    expect(full).toBeGreaterThan(0);
    const topOf = (k: number): KldReference => {
      const row = Array.from(ref.logp.subarray(t * ref.vocab, (t + 1) * ref.vocab));
      const order = row.map((_, v) => v).sort((a, b) => row[b]! - row[a]!).slice(0, k);
      const logp = new Float32Array((t + 1) * k), idsK = new Uint32Array((t + 1) * k);
      order.forEach((v, i) => {
        idsK[t * k + i] = v;
        logp[t * k + i] = row[v]!;
      });
      return { ...ref, mode: 'topk', k, logp, ids: idsK };
    };
    expect(tokenKld(topOf(ref.vocab), t, lq)).toBeCloseTo(full, 4);
    for (const k of [1, 8, 64]) expect(tokenKld(topOf(k), t, lq)).toBeLessThanOrEqual(full + 1e-9);
  });

  it('RTN W4A8 is positive and larger than ASER W4A8 (stories260K)', { timeout: 240_000 }, async () => {
    const cache = openResultCache({ dir: mkdtempSync(join(tmpdir(), 'aser-kld-cache-')) });
    const base = { model: 'stories260k', wbits: 4, abits: 8, calib: 'tinystories', calibSamples: 64, calibLen: 256, seed: 0 };
    const rtn = await ensureArtifact({ ...base, method: 'rtn' });
    const aser = await ensureArtifact({ ...base, method: 'aser', rank: 8 });
    const opts = { model: 'stories260k', dataset: 'tinystories', cache, ...SETTINGS };
    const fp = await runKld(opts);
    const r = await runKld({ ...opts, artifact: rtn.dir });
    const a = await runKld({ ...opts, artifact: aser.dir });
    expect(fp.kldMean).toBeLessThan(1e-6);
    expect(r.kldMean).toBeGreaterThan(0.005);
    expect(a.kldMean).toBeGreaterThan(0);
    expect(a.kldMean).toBeLessThan(r.kldMean);
    expect(r.deltaPpl).toBeGreaterThan(a.deltaPpl);
    expect(r.sameTopPct).toBeLessThan(100);
    // Cached: the same call again returns the stored result.
    expect((await runKld({ ...opts, artifact: rtn.dir })).seconds).toBe(r.seconds);
  });
});
