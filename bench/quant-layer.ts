// Quantizer cost on one LLaMA-8B-sized linear (4096 x 14336, both orientations: up/gate [14336, 4096]
// and down [4096, 14336]), given its calibration moments, and (with --lapack) the LAPACK choice behind
// it: dgesdd of the whitened error versus the eigendecomposition of the smaller Gram matrix.
//
//   node dist/bench/quant-layer.js [--method aser] [--rank 64 | --alpha 0.1] [--shape 14336x4096] [--lapack] [--output-norm]
//
// The synthetic layer: x = D (B z / √k + √0.1 ε) with B [in, 256] Gaussian, D per-channel scales
// (lognormal, 8 channels ×50 as activation outliers); H = T·E[xxᵀ] = T·D (BBᵀ/k + 0.1 I) D with
// T = 262144 (128 × 2048 tokens, the paper's calibration), 256 sampled rows from the same model.
// W is Gaussian (σ = 0.02) with a few heavy columns. Building H is not timed; quantizeLinear is.
import { blasThreads, gram, matmul, matrix, svd, symEigTop, type Mat } from '../quant/linalg.js';
import { quantizeLinear, type QuantMethod, QUANT_METHODS } from '../quant/methods.js';
import { LinearInputStats, seededRandom } from '../quant/stats.js';
import { join } from 'node:path';
import { runIfMain, writeJsonReport } from './lib/report.js';
import { repoRoot } from '../loaders/datasets.js';

const TOKENS = 128 * 2048;
const LATENT = 256;

