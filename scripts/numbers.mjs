#!/usr/bin/env node
// `npm run numbers`: renders docs/numbers.md from the JSON that named commands wrote
// (bench/results/*.json, and the committed `aser eval report` results.json). Nothing in numbers.md is
// typed by hand: every figure below is read from one of those files, and every section names the
// command that wrote its file and that run's date, commit, adapter and load average ("not recorded"
// where the file lacks one). test/docs/numbers.test.ts fails when docs/numbers.md differs from this.
//
//   node scripts/numbers.mjs            write docs/numbers.md
//   node scripts/numbers.mjs --check    exit 1 when docs/numbers.md is stale
//   node scripts/numbers.mjs --out F    write F instead
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const NUMBERS_MD = 'docs/numbers.md';

/** Every source: its file, the command that writes it, and the section that renders it. */
export const SOURCES = [
  { id: 'forward', file: 'bench/results/forward.json', command: 'npm run bench -- forward' },
  { id: 'kernels', file: 'bench/results/kernels.json', command: 'npm run bench -- kernels' },
  { id: 'peer', file: 'bench/results/peer-llamacpp.json', command: 'npm run bench -- peer-llamacpp' },
  { id: 'serve', file: 'bench/results/serve.json', command: 'npm run bench -- serve' },
  { id: 'load', file: 'bench/results/load.json', command: 'npm run bench -- load' },
  { id: 'fuzz', file: 'bench/results/fuzz.json', command: 'npm run bench -- fuzz --seed 8' },
  { id: 'quantLayer', file: 'bench/results/quant-layer.json', command: 'npm run bench -- quant-layer' },
  { id: 'quantizeModel', file: 'bench/results/quantize-model.json', command: 'npm run bench -- quantize-model --methods aser,rtn' },
  { id: 'llama8b', file: 'bench/results/llama3-8b.json', command: 'npm run bench -- llama3-8b --steps fp,quantize,w4a8 --rank 32' },
  { id: 'sameOutputs', file: 'bench/results/same-outputs.json', command: 'npm run bench -- same-outputs --base 9eeee11 --tests' },
  { id: 'smoothing', file: 'bench/results/smoothing.json', command: 'npm run bench -- smoothing --max-windows 32' },
  { id: 'classifier', file: 'bench/results/classifier.json', command: 'npm run bench -- classifier' },
  { id: 'decodeSpeedup', file: 'bench/results/decode-speedup.json', command: 'npm run bench -- decode-speedup' },
  { id: 'web', file: 'bench/results/web.json', command: 'npm run bench -- web' },

  { id: 'budget', file: 'bench/results/budget.json', command: 'npm run bench -- budget' },
  { id: 'outliers', file: 'bench/results/outliers.json', command: 'npm run bench -- outliers' },
  ...[8, 4].map((a) => ({
    id: `budgetCurveA${a}`, file: `bench/results/budget-curve-a${a}/alpha.json`,
    command: `aser eval alpha --budget-curve --alphas 0.1,0.05,0.015 --uniform-ranks 1,3,6 --abits ${a} --max-windows 32 --out bench/results/budget-curve-a${a}`,
  })),

  { id: 'lowrank', file: 'bench/results/lowrank.json', command: 'npm run bench -- lowrank --part quality --max-windows 48' },
  { id: 'lowrankKernels', file: 'bench/results/lowrank-kernels.json', command: 'npm run bench -- lowrank --part kernels' },

  { id: 'gguf', file: 'bench/results/gguf.json', command: 'npm run bench -- gguf --work /tmp/aser-gguf-work --keep --ctx 64 --windows 1 --dtypes f16,q8_0' },
  {
    id: 'ggufStories',
    file: 'bench/results/gguf-stories260k.json',
    command: 'npm run bench -- gguf --model stories260k --dtypes f32,f16,q8_0,q4_0 --ctx 256 --windows 8 --dataset tinystories --runtime-dtype f32 --out bench/results/gguf-stories260k.json',
  },
  {
    id: 'peer8b',
    file: 'bench/results/peer-llamacpp-8b.json',
    command: 'npm run bench -- peer-llamacpp --model llama3-8b-l1 --prefill 32 --decode 8 --repeats 1 --ctx 64 --windows 1 --ours f16,w4a8 --out bench/results/peer-llamacpp-8b.json',
  },
  {
    id: 'gpuKit',
    file: 'bench/results/gpu-check-llvmpipe.json',
    command: '`npm run gpu-kit -- --out out/gpu-kit`, then `bash out/gpu-kit/run.sh --quick --out bench/results/gpu-check-llvmpipe.json` with no Node on PATH',
    short: 'bash out/gpu-kit/run.sh --quick',
  },
  {
    id: 'report',
    file: 'test/fixtures/report-results.json',
    command: '`aser eval report --model stories260k` (its `report/results.json`, committed as the fixture of test/eval/report-html.test.ts)',
    short: 'aser eval report --model stories260k',
  },
];

// ---------------------------------------------------------------- formatting

