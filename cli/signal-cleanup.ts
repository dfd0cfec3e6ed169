// Ctrl-C (SIGINT) or SIGTERM while a command writes an output atomically: remove this process's
// unfinished temporary copy, say so, and exit 130 / 143. The atomic writers rename synchronously, so a
// signal handler (which runs between JavaScript tasks) never sees a half-done rename: what it finds
// under this process's temporary names is unfinished work, never the finished output or the old one.
import { rmSync } from 'node:fs';
import { ownTempSiblings } from '../loaders/atomic.js';

const EXIT_ON = { SIGINT: 130, SIGTERM: 143 } as const;

/** Installs the handlers for writing `path`; the returned function removes them. */
export function removeTempOnSignal(path: string): () => void {
  const handlers = (Object.keys(EXIT_ON) as Array<keyof typeof EXIT_ON>).map((signal) => {
    const handler = () => {
      const removed = ownTempSiblings(path);
      for (const dir of removed) rmSync(dir, { recursive: true, force: true });
      process.stderr.write(`\naser: ${signal === 'SIGINT' ? 'interrupted' : 'terminated'}; ${path} not written${removed.length ? ' (unfinished temporary copy removed)' : ''}\n`);
      process.exit(EXIT_ON[signal]);
    };
    process.on(signal, handler);
    return { signal, handler };
  });
  return () => handlers.forEach(({ signal, handler }) => process.off(signal, handler));
}
