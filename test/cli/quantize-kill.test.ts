// Crash safety of artifact writes: `aser quantize` is SIGKILLed at chosen and random points (before
// and during the write phase, which the ASER_TEST_ARTIFACT_PAUSE_MS hook slows down and announces on
// stderr). Afterwards the output path holds either the previous artifact, still loading and passing
// every checksum, or nothing: never a half-written one. Leftover staging directories are hidden,
// never taken for the artifact, and removed by the next write. Uses the built CLI.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readArtifact } from '../../loaders/artifact.js';
import { readArtifactManifest } from '../../loaders/artifact-manifest.js';

const CLI = 'dist/cli/aser.js';
const QUANTIZE = ['quantize', '--calib-samples', '2', '--calib-len', '32', '--rank', '4', '--overwrite'];
const env = { ...process.env, XDG_RUNTIME_DIR: '/tmp', ASER_TEST_ARTIFACT_PAUSE_MS: '50' };

/** Runs quantize --out `out` and SIGKILLs it when stderr shows `marker`, or after `afterMs`. */
function quantizeKilled(out: string, when: { marker?: RegExp; afterMs?: number }): Promise<{ killedAt: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...QUANTIZE, '--out', out], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killedAt = '';
    const kill = (why: string) => {
      if (killedAt) return;
      killedAt = why;
      child.kill('SIGKILL');
    };
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = when.marker && stderr.match(when.marker);
      if (m) kill(m[0]);
    });
    if (when.afterMs !== undefined) setTimeout(() => kill(`${when.afterMs} ms`), when.afterMs);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killedAt });
      else reject(new Error(`quantize ended (code ${code}) before the kill point ${when.marker ?? when.afterMs}:\n${stderr}`));
    });
  });
}

const staging = (dir: string, name: string) => readdirSync(dir).filter((f) => f.startsWith(`.${name}.tmp-`));

/** Pseudo-random but reproducible kill points. */
let state = 8;
const rand = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

describe('SIGKILL during aser quantize never leaves a half artifact', () => {
  it('kills before, during and at the end of the write: the old artifact or none, and stale staging is cleaned', { timeout: 180_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'aser-kill-'));
    const out = join(root, 'art');

    // No previous artifact: a kill mid-write leaves nothing at the output path.
    await quantizeKilled(out, { marker: /artifact wrote layer-002\.safetensors/ });
    expect(existsSync(out)).toBe(false);
    expect(staging(root, 'art').length).toBe(1);
    expect(() => readArtifactManifest(out)).toThrow(/does not exist/);

    // A complete artifact to protect.
    const ok = spawnSync(process.execPath, [CLI, ...QUANTIZE, '--out', out], { env: { ...env, ASER_TEST_ARTIFACT_PAUSE_MS: '' }, encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(staging(root, 'art').length).toBe(0); // the dead writer's staging was removed
    const old = readArtifact(out).manifest.createdAt;

    const points: Array<{ marker?: RegExp; afterMs?: number }> = [
      { afterMs: 300 + Math.round(rand() * 1500) }, // anywhere from startup through calibration
      { marker: new RegExp(`artifact wrote layer-00${Math.floor(rand() * 5)}\\.safetensors`) },
      { marker: /artifact manifest written/ }, // complete in staging, not yet renamed
    ];
    for (const when of points) {
      const { killedAt } = await quantizeKilled(out, when);
      expect(existsSync(out), killedAt).toBe(true);
      const a = readArtifact(out); // every sha256 checked
      expect(a.manifest.createdAt, killedAt).toBe(old);
      expect(a.layers.size).toBe(35);
      // Staging directories are hidden siblings, never the artifact itself.
      expect(readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual(['art']);
    }

    // Between moving the old artifact aside and renaming the new one in: nothing at the path (and
    // the hidden leftovers are not an artifact there; the next write removes them, as shown above).
    await quantizeKilled(out, { marker: /previous artifact moved aside/ });
    expect(existsSync(out)).toBe(false);
    expect(() => readArtifactManifest(out)).toThrow(/does not exist/);
    expect(staging(root, 'art').length).toBeGreaterThan(0);
  });
});