const NR = 'not recorded';
const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
/** Fixed decimals; '—' for a value the file does not hold. */
export function f(x, d = 2) {
  return isNum(x) ? x.toFixed(d) : '—';
}
/** Thousands separated with commas, integer. */
function int(x) {
  return isNum(x) ? Math.round(x).toLocaleString('en-US') : '—';
}
const gib = (b) => f(b / 2 ** 30, 2);
const mib = (b) => f(b / 2 ** 20, 1);
const pct = (x, d = 1) => (isNum(x) ? `${(100 * x).toFixed(d)}` : '—');
function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
/** min–max of numbers, one value when they are equal to the shown precision. */
function range(xs, d) {
  const v = xs.filter(isNum);
  if (v.length === 0) return '—';
  const lo = f(Math.min(...v), d), hi = f(Math.max(...v), d);
  return lo === hi ? lo : `${lo}–${hi}`;
}
const median = (xs) => {
  const v = xs.filter(isNum).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// ---------------------------------------------------------------- run metadata

/** date, commit, adapter, load average of one JSON, from the `run` block bench/lib/report.ts writes or the fields older files hold. */
export function runInfo(j) {
  const run = j.run ?? {};
  const date = run.date ?? j.date ?? j.createdAt;
  let commit = run.commit ?? j.commit;
  if (commit && run.dirty) commit += ' (with uncommitted changes)';
  const adapter =
    run.adapter ??
    (typeof j.adapter === 'string' ? j.adapter : j.adapter?.describe) ??
    j.aser?.adapter ??
    (j.profile?.device ? `${j.profile.device} (latency profile stage)` : undefined);
  let load;
  const three = (a) => a.map((x) => f(x, 2)).join(' / ');
  if (Array.isArray(run.loadavg)) load = `${three(run.loadavg)} (1 / 5 / 15 min, when written)`;
  else if (j.loadAverage && isNum(j.loadAverage.before)) load = `${f(j.loadAverage.before)} before, ${f(j.loadAverage.after)} after (1 min)`;
  else if (Array.isArray(j.host?.loadavg)) load = `${three(j.host.loadavg)} (1 / 5 / 15 min, at the end)`;
  else if (Array.isArray(j.machine?.loadAverageStart)) load = `${three(j.machine.loadAverageStart)} at the start, ${three(j.machine.loadAverageEnd)} at the end (1 / 5 / 15 min)`;
  else if (isNum(j.load)) load = `${f(j.load)} (1 min, at the end)`;
  return { date: date ?? NR, commit: commit ?? NR, adapter: adapter ?? NR, load: load ?? NR };
}

function sourceLine(src, j) {
  const r = runInfo(j);
  return [
    `Source: \`${src.file}\`, written by ${src.command.startsWith('`') ? src.command : `\`${src.command}\``}.`,
    '',
    `Run: date ${r.date} · commit ${r.commit} · adapter ${r.adapter} · load average ${r.load}.`,
  ].join('\n');
}

// ---------------------------------------------------------------- sections

function forward(src, j) {
  const s = j.settings ?? {};
  const rows = (j.results ?? []).map((r) => [r.dtype, f(r.prefillTokPerSec, 0), f(r.prefillGpuTokPerSec, 0), f(r.decodeTokPerSec, 0), f(r.decodeGpuTokPerSec, 0), f(r.decodeMsPerToken, 2)]);
  return [
    `## Forward pass, ${j.model?.id ?? ''} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Prefill ${s.prefill} tokens, decode ${s.decode} tokens, ${s.repeats} repeats (medians), timer ${j.timer ?? NR}.`,
    '',
    table(['dtype', 'prefill tok/s', 'prefill GPU tok/s', 'decode tok/s', 'decode GPU tok/s', 'decode ms/token'], rows),
  ].join('\n');
}

function kernels(src, j) {
  const rows = j.rows ?? [];
  const get = (shape, tokens, variant) => rows.find((r) => r.shape === shape && r.tokens === tokens && r.variant === variant);
  const shapesAt = (tokens) => [...new Set(rows.filter((r) => r.tokens === tokens).map((r) => r.shape))];
  const cell = (r) => (r ? `${f(r.minMs, 3)} (${f(r.medianMs, 3)})` : '—');
  const p = j.peaks ?? {};
  const out = [
    `## Kernels — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Shapes are in→out. Each cell: min over samples (median in brackets), ms. Peaks measured in the same run: copy ${f(p.copyGBs, 1)} GB/s, dot4I8Packed ${f(p.dot4GOPs, 1)} GOP/s, f32 fma ${f(p.fmaGFLOPs, 1)} GFLOP/s, one dispatch ${f(isNum(p.dispatchMs) ? p.dispatchMs * 1000 : NaN, 1)} µs. Timer ${j.timer ?? NR}${j.quick ? ', --quick' : ''}.`,
  ];
  const variantsAt = (tokens) => {
    const all = [...new Set(rows.filter((r) => r.tokens === tokens).map((r) => r.variant))];
    const order = ['f32 dense', 'f16 dense', 'w4a8 fused r0', 'w4a8 fused r14', 'w4a8 unfused r14', 'w4a8 fused r60'];
    return order.filter((v) => all.includes(v));
  };
  for (const tokens of [...new Set(rows.map((r) => r.tokens))].sort((a, b) => a - b)) {
    const vs = variantsAt(tokens);
    out.push('', `### ${tokens === 1 ? 'Decode, 1 token' : `Prefill, ${tokens} tokens`}`, '');
    out.push(table(['shape', ...vs], shapesAt(tokens).map((s) => [s, ...vs.map((v) => cell(get(s, tokens, v)))])));
  }
  out.push('', '### Targets (decode, q/o 4096→4096), as the run computed them', '');
  out.push(table(['target', 'ratio of min times', 'ratio of medians'], Object.entries(j.targets ?? {}).map(([k, v]) => [k, `${f(v.min)}×`, `${f(v.median)}×`])));
  out.push('', '### Fused vs unfused at rank 14, decode (unfused time / fused time, per shape)', '');
  const fu = shapesAt(1)
    .map((s) => [s, get(s, 1, 'w4a8 fused r14'), get(s, 1, 'w4a8 unfused r14')])
    .filter(([, a, b]) => a && b)
    .map(([s, a, b]) => [s, `${f(b.minMs / a.minMs)}×`, `${f(b.medianMs / a.medianMs)}×`]);
  out.push(table(['shape', 'ratio of min times', 'ratio of medians'], fu));
  out.push('', '### Side path, decode: latency overhead ÷ FLOPs overhead (min times, vs fused r0)', '');
  const side = j.sideRatios ?? [];
  const sideShapes = [...new Set(side.map((s) => s.shape))];
  const ranks = [...new Set(side.map((s) => s.variant))];
  out.push(table(['shape', ...ranks, 'range'], sideShapes.map((sh) => [sh, ...ranks.map((v) => f(side.find((s) => s.shape === sh && s.variant === v)?.latencyPerFlops, 2)), range(side.filter((s) => s.shape === sh).map((s) => s.latencyPerFlops), 1)])));
  out.push('', 'A negative value means the rank-r run was faster than rank 0 (noise larger than the side path).');
  const stages = Object.entries(j.decodeStagesMs ?? {});
  if (stages.length) {
    out.push('', '### Decode 4096→4096, each stage alone (min ms)', '');
    out.push(table(['variant / stage', 'ms'], stages.map(([k, v]) => [k, f(v, 3)])));
  }
  const gemv = rows.filter((r) => r.tokens === 1 && isNum(r.groupCopyGBs) && r.variant !== 'f16 dense' && !/unfused| r[1-9]/.test(r.variant));
  if (gemv.length) {
    out.push('', '### Decode GEMV vs the copy probe timed in the same group (weight bytes / min time)', '');
    out.push(table(['shape', 'variant', 'min ms', 'weight GB/s', 'copy GB/s', 'fraction of copy'], gemv.map((r) => [r.shape, r.variant, f(r.minMs, 3), f(r.weightGbPerS), f(r.groupCopyGBs), `${f(100 * r.weightBwFraction, 0)} %`])));
    out.push('', '`gemv:<inner>`: kernel B\'s GEMV with that inner product forced, beside the adapter\'s default (`gemv:dot4 rpt4`: dot4I8Packed, 4 rows per thread, the CPU-adapter GEMV before SWAR); `w8a8`: per-channel int8 weights (a quantized classifier).');
  }
  if ((j.skipped ?? []).length) out.push('', `Left out to stay in the time budget: ${j.skipped.join('; ')}.`);
  return out.join('\n');
}

function peer(src, j) {
  const d = j.data ?? {};
  const m = j.model ?? {};
  const shape = isNum(m.hidden) ? ` (dim ${m.dim}, hidden ${m.hidden}, ${m.layers} layer${m.layers > 1 ? 's' : ''}, vocab ${m.vocab})` : '';
  const rate = (x) => (isNum(x) && x < 10 ? f(x, 2) : f(x, 0)); // 8B-shaped runs measure fractions of a token per second
  const res = (j.results ?? []).map((r) => [r.engine, r.backend, r.weights, rate(r.prefillTokPerSec), rate(r.decodeTokPerSec), rate(r.pplTokPerSec), f(r.ppl, 6)]);
  const ratios = (j.ratios ?? []).map((r) => [r.what, r.ours, r.baseline, `${f(r.ratio)}×`, r.target !== undefined ? `${r.target}×` : '']);
  const agree = (j.agreement ?? []).map((a) => [a.weights, a.peer, f(a.oursPpl, 6), f(a.theirsPpl, 6), isNum(a.relDiff) ? a.relDiff.toExponential(1) : '—']);
  return [
    `## Peer: llama.cpp (node-llama-cpp ${j.llamacpp?.nodeLlamaCpp ?? NR}) on the same GGUF and windows, ${m.id} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Model ${m.id}${shape}; ${d.dataset} ${d.protocol} protocol, ctx ${d.ctx}, ${d.windows} windows; prefill ${j.settings?.prefill}, decode ${j.settings?.decode} tokens, ${j.settings?.repeats} repeats; ${j.timer ?? ''}.`,
    ...(m.weights && isNum(m.hidden) ? ['', `Weights: ${m.weights}.`] : []),
    ...(j.note ? ['', j.note] : []),
    '',
    table(['engine', 'backend', 'weights', 'prefill tok/s', 'decode tok/s', 'ppl-eval tok/s', 'ppl'], res),
    '',
    table(['ratio', 'ours', 'baseline', 'measured', 'target'], ratios),
    '',
    'Perplexity agreement on the same windows:',
    '',
    table(['weights', 'peer', 'ours', 'theirs', 'relative difference'], agree),
    ...((j.greedy ?? []).length ? ['', 'Greedy decode from BOS on the same float weights:', '', table(['weights', 'first tokens', 'aser vs llama.cpp cpu'], j.greedy.map((g) => [g.weights, g.aser.length, g.same ? 'identical' : 'differ']))] : []),
  ].join('\n');
}

function gguf(src, j) {
  const rows = (j.rows ?? []).map((r) => [
    r.format === 'hf' ? (String(j.model).startsWith('/') ? 'HF directory (bf16 safetensors)' : `${j.model} (its own file)`) : `GGUF ${r.exportDtype}`,
    isNum(r.fileBytes) ? f(r.fileBytes / 1e6, 0) : '—',
    f(r.ppl, 4),
    f(r.nll, 4),
    isNum(r.relDiff) ? r.relDiff.toExponential(2) : '—',
    isNum(r.bar) ? `≤ ${r.bar}: ${r.withinBar ? 'met' : 'NOT met'}` : '—',
    isNum(r.exportSeconds) ? f(r.exportSeconds, 0) : '—',
    f(r.processSeconds, 0),
  ]);
  return [
    `## GGUF round trip: ${String(j.model).includes('llama3-8b') ? 'the LLaMA-3-8B shape (synthetic weights)' : j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Model \`${j.model}\`${j.synthCommand ? ` (\`${j.synthCommand}\`)` : ''}; \`aser ppl --dtype ${j.runtimeDtype}\` on ${j.dataset}, ctx ${j.ctx}, ${j.windows} windows, the same for every row. ${j.note ?? ''}`,
    '',
    table(['weights', 'file MB', 'ppl', 'NLL / token', 'relative ppl difference to the source', 'bar', 'export s', 'ppl process s'], rows),
    '',
    'Commands, one process each:',
    '',
    ...(j.rows ?? []).flatMap((r) => [...(r.exportCommand ? [`- \`${r.exportCommand}\``] : []), `- \`${r.pplCommand}\``]),
  ].join('\n');
}

function serve(src, j) {
  const s = j.settings ?? {};
  // Files written before continuous batching hold one model and no variants.
  const models = j.models ?? [{ label: j.model?.id, model: j.model, maxTokens: s.maxTokens, variants: [{ parallel: 1, engine: s.scheduler, levels: j.results ?? [] }] }];
  const parts = [
    `## Serving: continuous batching vs one request at a time, on loopback — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Streaming completions, ${s.sampling ?? 'sampled'}; requests per level: ${s.requests}. Every level runs on each server back to back (order alternating by level). Time to first token includes the queue wait; inter-token latency is the gap between text chunks of one stream.`,
  ];
  if (j.complete === false) parts.push('', 'This run was cut short: the models below are those that finished.');
  for (const m of models) {
    const rows = [];
    for (const v of m.variants ?? []) {
      for (const r of v.levels ?? []) {
        const itl = r.itlMs ?? r.interChunkMs;
        rows.push([v.parallel, r.clients, r.requests, r.errors, f(r.tokensPerSec, 1), `${f(r.ttftMs?.p50, 0)} / ${f(r.ttftMs?.p95, 0)}`, `${f(itl?.p50, 1)} / ${f(itl?.p95, 1)}`, `${f(r.latencyMs?.p50, 0)} / ${f(r.latencyMs?.p95, 0)}`]);
      }
    }
    const sum = m.summary ?? {};
    parts.push(
      '',
      `### ${m.label ?? m.model?.id} (${m.model?.artifact ? 'artifact' : m.model?.dtype ?? ''}), ${m.maxTokens} tokens per request, context ${m.model?.contextLength ?? '—'}`,
      '',
      table(['--parallel', 'clients', 'requests', 'errors', 'generated tok/s', 'time to first token p50 / p95 ms', 'inter-token p50 / p95 ms', 'latency p50 / p95 ms'], rows),
    );
    if (isNum(sum.batchingScaling)) parts.push('', `Batching: ${sum.mostClients} clients get ${f(sum.batchingScaling, 2)}× the aggregate tok/s of ${sum.fewestClients}; at ${sum.mostClients} clients, ${f(sum.batchingVsParallel1, 2)}× the tok/s of \`--parallel 1\`.`);
  }
  return parts.join('\n');
}

function load(src, j) {
  const r = j.serverRssMiB ?? {};
  return [
    `## Load: streaming clients against the server — \`${src.command}\``,
    sourceLine(src, j),
    '',
    table(
      ['clients', 'seconds sending', 'wall s', 'requests', 'errors', 'well-formed streams', 'tok/s', 'latency p50 / p95 / max ms', 'first byte p50 / p95 ms', 'server RSS start / end / peak MiB'],
      [[j.clients, j.seconds, f(j.wallSeconds, 1), j.requests, j.errors, j.wellFormedStreams, f(j.tokensPerSec, 1), `${int(j.latencyMs?.p50)} / ${int(j.latencyMs?.p95)} / ${int(j.latencyMs?.max)}`, `${int(j.firstByteMs?.p50)} / ${int(j.firstByteMs?.p95)}`, `${f(r.start, 1)} / ${f(r.end, 1)} / ${f(r.peak, 1)}`]],
    ),
    '',
    `Server RSS every ~5 s (MiB): ${(r.timeline ?? []).map((t) => f(t.rssMiB, 0)).join(', ')}.`,
  ].join('\n');
}

function fuzz(src, j) {
  const forms = j.formats ?? [];
  const bad = (o) => Object.entries(o).filter(([k]) => /crash|hang|unreported|untyped|^5\d\d/.test(k)).reduce((n, [, v]) => n + v, 0);
  const rows = forms.map((x) => [x.format, int(x.cases), Object.entries(x.outcomes).map(([k, v]) => `${k} ${v}`).join(', '), x.failures.length, x.hangs.length, bad(x.outcomes), f(x.maxCaseMs, 0), f(x.wallSeconds, 1)]);
  const total = forms.reduce((n, x) => n + x.cases, 0);
  return [
    `## Fuzzing — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Seed ${j.seed}, ${int(j.casesPerFormat)} cases per format (${int(total)} in all), bound ${j.caseBoundMs} ms per loader case, hang after ${j.hangMs} ms. Bench process RSS ${f(j.rssMiB?.start, 1)} → ${f(j.rssMiB?.end, 1)} MiB (peak ${f(j.rssMiB?.peak, 1)}).`,
    '',
    table(['format', 'cases', 'outcomes', 'failures', 'hangs', 'crash / hang / 5xx outcomes', 'max ms per case', 'wall s'], rows),
  ].join('\n');
}

function quantLayer(src, j) {
  const rows = (j.rows ?? []).map((r) => [r.shape, r.rank, r.outliers, f(r.seconds, 1), ...['stats', 'smoothing', 'rtn', 'lowRank', 'factors', 'diagnostics'].map((k) => f(r.timings?.[k], 1))]);
  return [
    `## Quantizer: one 8B-sized layer — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Method ${j.method}, rank ${j.rank ?? '—'}, α ${j.alpha ?? '—'}, ${j.blasThreads} BLAS threads; H given (synthetic). Shape is [out, in].`,
    '',
    table(['layer [out, in]', 'rank', 'outliers', 'total s', 'stats s', 'smoothing s', 'rtn s', 'lowRank s', 'factors s', 'diagnostics s'], rows),
  ].join('\n');
}

function quantizeModel(src, j) {
  const c = j.calibration ?? {};
  return [
    `## Quantizer: stories260K end to end — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `${j.model}, W4A8, rank ${j.rank}, calibration ${c.calib} ${c.calibSamples} × ${c.calibLen} tokens, seed ${c.seed}.`,
    '',
    table(['method', 'calibrate s', 'quantize + write s', 'total s'], (j.rows ?? []).map((r) => [r.method, f(r.calibrateS, 1), f(r.quantizeWriteS, 1), f(r.totalS, 1)])),
  ].join('\n');
}

function llama8b(src, j) {
  const a = j.args ?? {};
  const r = j.results ?? {};
  const rows = [];
  if (r.fp) rows.push(['load + generate, bf16 → f16 dense', f(r.fp.wallSeconds, 0), gib(r.fp.peakRssBytes), gib(r.fp.memory?.total), `load ${f(r.fp.loadSeconds, 1)} s (${int(r.fp.load?.bytesRead)} B in ${r.fp.load?.chunks} chunks ≤ ${mib(r.fp.load?.largestChunk)} MiB); prefill ${f(r.fp.prefillSeconds, 1)} s; decode ${f(r.fp.decodeTokensPerSecond, 2)} tok/s; embedding on the ${r.fp.embedding}`]);
  if (r.quantize) {
    const q = r.quantize;
    rows.push(['quantize', f(q.wallSeconds, 0), gib(q.peakRssBytes), gib(q.gpuBytes), `load ${f(q.loadSeconds, 0)} s, calibrate ${f(q.calibrateSeconds, 0)} s, quantize ${f(q.quantizeSeconds, 0)} s, write ${f(q.writeSeconds, 1)} s; calibration ${q.calibration?.samples} × ${q.calibration?.seqLen} tokens in ${q.calibration?.dtype}, ${q.calibration?.layersPerPass} layer per pass; mean side width ${f(q.meanRank, 1)}`]);
  }
  if (r.w4a8) rows.push(['load + generate, W4A8 artifact', f(r.w4a8.wallSeconds, 0), gib(r.w4a8.peakRssBytes), gib(r.w4a8.memory?.total), `load ${f(r.w4a8.loadSeconds, 1)} s; prefill ${f(r.w4a8.prefillSeconds, 1)} s; decode ${f(r.w4a8.decodeTokensPerSecond, 2)} tok/s; \`aser plan\` ${int(r.w4a8.plan?.total)} B, equal to the executor's count: ${r.w4a8.plan?.matchesExecutor}`]);
  const out = [
    `## LLaMA-3-8B shapes, ${a.layers}-layer synthetic model — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Model \`${a.dir}\` (from \`aser synth --shape llama3-8b --layers ${a.layers} --seed 0\`), artifact ASER W4A8 rank ${a.rank}; ${a.tokens} generated tokens per step; each step a child process. On a CPU adapter GPU buffers are host memory, so peak RSS includes them.`,
    '',
    table(['step', 'wall s', 'peak RSS GiB', 'GPU (executor) GiB', 'notes'], rows),
  ];
  const q = r.quantize;
  if (q && isNum(q.quantizeSeconds) && isNum(a.layers)) {
    const perLayer = q.quantizeSeconds / a.layers;
    out.push('', `Per layer, from the quantize row: quantize ${f(perLayer, 0)} s; × 32 layers (linear in depth) = ${f((32 * perLayer) / 3600, 1)} h on this run's machine and load.`);
  }
  const p = r.w4a8?.plan32;
  if (p) {
    out.push('', `\`aser plan\` for ${p.layers} layers, ctx ${p.ctx}, at the measured mean side width ${p.meanRank}: ${int(p.total)} B = ${gib(p.total)} GiB.`, '');
    out.push(table(['item', 'MiB'], Object.entries(p.items).map(([k, v]) => [k, mib(v)])));
  }
  return out.join('\n');
}

