// End to end as a user runs it: `aser quantize` writes artifacts, `aser ppl --artifact` runs them through
// the fused W4A8 kernels, and a corrupted artifact is refused. Uses the built CLI (npm test builds first).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, readFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = 'dist/cli/aser.js';
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
const pplOf = (...extra: string[]) => {
  const r = run('ppl', '--ctx', '128', '--max-windows', '24', '--json', ...extra);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).ppl as number;
};

describe('aser quantize → aser ppl --artifact', () => {
  it('ASER recovers most of what RTN loses, and a corrupted artifact is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aser-cli-q-'));
    for (const method of ['rtn', 'aser']) {
      const r = run('quantize', '--method', method, '--rank', '8', '--calib-samples', '16', '--calib-len', '128', '--out', join(dir, method));
      expect(r.status, r.stderr).toBe(0);
    }
    const fp = pplOf();
    const rtn = pplOf('--artifact', join(dir, 'rtn'));
    const aser = pplOf('--artifact', join(dir, 'aser'));
    expect(rtn).toBeGreaterThan(fp);
    expect(aser).toBeLessThan(rtn);
    expect(aser).toBeGreaterThan(fp * 0.98);

    cpSync(join(dir, 'aser'), join(dir, 'bad'), { recursive: true });
    const file = join(dir, 'bad', readdirSync(join(dir, 'bad')).find((f) => f.endsWith('.safetensors'))!);
    const bytes = readFileSync(file);
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(file, bytes);
    const bad = run('ppl', '--artifact', join(dir, 'bad'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/sha256 mismatch/);
    expect(bad.stderr).not.toMatch(/\n\s+at /); // one line, no stack trace
  });
});
