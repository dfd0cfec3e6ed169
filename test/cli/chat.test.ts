// `aser chat` through the built CLI with its input piped: each answer ends with its token count and
// decode speed, and /bye ends the chat (what follows it is never sent to the model).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('aser chat', () => {
  it('shows tokens and tok/s per answer; /bye and /exit end the chat', { timeout: 300_000 }, () => {
    for (const bye of ['/bye', '/exit']) {
      const r = spawnSync(process.execPath, ['dist/cli/aser.js', 'chat', '--max-tokens', '6', '--seed', '1'], {
        input: `Hello there\nTell me a story\n${bye}\nThis line is never answered\n`,
        encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
      });
      expect(r.status, r.stderr).toBe(0);
      const turns = [...r.stdout.matchAll(/\[(\d+) tokens(?:, (\d+\.\d) tok\/s)?\]/g)];
      expect(turns, r.stdout).toHaveLength(2); // two answers, none for the line after /bye
      for (const [, tokens, rate] of turns) {
        expect(Number(tokens)).toBeGreaterThan(0);
        expect(Number(tokens)).toBeLessThanOrEqual(6);
        if (Number(tokens) > 1) expect(Number(rate)).toBeGreaterThan(0);
      }
    }
  });
});