function report(src, j) {
  const s = j.settings ?? {};
  const ppl = j.ppl;
  const out = [`## Evaluation suite, ${j.model} — \`${src.short}\``, sourceLine(src, j), ''];
  out.push(`Stage seconds in this run (cached stages take almost none): ${Object.entries(j.timings ?? {}).map(([k, v]) => `${k} ${f(v, 1)}`).join(', ')}; total ${f(j.seconds, 1)} s.`);
  if (ppl) {
    const cols = [];
    for (const a of ppl.abits) for (const d of ppl.datasets) cols.push([a, d]);
    const rows = ppl.methods.map((m) => {
      const any = ppl.cells.find((c) => c.method === m);
      return [any?.label ?? m, f(any?.meanSideRank, 2), f(any?.flopsPct, 2), ...cols.map(([a, d]) => f(ppl.cells.find((c) => c.method === m && c.abits === a && c.dataset === d)?.ppl, 3))];
    });
    out.push('', '### Perplexity', '', table(['method', 'side width', '+FLOPs %', ...cols.map(([a, d]) => `W4A${a} ${d}`)], rows), '', ppl.caption ?? '');
  }
  const al = j.alpha;
  if (al) {
    out.push('', `### α sweep, ${al.method} W${al.wbits}A${al.abits}`, '');
    out.push(table(['α', 'mean rank', 'mean side width', '+FLOPs %', ...al.datasets.map((d) => `${d} ppl`)], [
      ['fp32', '–', '–', '–', ...al.datasets.map((d) => f(al.fp?.[d], 3))],
      ...al.rows.map((r) => [r.alpha, f(r.meanRank, 2), f(r.meanSideRank, 2), f(r.flopsPct, 2), ...al.datasets.map((d) => f(r.ppl?.[d], 3))]),
    ]));
  }
  if ((j.kld ?? []).length) {
    const k0 = j.kld[0];
    out.push('', `### KL divergence to fp32 (${k0.dataset}, ${k0.protocol} protocol, ctx ${k0.ctx}, ${k0.windows} windows = ${int(k0.tokens)} tokens; fp32 ppl ${f(k0.pplRef, 4)})`, '');
    out.push(table(['model', 'ppl', 'Δppl', 'mean KLD', 'median', 'p90', 'p95', 'p99', 'max', 'same top %'], j.kld.map((k) => [k.method, f(k.ppl, 4), `${f(k.deltaPpl, 4)} ± ${f(k.deltaPplStderr, 4)}`, `${f(k.kldMean, 5)} ± ${f(k.kldStderr, 5)}`, f(k.kldMedian, 5), f(k.kldP90, 5), f(k.kldP95, 5), f(k.kldP99, 5), f(k.kldMax, 5), `${f(k.sameTopPct, 2)} ± ${f(k.sameTopStderrPct, 2)}`])));
  }
  if ((j.zeroshot ?? []).length) {
    out.push('', `### Zero-shot accuracy (limit ${s.zeroshotLimit} documents per task; % ± stderr)`, '');
    const tasks = [...new Set(j.zeroshot.flatMap((z) => z.tasks.map((t) => t.task)))];
    out.push(table(['task', 'chance %', ...j.zeroshot.map((z) => z.model)], tasks.map((t) => {
      const first = j.zeroshot.flatMap((z) => z.tasks).find((x) => x.task === t);
      return [t + (first?.fixture ? ' (4-item fixture)' : ''), pct(first?.chance, 0), ...j.zeroshot.map((z) => {
        const x = z.tasks.find((y) => y.task === t);
        return x ? `${pct(x.acc)} ± ${pct(x.accStderr)} (n ${x.n})${x.aboveChance ? ', above chance + 2·stderr' : ''}` : '';
      })];
    })));
  }
  const fl = j.flops;
  if (fl) {
    const t = fl.accounting.total;
    out.push('', `### FLOPs and bytes of the ${fl.method} artifact (\`aser flops\`)`, '');
    // Results written before meanSideWidth existed counted outlier columns in meanRank.
    out.push(`${t.linears} block linears, mean ${t.meanSideWidth === undefined ? 'side width' : 'rank'} ${f(t.meanRank, 2)}${t.meanSideWidth === undefined ? '' : ` (side path ${f(t.meanSideWidth, 2)} columns wide)`}: +${f(t.flopsPct, 2)} % FLOPs, +${f(t.paramPct, 2)} % parameters, +${f(t.bytePct, 2)} % bytes (${int(t.sideBytes)} B side path over ${int(t.baseBytes)} B).`);
  }
  const pr = j.profile;
  if (pr) {
    out.push('', `### Latency profile, side path on vs off (${pr.method}; prefill ${pr.settings?.prefill}, decode ${pr.settings?.decode} tokens, ${pr.settings?.repeats} interleaved rounds; timer ${pr.timer})`, '');
    out.push(`Wall: fp32 prefill ${f(pr.fp?.prefill?.tokPerSec, 0)} tok/s, decode ${f(pr.fp?.decode?.tokPerSec, 0)} tok/s; quantized, side path on: prefill ${f(pr.quantized?.on?.prefill?.tokPerSec, 0)}, decode ${f(pr.quantized?.on?.decode?.tokPerSec, 0)} tok/s.`, '');
    out.push(table(['linear kind', '+FLOPs %', 'prefill on / off ms', 'prefill +latency %', 'decode on / off ms', 'decode +latency %'], pr.sideShare.map((x) => [x.kind, f(x.flopsPct, 1), `${f(x.prefillOnMs, 2)} / ${f(x.prefillOffMs, 2)}`, f(x.prefillOverheadPct, 1), `${f(x.decodeOnMs, 3)} / ${f(x.decodeOffMs, 3)}`, f(x.decodeOverheadPct, 1)])));
  }
  const dg = j.diagnose;
  if (dg) {
    const methods = Object.keys(dg.linears[0]?.outputError ?? {});
    const kinds = [...new Set(dg.linears.map((l) => l.linear))];
    out.push('', `### Quantizer diagnostics (\`aser eval diagnose\`, run by the report; W${dg.settings.wbits}A${dg.settings.abits}, side-path width ${dg.settings.rank})`, '');
    out.push(table(['linear kind', 'in→out', 'erank E / E·S (mean)', ...methods.map((m) => `${m} error`)], kinds.map((k) => {
      const ls = dg.linears.filter((l) => l.linear === k);
      return [k, `${ls[0].inFeatures}→${ls[0].outFeatures}`, `${f(mean(ls.map((l) => l.erankE)), 1)} / ${f(mean(ls.map((l) => l.erankES)), 1)}`, ...methods.map((m) => f(mean(ls.map((l) => l.outputError[m])), 4))];
    })));
    const all = (m) => f(mean(dg.linears.map((l) => l.outputError[m])), 4);
    const ratios = dg.linears.map((l) => l.activationOutlierRatio);
    out.push('', `Mean relative output error ‖X(W − W_eff)ᵀ‖/‖XWᵀ‖ via H, per linear kind over the layers; over all ${dg.linears.length} linears: ${methods.map((m) => `${m} ${all(m)}`).join(', ')}. Activation outlier ratio (max/median of the per-channel mean |x|): ${range(ratios, 2)} (median ${f(median(ratios), 2)}).`);
  }
  return out.join('\n');
}

