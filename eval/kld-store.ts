// The fp reference of eval/kld.ts on disk: "ASERKLD1", a u32 header length, a JSON header (shape
// fields and the byte length of each array), then the arrays back to back, each 8-byte aligned.
// Written atomically; a file that does not match its header is refused with a FormatError.
import { readFileSync } from 'node:fs';
import { writeFileAtomic, writeAll } from '../loaders/atomic.js';
import { FormatError } from '../loaders/errors.js';
import type { KldReference } from './kld.js';

const MAGIC = 'ASERKLD1';
const ARRAYS = ['inputs', 'targets', 'nll', 'top', 'logp', 'ids'] as const;
type ArrayName = (typeof ARRAYS)[number];
const CTORS = { inputs: Uint32Array, targets: Uint32Array, nll: Float64Array, top: Uint32Array, logp: Float32Array, ids: Uint32Array } as const;

const pad8 = (n: number) => (n + 7) & ~7;

export function writeKldReference(path: string, ref: KldReference): void {
  const { inputs, targets, nll, top, logp, ids, ...shape } = ref;
  const arrays: Partial<Record<ArrayName, ArrayBufferView>> = { inputs, targets, nll, top, logp, ...(ids ? { ids } : {}) };
  const lengths = Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, v!.byteLength]));
  const header = new TextEncoder().encode(JSON.stringify({ ...shape, lengths }));
  const head = new Uint8Array(pad8(12 + header.length));
  head.set(new TextEncoder().encode(MAGIC));
  new DataView(head.buffer).setUint32(8, header.length, true);
  head.set(header, 12);
  writeFileAtomic(path, (fd) => {
    writeAll(fd, head);
    for (const name of ARRAYS) {
      const a = arrays[name];
      if (!a) continue;
      writeAll(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      const gap = pad8(a.byteLength) - a.byteLength;
      if (gap) writeAll(fd, new Uint8Array(gap));
    }
  });
}

export function readKldReference(path: string): KldReference {
  const bytes = readFileSync(path);
  const bad = (why: string) => new FormatError(path, `not a KLD reference: ${why}`);
  if (bytes.length < 12 || bytes.subarray(0, 8).toString('latin1') !== MAGIC) throw bad('bad magic');
  const headerLen = bytes.readUInt32LE(8);
  if (12 + headerLen > bytes.length) throw bad('header runs past the end');
  let header: Omit<KldReference, ArrayName> & { lengths: Record<string, number> };
  try {
    header = JSON.parse(bytes.subarray(12, 12 + headerLen).toString('utf8'));
  } catch {
    throw bad('unreadable header');
  }
  let off = pad8(12 + headerLen);
  const out: Record<string, unknown> = { ...header };
  delete out.lengths;
  for (const name of ARRAYS) {
    const len = header.lengths?.[name];
    if (len === undefined) continue;
    const C = CTORS[name];
    if (len % C.BYTES_PER_ELEMENT !== 0 || off + len > bytes.length) throw bad(`array ${name} does not fit the file`);
    const copy = new Uint8Array(len);
    copy.set(bytes.subarray(off, off + len));
    out[name] = new C(copy.buffer);
    off += pad8(len);
  }
  const ref = out as unknown as KldReference;
  const perRow = ref.mode === 'full' ? ref.vocab : ref.k;
  if (!ref.inputs || !ref.targets || !ref.nll || !ref.top || !ref.logp || ref.nll.length !== ref.tokens || ref.logp.length !== ref.tokens * perRow || (ref.mode === 'topk' && ref.ids?.length !== ref.tokens * ref.k)) {
    throw bad('arrays do not match the header');
  }
  return ref;
}
