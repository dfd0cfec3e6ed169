// Evaluation datasets by name -> the exact text the GPTQ-style perplexity scripts tokenize
// (see shared/data/MANIFEST.md, "GPTQ-protocol text"), or the raw file for llama.cpp's protocol.
// Node-side: reads files. The data directory is ASER_DATA_DIR, else ../shared/data beside the repo.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError, FormatError } from './errors.js';

export const DATASET_NAMES = ['wikitext2', 'ptb', 'c4', 'tinystories'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface DatasetText {
  /** The dataset name, or the file path for a plain text file. */
  name: string;
  file: string;
  text: string;
  /** Window cap of the protocol (C4: the first 256 windows), if any. */
  maxWindows?: number;
}

export interface DatasetOptions {
  /** 'gptq' (default) builds the text the GPTQ scripts tokenize; 'llamacpp' uses the raw file. */
  protocol?: 'gptq' | 'llamacpp';
  dataDir?: string;
}

/** The repository root: the nearest ancestor of this module holding package.json (works from dist/ too). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export function dataDir(): string {
  return process.env.ASER_DATA_DIR ? resolve(process.env.ASER_DATA_DIR) : resolve(repoRoot(), '..', 'shared', 'data');
}

const FILES: Record<DatasetName, string> = {
  wikitext2: 'wikitext-2-raw/wiki.test.raw',
  ptb: 'ptb/ptb.test.txt',
  c4: 'c4/c4-validation-2k.jsonl',
  tinystories: 'tinystories/eval.txt',
};

/** GPTQ's C4 evaluation: the first 1,100 validation documents, then the first 256 windows. */
const C4_DOCUMENTS = 1100;
const C4_WINDOWS = 256;

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new NotFoundError(file, `cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? String(err)}); set ASER_DATA_DIR to the data directory`);
  }
}

export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/** The evaluation text of a named dataset (see DATASET_NAMES) or of any text file path. */
export function loadDatasetText(nameOrPath: string, opts: DatasetOptions = {}): DatasetText {
  const protocol = opts.protocol ?? 'gptq';
  if (!isDatasetName(nameOrPath)) {
    const file = resolve(nameOrPath);
    if (!existsSync(file)) {
      throw new NotFoundError(file, `no such file, and "${nameOrPath}" is not a dataset name (${DATASET_NAMES.join(', ')})`);
    }
    return { name: nameOrPath, file, text: read(file, 'text file') };
  }
  const name = nameOrPath;
  const file = join(opts.dataDir ?? dataDir(), FILES[name]);
  const raw = read(file, `the ${name} evaluation file`);
  switch (name) {
    case 'wikitext2': {
      if (protocol === 'llamacpp') return { name, file, text: raw };
      // HF wikitext-2-raw-v1 rows: each line with its newline; the blank " \n" lines are empty rows.
      const lines = raw.split('\n');
      if (lines.at(-1) === '') lines.pop();
      const rows = lines.map((l) => (l.trim() === '' ? '' : `${l}\n`));
      return { name, file, text: rows.join('\n\n') };
    }
    case 'ptb': {
      // HF ptb_text_only strips each line; GPTQ joins the sentences with a space.
      const lines = raw.split('\n');
      if (lines.at(-1) === '') lines.pop();
      return { name, file, text: protocol === 'llamacpp' ? raw : lines.map((l) => l.trim()).join(' ') };
    }
    case 'c4': {
      const docs = raw.split('\n').filter((l) => l.trim() !== '').slice(0, C4_DOCUMENTS).map((line, i) => {
        try {
          const text = (JSON.parse(line) as { text?: unknown }).text;
          if (typeof text !== 'string') throw new Error('no "text" string');
          return text;
        } catch (err) {
          throw new FormatError(file, `line ${i + 1}: ${(err as Error).message}`);
        }
      });
      return { name, file, text: docs.join(' '), maxWindows: C4_WINDOWS };
    }
    case 'tinystories':
      return { name, file, text: raw };
  }
}