function sameOutputs(src, j) {
  const b = j.base ?? {}, h = j.head ?? {};
  const yes = (x) => (x ? 'same' : 'different');
  const short = (x) => (typeof x === 'string' ? `\`${x.slice(0, 12)}\`` : '—');
  const rows = Object.entries(h.artifactFiles ?? {}).map(([file, hash]) => [`artifact ${file} sha256`, short(b.artifactFiles?.[file]), short(hash), yes(b.artifactFiles?.[file] === hash)]);
  rows.push(['manifest.json less createdAt and timings, sha256', short(b.manifestWithoutTimings), short(h.manifestWithoutTimings), yes(j.same?.manifestWithoutTimings)]);
  for (const [k, what] of [['fp32', 'ppl, fp32'], ['fused', 'ppl, artifact, fused kernels'], ['simulate40', 'ppl, artifact, --simulate, 40 windows']]) {
    const x = b.ppl?.[k], y = h.ppl?.[k];
    rows.push([`${what} (${int(y?.tokens)} tokens)`, String(x?.ppl ?? '—'), String(y?.ppl ?? '—'), yes(x && y && x.nll === y.nll && x.tokens === y.tokens)]);
  }
  for (const [k, what] of [['fp32', 'fp32'], ['artifact', 'artifact']]) {
    const x = b.generate?.[k], y = h.generate?.[k];
    rows.push([`greedy text, ${what} (${y?.tokens} tokens), sha256`, short(x?.textSha256), short(y?.textSha256), yes(x?.textSha256 === y?.textSha256)]);
  }
  if (b.tests && h.tests) {
    const t = (x) => `${f(x.seconds, 0)} s: ${x.passed} passed, ${x.failed} failed`;
    rows.push(['`npm test` (build + suite), one after the other', t(b.tests), t(h.tests), `${f((100 * (h.tests.seconds - b.tests.seconds)) / b.tests.seconds, 1)} % time`]);
  }
  return [
    `## Refactor check: same outputs as ${b.rev ?? NR} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    'stories260k: `aser quantize --method aser --rank 8 --abits 8`, TinyStories perplexity (GPTQ protocol, ctx 256) of the fp32 model and of the artifact, greedy `aser generate --prompt "Once upon a time" --max-tokens 100` from both; NLLs compared to the last bit.',
    '',
    table(['check', `base ${b.rev ?? NR}`, `this checkout ${h.rev ?? NR}`, ''], rows),
  ].join('\n');
}

function decodeSpeedup(src, j) {
  const s = j.settings ?? {};
  const mb = (b) => f(b / 1e6, 1);
  const rows = (j.results ?? []).map((r) => {
    const t = r.head?.traffic;
    const samples = (side) => (side?.samples ?? []).map((x) => f(x.decodeTokensPerSecond, 3)).join(', ');
    return [
      String(r.layers), `${f(r.base?.medianDecodeTokPerSec, 3)} (${samples(r.base)})`, `${f(r.head?.medianDecodeTokPerSec, 3)} (${samples(r.head)})`, `${f(r.speedup, 2)}×`,
      t ? String(t.dispatchesPerToken) : '—', t ? mb(t.bytesPerToken) : '—', t ? mb(t.idealBytesPerToken) : '—', r.base?.text === r.head?.text ? 'same' : 'different',
    ];
  });
  return [
    `## Decode speed against ${j.base ?? NR}, LLaMA-3-8B-shaped — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Synthetic \`aser synth --shape llama3-8b\` models; each checkout quantizes with its own default \`aser quantize\` and decodes its own artifact with greedy \`aser generate\` (prompt ${s.prefill ?? NR} tokens, ${s.decode ?? NR} decode steps), ${s.repeats ?? NR} interleaved rounds (order: ${s.order ?? 'base first in every round'}); decode tok/s as each checkout's generate reports it (median, samples in brackets). Dispatches and MB read per decode token of this checkout from eval/traffic.ts (ideal: the artifact's formats read once).`,
    '',
    table(['layers', `${j.base ?? 'base'} decode tok/s`, `${j.head ?? 'this'} decode tok/s`, 'speedup', 'dispatches/token', 'MB read/token', 'ideal MB/token', 'greedy text'], rows),
  ].join('\n');
}


