// A progress bar on stderr with rate and ETA. On a terminal it redraws one line; elsewhere (CI, pipes)
// it prints a line at most every few seconds, so logs stay readable.

export interface Progress {
  update(done: number, note?: string): void;
  finish(note?: string): void;
}

export function progressBar(label: string, total: number, unit = 'it', stream: NodeJS.WriteStream = process.stderr): Progress {
  const start = performance.now();
  const tty = Boolean(stream.isTTY);
  let lastPrint = 0;
  let lastLine = '';
  const render = (done: number, note = '') => {
    const elapsed = (performance.now() - start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const fmt = (s: number) => (Number.isFinite(s) ? (s >= 60 ? `${Math.floor(s / 60)}m${Math.round(s % 60).toString().padStart(2, '0')}s` : `${s.toFixed(1)}s`) : '?');
    return `${label} [${bar}] ${done}/${total} ${unit} ${rate.toFixed(rate >= 100 ? 0 : 1)} ${unit}/s elapsed ${fmt(elapsed)} eta ${fmt(eta)}${note ? ' ' + note : ''}`;
  };
  return {
    update(done, note) {
      const now = performance.now();
      if (tty) {
        if (now - lastPrint < 100 && done < total) return;
        lastLine = render(done, note);
        stream.write(`\r${lastLine}\x1b[K`);
      } else if (now - lastPrint > 5000) {
        stream.write(render(done, note) + '\n');
      } else return;
      lastPrint = now;
    },
    finish(note) {
      const line = render(total, note);
      stream.write(tty ? `\r${line}\x1b[K\n` : line + '\n');
    },
  };
}
