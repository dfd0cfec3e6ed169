// Small JSON files (configs, tokenizers, indexes): read whole, parse, and fail with the file and reason.
import { readFileSync, statSync } from 'node:fs';
import { FormatError, NotFoundError } from './errors.js';

const MAX_JSON_BYTES = 256 << 20;

export function readJsonFile(file: string, what: string): unknown {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new NotFoundError(file, `${what} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof NotFoundError) throw err;
    throw new NotFoundError(file, `cannot open ${what} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (size > MAX_JSON_BYTES) throw new FormatError(file, `${what} is ${size} bytes, more than the ${MAX_JSON_BYTES >> 20} MiB a JSON file may have`);
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FormatError(file, `${what} is not valid JSON (${(err as Error).message})`);
  }
}

export { isRecord } from './json-record.js';