function smoothing(src, j) {
  const s = j.settings ?? {};
  const cols = [];
  for (const a of j.abits ?? []) for (const d of j.datasets ?? []) cols.push([a, d]);
  const rows = [];
  for (const c of j.cells ?? []) if (!rows.some((r) => r.method === c.method && r.smoothing === c.smoothing)) rows.push(c);
  const cell = (r, a, d) => j.cells.find((c) => c.method === r.method && c.smoothing === r.smoothing && c.abits === a && c.dataset === d);
  return [
    `## Smoothing per shared input vs per linear, ${j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `The method table (eval/ppl-table.ts) with smoothing scopes ${(s.smoothing ?? []).join(' and ')}: \`shared-input\` decides one smoothing vector (and ASER's outlier set) for q|k|v and one for gate|up from their stacked weights, what lets the runtime quantize each input once; \`per-linear\` decides one per linear (format 1). Methods that do not smooth, or whose smoothing depends on the activations alone, appear once (their artifacts are the same under either scope).`,
    '',
    table(['method', 'side width', '+FLOPs %', ...cols.map(([a, d]) => `W4A${a} ${d}`)], rows.map((r) => [r.label, f(r.meanSideRank, 2), f(r.flopsPct, 2), ...cols.map(([a, d]) => f(cell(r, a, d)?.ppl, 4))])),
    '',
    j.caption ?? '',
    '',
    table(['method', 'W4A', 'dataset', 'shared-input ppl', 'per-linear ppl', 'shared − per-linear, %'], (j.deltas ?? []).map((d) => [d.method, d.abits, d.dataset, f(d.shared, 4), f(d.perLinear, 4), f(d.deltaPct, 2)])),
  ].join('\n');
}

