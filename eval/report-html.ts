// The report's index.html: one self-contained page (inline CSS and SVG, no scripts, no external
// files). Tables reuse each suite's markdown formatter through a small markdown-table → HTML step, so
// the page and the terminal show the same numbers.
import { alphaSweepChart, formatAlphaSweepMarkdown } from './alpha-sweep.js';
import { formatPplTableMarkdown, METHOD_LABELS, type TableMethod } from './ppl-table.js';
import { formatKldMarkdown } from './kld-run.js';
import { formatZeroshotMarkdown } from './zeroshot-run.js';
import { formatFlopsMarkdown } from './flops.js';
import { formatProfileMarkdown } from './profile-run.js';
import { barChart, histogram, lineChart, renderSvg, scatterChart } from './plot.js';
import { alphaRank } from './spectra.js';
import type { ReportResults } from './report.js';
import { diagnosisCharts } from './diagnose.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const inline = (s: string) => esc(s).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`([^`]+)`/g, '<code>$1</code>');

/** Markdown with pipe tables and paragraphs → HTML (only what the formatters emit). */
export function markdownToHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    if (line.trim().startsWith('|')) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i]!.trim().startsWith('|')) {
        const cells = lines[i]!.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
        if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
        i++;
      }
      const [head, ...body] = rows;
      out.push('<table>', `<thead><tr>${head!.map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead>`, '<tbody>');
      for (const r of body) out.push(`<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`);
      out.push('</tbody></table>');
    } else if (line.trim() === '') {
      i++;
    } else {
      const para: string[] = [];
      while (i < lines.length && lines[i]!.trim() !== '' && !lines[i]!.trim().startsWith('|')) para.push(lines[i++]!);
      out.push(`<p>${inline(para.join(' '))}</p>`);
    }
  }
  return out.join('\n');
}

const figure = (svg: string, caption: string) => `<figure>${svg.replace(/^<\?xml[^>]*>\s*/, '')}<figcaption>${esc(caption)}</figcaption></figure>`;

const CSS = `body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:.5em 1em .5em 0}
figcaption{font-size:12px;color:#555;max-width:460px}p.note{color:#444;background:#f8f8f0;padding:.5em .8em;border-left:3px solid #cc9}
code{background:#f2f2f2;padding:0 3px}`;

