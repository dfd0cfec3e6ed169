import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataDir, loadDatasetText } from '../../loaders/datasets.js';

describe('evaluation datasets', () => {
  afterEach(() => {
    delete process.env.ASER_DATA_DIR;
  });

  it('builds the GPTQ WikiText-2 text from HF rows joined with blank lines, and keeps the raw file for llama.cpp', () => {
    const gptq = loadDatasetText('wikitext2');
    expect(gptq.text.startsWith('\n\n = Robert Boulter = \n\n\n\n\n Robert Boulter is an English film')).toBe(true);
    // 4358 rows -> 4357 separators; each text row keeps its own newline.
    const raw = loadDatasetText('wikitext2', { protocol: 'llamacpp' });
    expect(Buffer.byteLength(raw.text)).toBe(1290590); // the file's size: nothing added or lost
    const textRows = raw.text.split('\n').filter((l) => l !== ' ' && l !== '').length;
    expect(gptq.text.length).toBe(raw.text.length - (4358 - textRows) * 2 + 4357 * 2);
  });

  it('joins PTB sentences with spaces and C4 documents with spaces (256 windows)', () => {
    const ptb = loadDatasetText('ptb');
    expect(ptb.text.startsWith("no it was n't black monday but while")).toBe(true);
    expect(ptb.text).not.toMatch(/\n|  /);
    const c4 = loadDatasetText('c4');
    expect(c4.maxWindows).toBe(256);
    expect(c4.text.length).toBeGreaterThan(1_000_000);
    const tiny = loadDatasetText('tinystories');
    expect(Buffer.byteLength(tiny.text)).toBe(296065);
  });

  it('reads any other value as a text file and honours ASER_DATA_DIR', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-data-'));
    const file = join(dir, 'story.txt');
    writeFileSync(file, 'hello world');
    expect(loadDatasetText(file).text).toBe('hello world');
    expect(() => loadDatasetText('wikitext3')).toThrow(/not a dataset name \(wikitext2, ptb, c4, tinystories\)/);
    process.env.ASER_DATA_DIR = dir;
    expect(dataDir()).toBe(dir);
    expect(() => loadDatasetText('ptb')).toThrow(/ASER_DATA_DIR/);
  });
});