function classifier(src, j) {
  const ds = j.datasets ?? [];
  return [
    `## Classifier formats, ${j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `One ${j.method} W4A8 artifact (calibrated once) written with each \`aser quantize --classifier\` format, beside the same block linears with the model's f32 classifier. Perplexity: GPTQ protocol, ctx ${j.ctx}, at most ${j.maxWindows} windows; KLD and top-token agreement against the f32 classifier on the first windows of the same text. Bytes: the classifier's weights (and scales) read per decoded token. Default format: ${j.defaultFormat ?? NR}.`,
    '',
    table(['classifier', 'bytes / token', ...ds.flatMap((d) => [`${d} ppl`, 'Δ %', 'KLD mean', 'same top %'])],
      (j.rows ?? []).map((r) => [r.classifier, int(r.classifierBytes), ...ds.flatMap((d) => [f(r.ppl?.[d], 4), f(100 * r.pplChange?.[d], 3), isNum(r.kld?.[d]?.mean) ? r.kld[d].mean.toExponential(2) : '—', pct(r.kld?.[d]?.sameTop, 2)])])),
  ].join('\n');
}

function gpuKit(src, j) {
  const s = j.summary ?? {};
  const k = j.kernels ?? {};
  const d = j.decode8b ?? {};
  const kit = j.kit ?? {};
  const variants = Object.entries(d.variants ?? {}).flatMap(([name, v]) => (v.sideOn ? [[`${name}, side path on`, v.sideOn], [`${name}, side path off`, v.sideOff]] : v.error ? [] : [[name, v]]));
  return [
    `## GPU kit — \`${src.short}\``,
    sourceLine(src, j),
    '',
    `Adapter: ${s.adapter ?? NR}${s.software ? ' (a software adapter: these are not GPU figures)' : ''}. Kit: ${kit.bytes ? `${mib(kit.bytes)} MiB` : NR} (node ${kit.node ?? NR}, webgpu ${kit.webgpu ?? NR}, built from ${kit.commit ?? NR}). ${j.quick ? '`--quick`' : 'full run'}, ${f(s.seconds, 0)} s in all.`,
    '',
    table(['tests passed', 'failed', 'skipped', 'copy peak GB/s', 'dot4 peak GOP/s', 'best kernel GB/s', 'best kernel GOP/s'],
      [[int(j.tests?.passed), int(j.tests?.failed), int(j.tests?.skipped), f(k.peaks?.copyGBs, 2), f(k.peaks?.dot4GOPs, 1), f(k.bestGBs, 2), f(k.bestGOPs, 1)]]),
    '',
    `8B-shaped decode: ${d.layers ?? NR} LLaMA-3-8B-shaped layer${d.layers === 1 ? "" : "s"} (synthesized), \`aser profile\` (${j.quick ? 'one round' : 'medians of rounds'}); copy peak measured by that profile ${f(d.copyPeakGBs, 2)} GB/s (the kernel bench's, above, is another process's probe). "Side path off" of a rank-0 method runs the same kernels as "on": their difference is the run's noise.${s.software ? ' On a software adapter the host runs the kernels and everything else at once, so a fraction of the copy peak above 100 % means the probe was slowed, not that decode beat memory.' : ''}`,
    '',
    table(['variant', 'prefill tok/s', 'decode tok/s', 'dispatches/token', 'MB/token (ideal)', 'achieved GB/s', 'of copy peak'],
      variants.map(([name, v]) => [name, f(v.prefillTokPerSec, 2), f(v.decodeTokPerSec, 2), int(v.dispatchesPerToken), `${f(v.mbPerToken, 1)} (${f(v.idealMbPerToken, 1)})`, f(v.achievedGBs, 2), `${pct(v.copyPeakFraction)} %`])),
  ].join('\n');
}

