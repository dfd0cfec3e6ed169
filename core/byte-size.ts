// Human byte sizes as users type them (--shard-size 2GB, --max-binding 1GiB).
import { UsageError } from './errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** "2GB", "500MB", "1.5GiB" or a plain byte count -> bytes (KB/MB/GB decimal as HF's max_shard_size, KiB/MiB/GiB binary). */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`cannot read size ${JSON.stringify(text)}`, 'write it like 2GB, 500MB, 1GiB or a byte count');
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < 1) throw new UsageError(`size ${JSON.stringify(text)} must be at least one byte`);
  return bytes;
}
