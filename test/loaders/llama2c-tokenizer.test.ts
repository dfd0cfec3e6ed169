import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, NotFoundError } from '../../loaders/errors.js';
import { loadLlama2cTokenizer } from '../../loaders/llama2c-tokenizer.js';

const TOK512 = '../shared/tokenizers/tok512';
const vectors = JSON.parse(readFileSync(`${TOK512}/test-vectors/reference-encodings.llama2c-run-c.json`, 'utf8')) as Array<{ text: string; ids: number[] }>;

describe('llama2.c tokenizer.bin (run.c encode/decode)', () => {
  const tok = loadLlama2cTokenizer(`${TOK512}/tokenizer.bin`, 512);

  it(`reproduces all ${vectors.length} run.c reference encodings`, () => {
    expect(vectors.length).toBe(374);
    const mismatches = vectors.filter((v) => JSON.stringify(tok.encode(v.text)) !== JSON.stringify(v.ids));
    expect(mismatches).toEqual([]);
  });

  it('adds BOS on request and decodes with run.c rules', () => {
    expect(tok.vocabSize).toBe(512);
    const ids = tok.encode('Once upon a time', { bos: true });
    expect(ids[0]).toBe(1);
    // The piece after BOS loses its leading space; without BOS the dummy-prefix space stays.
    expect(tok.decode(ids)).toBe('Once upon a time');
    expect(tok.decode(ids.slice(1))).toBe(' Once upon a time');
    expect(tok.decode([1, ...tok.encode('Lily'), 2])).toBe('Lily');
    expect(tok.decode([])).toBe('');
  });

  it('decodes byte-fallback pieces into whole multi-byte characters', () => {
    for (const text of ['我起这', 'WV🇺🇸 ❤️ 🦙', 'ÑæÍú', '\u0000nul', 'tab\there']) {
      const ids = tok.encode(text, { bos: true });
      expect(tok.decode(ids)).toBe(text);
    }
    // 🦙 is four byte tokens; each alone is an incomplete sequence, together the character.
    const llama = tok.encode('🦙').slice(1);
    expect(llama).toEqual([0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
    expect(tok.decode([1, ...llama])).toBe('🦙');
  });

  it('merges exactly like run.c\'s quadratic loop, in near-linear time', () => {
    // run.c's merge loop, transcribed as plain loops: the reference for the heap-based merge.
    const bin = readFileSync(`${TOK512}/tokenizer.bin`);
    const pieces: string[] = [];
    const scores: number[] = [];
    for (let at = 4; at < bin.length; ) {
      scores.push(bin.readFloatLE(at));
      const len = bin.readInt32LE(at + 4);
      pieces.push(bin.subarray(at + 8, at + 8 + len).toString('latin1'));
      at += 8 + len;
    }
    const lookup = new Map(pieces.map((p, i) => [p, i] as const));
    const runcMerge = (tokens: number[]) => {
      for (;;) {
        let best = -1e10, bestId = -1, bestIdx = -1;
        for (let i = 0; i < tokens.length - 1; i++) {
          const id = lookup.get(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
          if (id !== undefined && scores[id]! > best) [best, bestId, bestIdx] = [scores[id]!, id, i];
        }
        if (bestIdx < 0) return tokens;
        tokens.splice(bestIdx, 2, bestId);
      }
    };
    const story = readFileSync('../shared/data/tinystories/eval.txt', 'utf8');
    const sample = story.slice(0, 3000) + ' 🦙 我起这 ÑæÍú  a  b ';
    // Unmerged input: one token per character (or its bytes), as run.c builds it before merging.
    const unmerged = [410];
    for (const ch of sample) {
      const id = lookup.get(Buffer.from(ch, 'utf8').toString('latin1'));
      if (id !== undefined) unmerged.push(id);
      else for (const b of Buffer.from(ch, 'utf8')) unmerged.push(b + 3);
    }
    expect(tok.encode(sample)).toEqual(runcMerge(unmerged));

    const long = story.slice(0, 200_000);
    const t0 = performance.now();
    const ids = tok.encode(long);
    const ms = performance.now() - t0;
    expect(ids.length).toBeGreaterThan(40_000);
    expect(ms).toBeLessThan(5000);
    expect(tok.decode([1, ...ids])).toBe(long.replace(/^ /, ''));
  });

  it('refuses a truncated or garbage tokenizer, a wrong vocabulary size and a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-l2ctok-'));
    const bytes = readFileSync(`${TOK512}/tokenizer.bin`);
    const truncated = join(dir, 'truncated.bin');
    writeFileSync(truncated, bytes.subarray(0, 3001));
    expect(() => loadLlama2cTokenizer(truncated)).toThrow(FormatError);
    expect(() => loadLlama2cTokenizer(truncated)).toThrow(/truncated/);
    const garbage = join(dir, 'garbage.bin');
    writeFileSync(garbage, Buffer.alloc(100, 0xff));
    expect(() => loadLlama2cTokenizer(garbage)).toThrow(/not a llama2.c tokenizer/);
    expect(() => loadLlama2cTokenizer(`${TOK512}/tokenizer.bin`, 32000)).toThrow(/holds 512 tokens, the model expects 32000/);
    expect(() => loadLlama2cTokenizer(join(dir, 'missing.bin'))).toThrow(NotFoundError);
  });
});