function web(src, j) {
  const rows = j.rows ?? [];
  const ratio = (v) => f(j.pageOverNode?.[v], 3);
  return [
    `## Web page against Node, ${j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Warm greedy decode of ${j.maxTokens ?? NR} tokens from ${JSON.stringify(j.prompt ?? '')}: the page in headless Chromium (${(j.chromiumArgs ?? []).filter((a) => a.startsWith('--use-webgpu')).join(' ') || NR}) and \`aser\` in Node on Dawn, on the same machine, ${j.rounds ?? NR} rounds alternating which goes first; every sample is listed. "same text": the page's greedy text equals Node's.`,
    '',
    table(['variant', 'where', 'adapter', 'decode tok/s (median)', 'samples', 'same text'],
      rows.map((r) => [r.variant, r.where, r.adapter, f(r.median, 1), (r.samples ?? []).map((x) => f(x.decodeTokensPerSecond, 1)).join(', '), r.sameTextAsNode ? 'yes' : 'no'])),
    '',
    `Page / Node (medians): dense ${ratio('dense')}, W4A8 ${ratio('w4a8')}. The two sides run different WebGPU implementations (SwiftShader in Chromium, Dawn's Vulkan backend on the machine's adapter in Node), so the ratio compares the whole stack, not the page's overhead alone.`,
  ].join('\n');
}

