// `aser quantize --out` as a user meets it, through the built CLI: an existing output is refused
// without --overwrite (exit 2, untouched); Ctrl-C (SIGINT) or SIGTERM mid-run leaves no temporary
// folder behind; --rank means the reconstruction rank in quantize, flops and the manifest alike; and
// `ppl --artifact` names the artifact and gives perplexity with a ± that shrinks with more tokens.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = 'dist/cli/aser.js';
const env = { ...process.env, XDG_RUNTIME_DIR: '/tmp' };
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
const SMALL = ['--calib-samples', '2', '--calib-len', '32'];
const lastJson = <T>(stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as T;

/** One --rank 8 artifact, quantized once and shared by the tests below (each quantize costs seconds). */
const root = mkdtempSync(join(tmpdir(), 'aser-qout-'));
let rank8: { dir: string; stdout: string } | undefined;
function rank8Artifact(): { dir: string; stdout: string } {
  if (!rank8) {
    const dir = join(root, 'r8');
    const q = run('quantize', ...SMALL, '--rank', '8', '--out', dir);
    expect(q.status, q.stderr).toBe(0);
    rank8 = { dir, stdout: q.stdout };
  }
  return rank8;
}

/** Starts quantize, sends `signal` once stderr shows `marker`; resolves with the exit code and stderr. */
function quantizeSignalled(out: string, signal: NodeJS.Signals, marker: RegExp): Promise<{ code: number | null; stderr: string; sent: boolean }> {
  return new Promise((resolve) => {
    // The test hook announces each file written (and slows the writes), so the signal lands mid-artifact.
    const child = spawn(process.execPath, [CLI, 'quantize', ...SMALL, '--rank', '4', '--out', out], {
      env: { ...env, ASER_TEST_ARTIFACT_PAUSE_MS: '30' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && marker.test(stderr)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.on('exit', (code) => resolve({ code, stderr, sent }));
  });
}

describe('aser quantize --out', () => {
  it('refuses an existing output without --overwrite, replaces it with it, and cleans up on SIGINT/SIGTERM', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(root, 'signals-'));
    const out = join(dir, 'art');

    // Something the user keeps at the output path: refused before any work, left as it was.
    const keep = join(dir, 'notes');
    writeFileSync(keep, 'mine\n');
    const refused = run('quantize', ...SMALL, '--out', keep);
    expect(refused.status).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.split('\n').filter((l) => l.startsWith('aser: error:'))).toEqual([`aser: error: --out ${keep}: already exists`]);
    expect(refused.stderr).toMatch(/--overwrite/);
    expect(readFileSync(keep, 'utf8')).toBe('mine\n');

    // Interrupted mid-write (SIGINT, as Ctrl-C) and terminated (SIGTERM): no output, no temporary folder.
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const r = await quantizeSignalled(out, signal, /artifact wrote layer-000\.safetensors/);
      expect(r.sent, r.stderr).toBe(true);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(/unfinished temporary copy removed/);
      expect(readdirSync(dir).sort()).toEqual(['notes']);
    }

    // An existing artifact: refused (untouched) without --overwrite, replaced with it.
    const art = rank8Artifact().dir;
    const created = JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')).createdAt as string;
    const again = run('quantize', ...SMALL, '--rank', '8', '--out', art);
    expect(again.status).toBe(2);
    expect(JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')).createdAt).toBe(created);
    const replaced = run('quantize', ...SMALL, '--rank', '8', '--out', art, '--overwrite');
    expect(replaced.status, replaced.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')).createdAt).not.toBe(created);
    expect(readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('one meaning of --rank', () => {
  it('--rank 8 reports mean rank 8.00 in quantize, flops and the manifest; outlier columns come on top; --side-width counts them', { timeout: 600_000 }, () => {
    const { dir: r8, stdout } = rank8Artifact();
    const line = stdout.split('\n')[0]!;
    expect(line).toMatch(/mean rank 8\.00 \+ (\d+\.\d\d) outlier columns \(side path (\d+\.\d\d) wide\)/);
    const [, outliers, width] = line.match(/mean rank 8\.00 \+ (\d+\.\d\d) outlier columns \(side path (\d+\.\d\d) wide\)/)!;
    expect(Number(width)).toBeCloseTo(8 + Number(outliers), 2);

    const manifest = JSON.parse(readFileSync(join(r8, 'manifest.json'), 'utf8')) as { layers: Record<string, { rank: number; errorRank: number; outliers: number[] }> };
    for (const l of Object.values(manifest.layers)) {
      expect(l.errorRank).toBe(8);
      expect(l.rank).toBe(8 + l.outliers.length);
    }
    const flops = run('flops', '--artifact', r8, '--json');
    expect(flops.status, flops.stderr).toBe(0);
    const total = lastJson<{ total: { meanRank: number; meanSideWidth: number } }>(flops.stdout).total;
    expect(total.meanRank).toBe(8);
    expect(total.meanSideWidth).toBeCloseTo(Number(width), 2);

    const w = run('quantize', ...SMALL, '--side-width', '8', '--out', join(root, 'w8'), '--json');
    expect(w.status, w.stderr).toBe(0);
    const s = lastJson<{ meanRank: number; meanOutlierColumns: number; meanSideWidth: number }>(w.stdout);
    expect(s.meanSideWidth).toBe(8);
    expect(s.meanRank + s.meanOutlierColumns).toBe(8);
  });
});

describe('aser ppl --artifact', () => {
  it('names the artifact and prints ppl ± a standard error that shrinks with more tokens', { timeout: 600_000 }, () => {
    const art = rank8Artifact().dir;
    const text = run('ppl', '--artifact', art, '--ctx', '64', '--max-windows', '4');
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`with artifact ${art.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(aser W4A8, fused kernels\\)`));
    const [, ppl, pm, tokens] = text.stdout.match(/ppl (\d+\.\d{4}) ± (\d+\.\d{4}) over (\d+) tokens/)!.map(Number);
    const few = { nllStdErr: pm! / ppl!, tokens: tokens! };

    const many = lastJson<{ ppl: number; pplStdErr: number; nllStdErr: number; tokens: number; artifact: string }>(run('ppl', '--artifact', art, '--ctx', '64', '--max-windows', '32', '--json').stdout);
    expect(many.artifact).toBe(art);
    expect(many.nllStdErr).toBeGreaterThan(0);
    expect(many.pplStdErr).toBeCloseTo(many.ppl * many.nllStdErr, 10);
    // 8× the tokens: the standard error of the mean falls roughly as 1/√8 ≈ 0.35 (per-token spread similar).
    expect(many.tokens).toBe(8 * few.tokens);
    expect(many.nllStdErr).toBeLessThan(few.nllStdErr * 0.6);
    expect(many.nllStdErr).toBeGreaterThan(few.nllStdErr * 0.2);
    expect(existsSync(art)).toBe(true);
  });
});