export async function renderReportHtml(r: ReportResults): Promise<string> {
  const s: string[] = [];
  const section = (title: string, id: string) => s.push(`<h2 id="${id}">${esc(title)}</h2>`);
  const firstDataset = r.ppl.datasets[0]!;

  section('Perplexity', 'ppl');
  s.push(markdownToHtml(formatPplTableMarkdown(r.ppl)));
  // fp32 sits under every activation width in the table; one bar of it (Vega-Lite would stack the copies).
  const pplRows = r.ppl.cells.filter((c) => c.dataset === firstDataset && (c.method !== 'fp' || c.abits === r.ppl.abits[0])).map((c) => ({ method: c.label ?? METHOD_LABELS[c.method as TableMethod], ppl: c.ppl, activations: c.method === 'fp' ? 'fp32' : `W${c.wbits}A${c.abits}` }));
  s.push(figure(await renderSvg(barChart(pplRows, { title: `Perplexity on ${firstDataset}`, x: 'method', y: 'ppl', group: 'activations', width: 520 })), `Perplexity per method on ${firstDataset} (lower is better); fp32 is listed under every activation width.`));

  if (r.alpha) {
    section('α sweep (rank threshold)', 'alpha');
    s.push(markdownToHtml(formatAlphaSweepMarkdown(r.alpha)));
    s.push(figure(await renderSvg(alphaSweepChart(r.alpha)), 'Perplexity vs the rank threshold α of Eq. 9.'));
  }

  section('Rank per layer', 'ranks');
  const alphas = r.alpha?.rows.map((x) => x.alpha) ?? [0.1, 0.05, 0.015];
  const rankRows = alphas.flatMap((a) => {
    const layers = [...new Set(r.spectra.linears.map((l) => l.layer))].sort((x, y) => x - y);
    return layers.map((layer) => {
      const ls = r.spectra.linears.filter((l) => l.layer === layer);
      return { layer, 'mean rank': ls.reduce((t, l) => t + alphaRank(l, a), 0) / ls.length, alpha: `α = ${a}` };
    });
  });
  s.push(figure(await renderSvg(lineChart(rankRows, { title: 'Rank per layer chosen by the α rule (mean over the 7 linears)', x: 'layer', y: 'mean rank', series: 'alpha', points: true })), 'Ranks the α rule (Eq. 9) takes from each linear’s ASER error spectrum (with activation smoothing), averaged per layer.'));

  section('KL divergence to fp32', 'kld');
  s.push(markdownToHtml(formatKldMarkdown(r.kld)));
  s.push(`<p>${esc(`${r.kld[0]?.dataset}, llama.cpp protocol (second half of each window scored), ctx ${r.kld[0]?.ctx}, ${r.kld[0]?.windows} windows; fp32 ppl ${r.kld[0]?.pplRef.toFixed(4)}. Mean KLD ± standard error; Δppl ± from the paired NLLs.`)}</p>`);
  for (const k of r.kld) {
    const rows = k.kldSample.map((v) => ({ 'KLD (nats)': v }));
    s.push(figure(await renderSvg(histogram(rows, { title: `Per-token KLD: ${k.method}`, field: 'KLD (nats)', bins: 40, logY: true })), `Distribution of per-token KL(p_fp32 ‖ p_${k.method}) (${k.kldSample.length} of ${k.tokens} tokens, evenly strided).`));
  }

  section('Zero-shot (lm-eval log-likelihood protocol)', 'zeroshot');
  for (const z of r.zeroshot) {
    s.push(`<h3>${esc(z.model)}</h3>`, markdownToHtml(formatZeroshotMarkdown(z.tasks)));
  }
  const fp = r.zeroshot[0]!.tasks;
  const above = fp.filter((t) => t.aboveChance && !t.fixture).map((t) => t.task);
  const meaningless = fp.filter((t) => !t.aboveChance || t.fixture).map((t) => t.task);
  s.push(`<p class="note">${esc(`Above chance (acc > chance + 2·stderr) for ${r.model}: ${above.join(', ') || 'none'}. Meaningless at this model size (at or below chance, or only a 4-item fixture): ${meaningless.join(', ') || 'none'}. Quantized models are scored on the above-chance tasks only.`)}</p>`);
  const zsRows = r.zeroshot.flatMap((z) => z.tasks.filter((t) => above.includes(t.task)).map((t) => ({ task: t.task, 'acc %': 100 * t.acc, model: z.model })));
  if (zsRows.length) s.push(figure(await renderSvg(barChart(zsRows, { title: 'Zero-shot accuracy on the above-chance tasks', x: 'task', y: 'acc %', group: 'model' })), 'acc per task and model.'));

  section('FLOPs and memory', 'flops');
  s.push(`<p>${esc(`${r.flops.method}: per-token multiply-accumulates of the block linears; side path = (x̃·L_A)·L_B with L_A/L_B in f16, base = int4 weights + f32 scales.`)}</p>`);
  s.push(markdownToHtml(formatFlopsMarkdown(r.flops.accounting)));

  section('Latency', 'latency');
  s.push(markdownToHtml(formatProfileMarkdown(r.profile)));
  if (r.profile.sideShare) {
    const pts = r.profile.sideShare.filter((x) => x.kind !== 'all linears').flatMap((x) => [
      { linear: x.kind, phase: 'prefill', '+FLOPs %': x.flopsPct, '+latency %': x.prefillOverheadPct },
      { linear: x.kind, phase: 'decode', '+FLOPs %': x.flopsPct, '+latency %': x.decodeOverheadPct },
    ]);
    s.push(figure(await renderSvg(scatterChart(pts, { title: 'Side path: latency overhead vs FLOPs overhead', x: '+FLOPs %', y: '+latency %', series: 'phase', diagonal: true })), 'Each point is one linear kind (summed over layers); the dashed line is latency overhead = FLOPs overhead.'));
  }

  section('Singular spectra of the quantization error', 'spectra');
  const charts = diagnosisCharts(r.diagnose);
  const captions: Record<string, string> = {
    'spectra.svg': 'Singular values of the weight-quantization error E and of its whitened form E·S (S Sᵀ = H), normalised to the largest: the faster E·S decays, the more a rank-r correction recovers (paper Fig. 2).',
    'erank.svg': 'Effective rank (Eq. 3–4) of E and E·S per linear (Fig. 3).',
    'output-error.svg': 'Relative output error per linear and method, weights only, via H (Fig. 6).',
  };
  for (const [file, caption] of Object.entries(captions)) if (charts[file]) s.push(figure(await renderSvg(charts[file]!), caption));
  s.push(`<p>${esc(`From one calibration (${r.diagnose.settings.calibration.dataset}, ${r.diagnose.settings.calibration.samples} × ${r.diagnose.settings.calibration.seqLen} tokens) with eval/diagnose.ts; aser eval diagnose prints the per-linear table.`)}</p>`);

  section('Run', 'run');
  s.push(markdownToHtml(['| stage | seconds |', '|---|---|', ...Object.entries(r.timings).map(([k, v]) => `| ${k} | ${v.toFixed(1)} |`), `| **total** | ${r.seconds.toFixed(1)} |`].join('\n')));
  s.push(`<p>${esc(`Created ${r.createdAt}; device ${r.profile.device}. Results in results.json beside this page; reproduce with aser eval report --model ${r.model}.`)}</p>`);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ASER evaluation report: ${esc(r.model)}</title><style>${CSS}</style></head>
<body><h1>ASER evaluation report: ${esc(r.model)}</h1>
<p>${esc(`Perplexity, α sweep, KL divergence, zero-shot accuracy, FLOPs, latency and error spectra of ${r.model} quantized W${r.ppl.settings.wbits}A8/A6 (RTN, ASER and the baselines), made by aser eval report in ${r.seconds.toFixed(0)} s.`)}</p>
${s.join('\n')}
</body></html>
`;
}