function budget(src, j) {
  const ds = j.datasets ?? [];
  const rows = j.rows ?? [];
  const first = rows[0];
  const diff = (a, b) => (isNum(a) && isNum(b) ? `${a <= b ? '' : '+'}${f((100 * (a - b)) / b, 2)}` : '—');
  const out = [
    `## Ranks for a budget vs uniform rank, ${j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `ASER with reconstruction rank ${j.rank} on every linear (its outlier columns on top: \`aser quantize --rank ${j.rank}\`) beside ASER with the ranks quant/budget.ts allocates for that artifact's +FLOPs (\`aser quantize --budget-flops P\`, P its \`flopsOverhead\` × 100; "allocator (relative)": \`--budget-objective relative\`, each linear's dropped σ² over its own output energy), at each activation width. fp32: ${ds.map((d) => `${d} ${f(j.fp?.[d], 4)}`).join(', ')}. Whitened residual: Σ over linears of ‖X (W − W_eff)ᵀ‖² on the calibration tokens (manifest diagnostics), what the allocator minimizes.`,
    '',
    table(['W4A', 'rule', '+FLOPs %', 'mean side rank', ...ds.flatMap((d) => [`${d} ppl`, 'vs uniform %']), 'whitened residual'],
      rows.flatMap((r) => [r.uniform, r.allocator, r.relative].filter(Boolean).map((v) => [r.abits, v.rule === 'uniform' ? `uniform r = ${j.rank}` : v.rule, f(v.flopsPct, 3), f(v.meanSideRank, 2),
        ...ds.flatMap((d) => [f(v.ppl?.[d], 4), v.rule === 'uniform' ? '' : diff(v.ppl?.[d], r.uniform.ppl?.[d])]), isNum(v.residualSq) ? v.residualSq.toExponential(3) : '—']))),
    '',
    j.caption ?? '',
  ];
  if (first) {
    out.push('', `Where the allocator puts the columns (W4A${first.abits}): reconstruction ranks per layer and the whitened residual each kind of linear leaves.`, '',
      table(['linear', 'uniform ranks', 'allocator ranks', 'relative ranks', 'uniform residual', 'allocator residual', 'relative residual', 'error before reconstruction'],
        (first.uniform.kinds ?? []).map((k) => {
          const a = (first.allocator.kinds ?? []).find((x) => x.kind === k.kind) ?? {};
          const r = (first.relative?.kinds ?? []).find((x) => x.kind === k.kind) ?? {};
          const e = (x) => (isNum(x) ? x.toExponential(3) : '—');
          return [k.kind, (k.ranks ?? []).join(' '), (a.ranks ?? []).join(' '), (r.ranks ?? []).join(' '), e(k.residualSq), e(a.residualSq), e(r.residualSq), e(k.errorSq)];
        })));
  }
  return out.join('\n');
}

function outliers(src, j) {
  const ds = j.datasets ?? [];
  const cols = [];
  for (const a of j.abits ?? []) for (const d of ds) cols.push([a, d]);
  const methods = [];
  for (const c of j.cells ?? []) if (!methods.some((m) => m.method === c.method)) methods.push(c);
  const cell = (m, a, d) => (j.cells ?? []).find((c) => c.method === m.method && c.abits === a && c.dataset === d);
  const rows = [...(j.outlierRows ?? [])].sort((a, b) => b.abits - a.abits || a.f - b.f || (a.outlierColumns < b.outlierColumns ? -1 : 1));
  return [
    `## Outlier columns and f, with a W4A4 column, ${j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `The method table (eval/ppl-table.ts) at every activation width, W4A4 included, every low-rank method at side-path width ${j.sideWidth ?? '—'} (ASER: ${j.sideWidth ?? '—'} − f reconstruction + f outlier columns).`,
    '',
    table(['method', 'side rank', '+FLOPs %', ...cols.map(([a, d]) => `W4A${a} ${d}`)], methods.map((m) => [m.label, f(m.meanSideRank, 2), f(m.flopsPct, 2), ...cols.map(([a, d]) => f(cell(m, a, d)?.ppl, 3))])),
    '',
    j.caption ?? '',
    '',
    `ASER's outlier count f at the same side-path width ${j.sideWidth ?? '—'}, each with its outlier columns carried exactly (one-hot side-path columns, the default; reconstruction rank width − f) or kept in E and reconstructed by the rank-r path (reconstruction rank = width). Mean activation outlier ratio (max / median channel mean |x|, over the linears): ${f(rows[0]?.activationOutlierRatio, 2)}. Whitened residual: Σ over linears of ‖X (W − W_eff)ᵀ‖² (weight error only).`,
    '',
    table(['W4A', 'f', 'outlier columns', 'side rank', 'reconstruction rank', '+FLOPs %', ...ds.map((d) => `${d} ppl`), 'whitened residual'],
      rows.map((r) => [r.abits, r.f, r.outlierColumns, f(r.meanSideRank, 2), f(r.meanRank, 2), f(r.flopsPct, 2), ...ds.map((d) => f(r.ppl?.[d], 4)), isNum(r.residualSq) ? r.residualSq.toExponential(3) : '—'])),
  ].join('\n');
}

function budgetCurve(src, j) {
  const ds = j.datasets ?? [];
  const rules = ['α rule', 'uniform rank', 'allocator'];
  const points = rules.flatMap((rule) => (j.curve ?? []).filter((p) => p.rule === rule).sort((a, b) => a.flopsPct - b.flopsPct));
  return [
    `## Budget curve, ${j.method} W${j.wbits}A${j.abits}, ${j.model} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `Three rank rules on one +FLOPs axis: the α rule (Eq. 9), one reconstruction rank for every linear (ASER's outlier columns on top), and the budget allocator (\`aser quantize --budget-flops\`) at the +FLOPs of every other point. fp32: ${ds.map((d) => `${d} ${f(j.fp?.[d], 4)}`).join(', ')}. Plot: \`${dirname(src.file)}/budget.svg\`.`,
    '',
    table(['rule', 'setting', '+FLOPs %', 'mean side rank', ...ds.map((d) => `${d} ppl`)], points.map((p) => [p.rule, p.setting, f(p.flopsPct, 2), f(p.meanSideRank, 2), ...ds.map((d) => f(p.ppl?.[d], 4))])),
    '',
    j.caption ?? '',
  ].join('\n');
}

function lowrank(src, j) {
  const q = j.quality ?? {};
  const ds = q.datasets ?? [];
  return [
    `## Side path in 8 bits (L_A / L_B f16 vs int8), ${q.model ?? NR} — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `ASER W4 at rank ${q.rank ?? NR}, calibrated once; at each activation width one artifact with f16 factors and one with int8 factors (\`aser quantize --lowrank-dtype\`: a scale per rank column of L_A and per rank row of L_B). Perplexity: GPTQ protocol, ctx ${q.ctx ?? NR}, at most ${q.maxWindows ?? NR} windows; Δ against the f16-factor artifact of the same width; KLD and top-token agreement against it on the first windows. FLOPs and bytes: \`aser flops --artifact\` (side path over the int4 weights and scales, per token). Default \`--lowrank-dtype\` when the run was made: ${j.defaultLowRankDtype ?? NR}.`,
    '',
    table(['A', 'L_A/L_B', ...ds.flatMap((d) => [`${d} ppl`, 'Δ %', 'KLD mean', 'same top %']), '+FLOPs %', 'side bytes %', 'bytes share / FLOPs share'],
      (q.rows ?? []).map((r) => [r.aBits, r.lowRankDtype, ...ds.flatMap((d) => [f(r.ppl?.[d], 4), f(100 * r.pplChange?.[d], 3), isNum(r.kld?.[d]?.mean) ? r.kld[d].mean.toExponential(2) : '—', pct(r.kld?.[d]?.sameTop, 2)]),
        f(r.flopsPct, 2), f(r.bytePct, 2), f(r.bytesPerFlopsShare, 2)])),
  ].join('\n');
}

function lowrankKernels(src, j) {
  const k = j.kernels ?? {};
  return [
    `## Side path at decode: latency overhead over FLOPs share, f16 vs int8 factors — \`${src.command}\``,
    sourceLine(src, j),
    '',
    `One token through kernels A + B (\`unfused\`: kernel A, kernel B, x·L_A, ·L_B and an add) on ${k.adapter ?? NR}, timer ${k.timer ?? NR}, ${k.rounds ?? NR} rounds in which every variant of a shape ran once (round-robin). Overhead: the variant's time over rank 0's in the same round, minus 1; median over rounds, with min–max; and from the minimum times (the least-disturbed samples). A sample is ${k.repsPerSample ?? 1} encodes in one pass. \`float\` factors are f16 where the adapter has shader-f16, else f32 (column "factors"). ${j.note ?? ''}`,
    '',
    table(['shape', 'variant', 'factors', 'median ms', 'min–max ms', '+FLOPs %', 'latency overhead % (min–max)', 'overhead / FLOPs share', 'min-time overhead %', 'min-time overhead / FLOPs share'],
      (k.rows ?? []).map((r) => [r.shape, r.variant, r.lowRank, f(r.medianMs, 3), `${f(r.minMs, 3)}–${f(r.maxMs, 3)}`, f(r.flopsPct, 2),
        r.latencyOverheadPct ? `${f(r.latencyOverheadPct.median, 1)} (${f(r.latencyOverheadPct.min, 1)}–${f(r.latencyOverheadPct.max, 1)})` : '—', f(r.overheadPerFlopsShare, 2),
        f(r.minOverheadPct, 1), f(r.minOverheadPerFlopsShare, 2)])),
  ].join('\n');
}

const RENDER = { forward, kernels, peer, serve, load, fuzz, quantLayer, quantizeModel, llama8b, report, sameOutputs, smoothing, classifier, decodeSpeedup, web, budget, budgetCurveA8: budgetCurve, budgetCurveA4: budgetCurve, outliers, lowrank, lowrankKernels, peer8b: peer, gguf, ggufStories: gguf, gpuKit };

/** docs/numbers.md as `npm run numbers` writes it, from the files under `root`. */
export function renderNumbers(root = repoRoot) {
  const parts = [
    '# Measured numbers',
    '',
    '<!-- Generated by `npm run numbers` (scripts/numbers.mjs) from the JSON files named below. Do not edit:',
    '     rerun the command that writes a file, then `npm run numbers`. test/docs/numbers.test.ts checks it. -->',
    '',
    'Every figure on this page is read from a JSON file that a named command wrote; each section names its',
    'file and command and shows that run\'s date, git commit, adapter and load average ("not recorded" where',
    'the file lacks the field; files written since bench/lib/report.ts added its `run` block record all four).',
    'A range is computed from the values the file holds. Other docs point here instead of restating figures.',
    'Figures the paper reports (e.g. its Table 4) are the paper\'s, not measurements, and are labelled so where they appear.',
    '',
    '## Sources',
    '',
    table(['section', 'file', 'command', 'date', 'commit', 'adapter', 'load average'], SOURCES.map((src) => {
      const p = join(root, src.file);
      if (!existsSync(p)) return [src.id, `\`${src.file}\``, src.command, 'missing', '', '', ''];
      const r = runInfo(JSON.parse(readFileSync(p, 'utf8')));
      return [src.id, `\`${src.file}\``, `\`${src.short ?? src.command}\``, r.date, r.commit, r.adapter, r.load];
    })),
  ];
  for (const src of SOURCES) {
    const p = join(root, src.file);
    parts.push('');
    if (!existsSync(p)) {
      parts.push(`## ${src.id}`, '', `\`${src.file}\` is missing: run ${src.command}.`);
      continue;
    }
    parts.push(RENDER[src.id](src, JSON.parse(readFileSync(p, 'utf8'))).replace(/\n{3,}/g, '\n\n').trimEnd());
  }
  return parts.join('\n') + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const text = renderNumbers();
  const target = join(repoRoot, NUMBERS_MD);
  if (args.includes('--check')) {
    const ok = existsSync(target) && readFileSync(target, 'utf8') === text;
    if (!ok) console.error(`${NUMBERS_MD} is stale: run \`npm run numbers\``);
    process.exit(ok ? 0 : 1);
  }
  const i = args.indexOf('--out');
  const out = i >= 0 ? args[i + 1] : target;
  writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
