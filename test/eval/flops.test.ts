// FLOPs and memory accounting (eval/flops.ts): the paper's Table 4 "+FLOPs" column from its mean
// ranks at d = 4096, and the per-layer / whole-model sums on real shapes.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { configLinears, flopsAccounting, manifestLinears } from '../../eval/flops.js';
import { SYNTH_SHAPES } from '../../loaders/synth.js';

describe('flopsAccounting', () => {
  it('reproduces ASER Table 4 (Qwen-7B, d = 4096): mean rank → +FLOPs', () => {
    // α: 0.1, 0.075, 0.05, 0.03, 0.015 → r̄ and the printed +FLOPs.
    const table: Array<[number, number]> = [[59.93, 2.93], [49.6, 2.42], [30.58, 1.49], [14.0, 0.68], [5.41, 0.26]];
    for (const [r, pct] of table) {
      const a = flopsAccounting([{ layer: 0, name: 'linear', inFeatures: 4096, outFeatures: 4096, rank: r }]);
      expect(a.total.flopsPct).toBeCloseTo(pct, 2);
      expect(a.total.paramPct).toBeCloseTo(pct, 2);
      expect(a.total.meanRank).toBe(r);
    }
  });

  it('sums per layer and over the model; bytes count int4 weights + scales vs f16 L_A/L_B', () => {
    const c = { ...SYNTH_SHAPES['llama3-8b'], nLayers: 2 };
    const ranks = Array.from({ length: 14 }, (_, i) => i);
    const a = flopsAccounting(configLinears(c, ranks));
    expect(a.layers.map((l) => l.layer)).toEqual([0, 1]);
    expect(a.layers[0]!.linears).toBe(7);
    expect(a.total.baseMacs).toBe(a.layers[0]!.baseMacs + a.layers[1]!.baseMacs);
    // q: 4096→4096, k/v: 4096→1024, o: 4096→4096, gate/up: 4096→14336, down: 14336→4096.
    const perLayerBase = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336;
    expect(a.layers[0]!.baseMacs).toBe(perLayerBase);
    expect(a.layers[0]!.sideMacs).toBe(0 * 8192 + 1 * 5120 + 2 * 5120 + 3 * 8192 + 4 * 18432 + 5 * 18432 + 6 * 18432);
    expect(a.total.meanRank).toBeCloseTo(6.5, 10);
    expect(a.layers[0]!.baseBytes).toBe(perLayerBase / 2 + 4 * (4096 + 1024 + 1024 + 4096 + 14336 + 14336 + 4096));
    expect(a.total.sideBytes).toBe(2 * a.total.sideMacs);
    // Uniform mean rank r̄ over a model: Σ r̄(in+out) / Σ in·out.
    const u = flopsAccounting(configLinears(c, 30.58)).total;
    expect(u.flopsPct).toBeCloseTo((100 * 30.58 * (2 * 8192 + 2 * 5120 + 3 * 18432)) / perLayerBase, 8);
    expect(() => configLinears(c, [1, 2, 3])).toThrow(/14/);
  });

  it('int8 factors: a byte a value plus 8 bytes of scales per rank; bytes share / FLOPs share drops from 4× to 2× on LLaMA-3-8B shapes', () => {
    const c = SYNTH_SHAPES['llama3-8b'];
    const f16 = flopsAccounting(configLinears(c, 30.58)).total;
    const i8 = flopsAccounting(configLinears(c, 30.58), { lowRankDtype: 'int8' }).total;
    expect(i8.sideMacs).toBe(f16.sideMacs);
    expect(i8.sideBytes).toBeCloseTo(f16.sideBytes / 2 + 32 * 7 * 8 * 30.58, 3);
    expect(f16.bytesPerFlopsShare).toBeGreaterThan(3.9);
    expect(i8.bytesPerFlopsShare).toBeGreaterThan(1.9);
    expect(i8.bytesPerFlopsShare).toBeLessThanOrEqual(2.1);
    expect(flopsAccounting(configLinears(c, 0)).total.bytesPerFlopsShare).toBe(0);
  });

  it('reads an artifact manifest’s layers', () => {
    const lin = manifestLinears({
      'model.layers.1.mlp.down_proj': { inFeatures: 256, outFeatures: 64, rank: 9, smooth: true },
      'model.layers.0.self_attn.q_proj': { inFeatures: 64, outFeatures: 64, rank: 9, smooth: true },
    });
    const a = flopsAccounting(lin);
    expect(a.layers.map((l) => l.layer)).toEqual([0, 1]);
    expect(a.layers[0]!.flopsPct).toBeCloseTo((100 * 9 * 128) / 4096, 10);
    expect(a.layers[0]!.baseBytes).toBe(64 * 64 / 2 + 4 * 64 + 4 * 64);
  });
});

describe('aser flops / aser eval (built CLI)', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['dist/cli/aser.js', ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
  it('aser flops --model llama3-8b --alpha 0.05 needs no weights and gives the whole-model share', () => {
    const r = run('flops', '--model', 'llama3-8b', '--alpha', '0.05', '--json');
    expect(r.status, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout.trim().split('\n').pop()!) as { total: { flopsPct: number; meanRank: number; linears: number } };
    expect(a.total.linears).toBe(32 * 7);
    expect(a.total.meanRank).toBeCloseTo(30.58, 6);
    // Non-square linears: Σ r̄(in+out)/Σ in·out = 30.58 · 81920 / 218103808 per layer.
    expect(a.total.flopsPct).toBeCloseTo((100 * 30.58 * 81920) / 218103808, 6);
    const i8 = run('flops', '--model', 'llama3-8b', '--alpha', '0.05', '--lowrank-dtype', 'int8', '--json');
    expect(i8.status, i8.stderr).toBe(0);
    const b = JSON.parse(i8.stdout.trim().split('\n').pop()!) as { origin: string; total: { bytesPerFlopsShare: number } };
    expect(b.origin).toMatch(/int8 L_A\/L_B/);
    expect(b.total.bytesPerFlopsShare).toBeLessThanOrEqual(2.1);
  });
  it('bad usage is one line and exit code 2', () => {
    for (const args of [['flops', '--model', 'stories260k'], ['flops', '--model', 'stories260k', '--ranks', '1,2'], ['eval', 'zeroshot', '--tasks', 'nope'], ['eval', 'kld', '--ctx', '2'], ['eval', 'report', '--abits', '8', '--max-windows', '0'], ['flops', '--model', 'llama3-8b', '--ranks', '8', '--lowrank-dtype', 'int4'], ['quantize', '--lowrank-dtype', 'int4', '--out', '/tmp/aser-never-written']]) {
      const r = run(...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^aser: error: /m);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