function gaussian(seed: number): () => number {
  const u = seededRandom(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

function syntheticStats(inF: number, seed: number): LinearInputStats {
  const g = gaussian(seed);
  const d = Float64Array.from({ length: inF }, () => Math.exp(0.5 * g()));
  for (let i = 0; i < 8; i++) d[Math.floor((i + 0.5) * (inF / 8))] *= 50;
  const b = matrix(inF, LATENT);
  for (let i = 0; i < b.data.length; i++) b.data[i] = g();
  const h = gram(b, 'AAt', { alpha: TOKENS / LATENT });
  for (let i = 0; i < inF; i++) h.data[i * inF + i] += 0.1 * TOKENS;
  for (let i = 0; i < inF; i++) for (let j = 0; j < inF; j++) h.data[i * inF + j] *= d[i]! * d[j]!;
  const sd = Float64Array.from({ length: inF }, (_, i) => Math.sqrt(h.data[i * inF + i]! / TOKENS));
  const sampleTokens = 256;
  const z = matrix(sampleTokens, LATENT);
  for (let i = 0; i < z.data.length; i++) z.data[i] = g() / Math.sqrt(LATENT);
  const xs = matmul(z, b, { transB: true });
  const sample = new Float32Array(sampleTokens * inF);
  for (let t = 0; t < sampleTokens; t++) for (let i = 0; i < inF; i++) sample[t * inF + i] = d[i]! * (xs.data[t * inF + i]! + Math.sqrt(0.1) * g());
  return LinearInputStats.fromMoments({
    h, tokens: TOKENS,
    meanAbs: sd.map((s) => s * Math.sqrt(2 / Math.PI)),
    maxAbs: sd.map((s) => 4.5 * s),
    sample: { x: sample, tokens: sampleTokens },
  });
}

function syntheticWeight(out: number, inF: number, seed: number): Float32Array {
  const g = gaussian(seed);
  const w = Float32Array.from({ length: out * inF }, () => 0.02 * g());
  for (let o = 0; o < out; o++) for (const j of [5, 77, 1234]) w[o * inF + (j % inF)] *= 8;
  return w;
}

function seconds(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function lapackComparison(): void {
  console.log('\nLAPACK: thin dgesdd of G versus the Gram route (dsyrk + dsytrd/dsterf + dstemr/dormtr for the top r)');
  for (const [m, n] of [[4096, 4096], [4096, 14336]] as const) {
    const g = gaussian(m + n);
    const a: Mat = matrix(m, n);
    for (let i = 0; i < a.data.length; i++) a.data[i] = g();
    let t0 = performance.now();
    const full = svd(a);
    const tSvd = seconds(t0);
    t0 = performance.now();
    const k = gram(a, 'AAt');
    const tGram = seconds(t0);
    t0 = performance.now();
    const eig = symEigTop(k, 64);
    const tEig = seconds(t0);
    let worst = 0;
    for (let i = 0; i < 64; i++) worst = Math.max(worst, Math.abs(Math.sqrt(eig.values[i]!) - full.s[i]!) / full.s[0]!);
    t0 = performance.now();
    svd(a, { vectors: false });
    const tValues = seconds(t0);
    console.log(`  ${m}x${n}  dgesdd (vectors) ${tSvd.toFixed(1)} s | dgesdd (values only) ${tValues.toFixed(1)} s | ` +
      `Gram ${tGram.toFixed(1)} s + eig (all values, top-64 vectors) ${tEig.toFixed(1)} s = ${(tGram + tEig).toFixed(1)} s ` +
      `(x${(tSvd / (tGram + tEig)).toFixed(1)} faster; max |σ_i − σ_i'|/σ_1 over the top 64 = ${worst.toExponential(1)})`);
  }
}

function parseArgs(args: string[]): { method: QuantMethod; rank?: number; alpha?: number; shapes: Array<[number, number]>; lapack: boolean; outputNorm: boolean } {
  let method: QuantMethod = 'aser';
  let rank: number | undefined;
  let alpha: number | undefined;
  let shapes: Array<[number, number]> = [[14336, 4096], [4096, 14336]];
  let lapack = false;
  let outputNorm = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--method') {
      const m = next();
      if (!QUANT_METHODS.includes(m as QuantMethod)) throw new Error(`--method: one of ${QUANT_METHODS.join(', ')}`);
      method = m as QuantMethod;
    } else if (a === '--rank') rank = Number(next());
    else if (a === '--alpha') alpha = Number(next());
    else if (a === '--shape') {
      const [o, n] = next().split('x').map(Number);
      if (!o || !n) throw new Error('--shape OUTxIN, e.g. 14336x4096');
      shapes = [[o, n]];
    } else if (a === '--lapack') lapack = true;
    else if (a === '--output-norm') outputNorm = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (rank === undefined && alpha === undefined) rank = 64;
  return { method, rank, alpha, shapes, lapack, outputNorm };
}

export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  const opts = parseArgs(args);
  console.log(`quant-layer: ${opts.method}, ${opts.rank !== undefined ? `rank ${opts.rank}` : `alpha ${opts.alpha}`}, W4A8, ` +
    `OpenBLAS threads ${blasThreads()}, calibration moments of ${TOKENS} tokens (given, not timed)`);
  const rows: Array<Record<string, unknown>> = [];
  for (const [out, inF] of opts.shapes) {
    let t0 = performance.now();
    const stats = syntheticStats(inF, 1);
    const weight = syntheticWeight(out, inF, 2);
    const tSetup = seconds(t0);
    t0 = performance.now();
    const { linear, diag } = quantizeLinear(opts.method, { name: `synthetic[${out},${inF}]`, weight, outFeatures: out, inFeatures: inF, stats },
      { rank: opts.rank, alpha: opts.alpha, outputNorm: opts.outputNorm });
    const total = seconds(t0);
    const phases = Object.entries(diag.timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
    console.log(`${opts.method}/${out}x${inF}  ${total.toFixed(1)} s  (budget 120 s: ${total < 120 ? 'ok' : 'OVER'}; setup ${tSetup.toFixed(1)} s untimed)`);
    console.log(`  phases [s]: ${phases}`);
    console.log(`  rank ${diag.rank} + ${diag.outliers.length} outlier columns, erank ${diag.erank.toFixed(1)}, damping ${diag.dampingUsed}, ` +
      (diag.outputNorm ? `‖XEᵀ‖/‖XWᵀ‖ ${(diag.outputErrorBefore / diag.outputNorm).toExponential(2)} → ${(diag.outputErrorAfter / diag.outputNorm).toExponential(2)}, ` : `‖XEᵀ‖ ${diag.outputErrorBefore.toExponential(3)} → ${diag.outputErrorAfter.toExponential(3)}, `) +
      `sampled W4A8 rel. error ${(diag.sampled!.error / diag.sampled!.norm).toExponential(2)}, side-path +FLOPs ${(diag.sideFlopsRatio * 100).toFixed(2)}%`);
    void linear;
    rows.push({ shape: `${out}x${inF}`, seconds: total, timings: diag.timings, rank: diag.rank, outliers: diag.outliers.length });
  }
  writeJsonReport(join(repoRoot(), 'bench', 'results', 'quant-layer.json'), { method: opts.method, rank: opts.rank ?? null, alpha: opts.alpha ?? null, blasThreads: blasThreads(), rows, date: new Date().toISOString() }, 'none: CPU only (LAPACK/BLAS through N-API)');
  if (opts.lapack) lapackComparison();
  return 0;
}

// `node dist/bench/quant-layer.js …` runs it directly; `npm run bench -- quant-layer …` imports main().
runIfMain(import.meta.url, main);
