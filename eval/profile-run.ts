// `aser profile` as a library call: the fp model, and with an artifact the same artifact twice in one
// run (side path on, and off: every linear with rank 0), measured in interleaved rounds, so the side path's share of GPU time per
// linear sits beside its share of FLOPs. The executor labels ops by linear kind (q_proj … down_proj,
// summed over layers); every layer of a model has the same shapes, so per kind is per layer's linear.
import { resolveModel } from '../loaders/registry.js';
import { readArtifact } from '../loaders/artifact.js';
import type { Executor } from '../runtime/executor.js';
import { GpuTimer } from '../runtime/profiler.js';
import type { QuantizedLinear } from '../core/quantized.js';
import { artifactClassifier, modelIdentity, openModelSession } from '../node/session.js';
import { flopsAccounting, manifestLinears } from './flops.js';
import { profileExecutors, syntheticPrompt, type ExecutorProfile, type ProfileOptions } from './profile.js';
import { variantTraffic, type VariantTraffic } from './traffic.js';
import { measureCopyPeak, type CopyPeak } from './copy-peak.js';

export interface ProfileRunOptions extends Partial<ProfileOptions> {
  model: string;
  artifact?: string;
  onStep?: (what: string) => void;
}

export interface SideShareRow {
  /** Linear kind (q_proj … down_proj), or 'all linears'. */
  kind: string;
  /** Side-path MACs over base MACs, %. */
  flopsPct: number;
  /**
   * Side-path bytes (L_A, L_B in the artifact's dtype, with int8 scales) over the base bytes (int4
   * weights, scales, smoothing), %: what a bandwidth-bound decode's overhead tends to. Absent in
   * profiles written before it existed.
   */
  bytePct?: number;
  prefillOnMs: number;
  prefillOffMs: number;
  /** (on − off) / off, %: the side path's latency overhead, comparable to flopsPct. */
  prefillOverheadPct: number;
  decodeOnMs: number;
  decodeOffMs: number;
  decodeOverheadPct: number;
}

/** A variant's decode step: dispatches and bytes read per token, and what its GPU time makes of them. */
export interface DecodeTrafficReport extends VariantTraffic {
  /** bytesPerToken over the decode GPU time per token (wall time without timestamps), GB/s. */
  achievedGBs: number;
  /** achievedGBs over the copy peak measured in the same run. */
  copyPeakFraction: number;
  /** idealBytesPerToken at the copy peak: the decode ms per token the bandwidth bound allows. */
  boundMsPerToken: number;
}

export interface ProfileRunResult {
  model: string;
  artifact: string | null;
  method: string | null;
  device: string;
  timer: 'timestamp-query' | 'wall';
  settings: ProfileOptions;
  fp: ExecutorProfile;
  /** With an artifact: side path on and off. */
  quantized?: { on: ExecutorProfile; off: ExecutorProfile };
  /** Per linear kind, with an artifact and timestamps. */
  sideShare?: SideShareRow[];
  /** The adapter's copy bandwidth, measured in this run (eval/copy-peak.ts). */
  /** Absent in profiles written before these figures existed. */
  copyPeak?: CopyPeak;
  /** Per variant at decode: dispatches and bytes read per token (fp, and with an artifact on and off). */
  /** Absent in profiles written before these figures existed. */
  decodeTraffic?: { fp: DecodeTrafficReport; on?: DecodeTrafficReport; off?: DecodeTrafficReport };
  seconds: number;
}

/** Linears run as one group (one op, one profile label) and the linear kinds in it. */
const GROUPS: Record<string, string[]> = { qkv_proj: ['q_proj', 'k_proj', 'v_proj'], gate_up_proj: ['gate_proj', 'up_proj'] };
const OP_KINDS = ['qkv_proj', 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_up_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The artifact's linears with the side path removed: the W4A8 product alone. */
function withoutSidePath(layers: ReadonlyMap<string, QuantizedLinear>): Map<string, QuantizedLinear> {
  return new Map([...layers].map(([k, q]) => [k, { ...q, rank: 0, la: undefined, lb: undefined, lowRankInt8: undefined }]));
}

export async function runProfile(o: ProfileRunOptions): Promise<ProfileRunResult> {
  const t0 = performance.now();
  const settings: ProfileOptions = { prefill: o.prefill ?? 128, decode: o.decode ?? 32, repeats: o.repeats ?? 5 };
  const resolved = resolveModel(o.model);
  const { source } = resolved;
  const artifact = o.artifact ? readArtifact(o.artifact, { expectModelHash: modelIdentity(source.id, resolved.path).sha256 }) : undefined;
  const session = await openModelSession({ model: resolved, closeModel: true });
  const { gpu } = session;
  const timer = GpuTimer.create(gpu);
  const maxSeqLen = Math.min(source.config.maxSeqLen, settings.prefill + settings.decode);
  const executors: Executor[] = [];
  // The quantized variants run the artifact's classifier (int8 by default), as generate and serve do.
  const classifier = artifact ? artifactClassifier({ manifest: artifact.manifest, classifier: () => artifact.classifier }) : undefined;
  const build = async (layers?: ReadonlyMap<string, QuantizedLinear>) => {
    const ex = await session.createExecutor({ dtype: 'f32', maxSeqLen, linears: layers ? (module) => layers.get(module) : undefined, classifier: layers ? classifier : undefined });
    executors.push(ex);
    return ex;
  };
  try {
    // fp32, side path on, side path off: built up front, measured in interleaved rounds.
    const variants = [await build()];
    if (artifact) variants.push(await build(artifact.layers), await build(withoutSidePath(artifact.layers)));
    o.onStep?.(`${variants.length} variants × ${settings.repeats} interleaved rounds`);
    const [fp, on, off] = await profileExecutors(variants, timer, settings);
    o.onStep?.('dispatches and bytes per decode token; copy peak');
    const copyPeak = await measureCopyPeak(gpu, session.pipelines);
    const prompt = syntheticPrompt(settings.prefill, source.config.bosId, source.config.vocabSize);
    const traffic = async (ex: Executor, p: ExecutorProfile, layers?: ReadonlyMap<string, QuantizedLinear>): Promise<DecodeTrafficReport> => {
      const t = await variantTraffic(ex, layers, prompt, settings.decode, layers ? classifier : undefined);
      const ms = p.ops ? p.ops.decodeTotal : p.decode.wallMs;
      const achievedGBs = t.bytesPerToken / (ms * 1e6);
      return { ...t, achievedGBs, copyPeakFraction: achievedGBs / copyPeak.gbPerSec, boundMsPerToken: t.idealBytesPerToken / (copyPeak.gbPerSec * 1e6) };
    };
    const decodeTraffic: ProfileRunResult['decodeTraffic'] = { fp: await traffic(variants[0]!, fp!) };
    if (artifact && on && off) {
      decodeTraffic.on = await traffic(variants[1]!, on, artifact.layers);
      decodeTraffic.off = await traffic(variants[2]!, off, withoutSidePath(artifact.layers));
    }
    const result: ProfileRunResult = {
      model: source.id, artifact: o.artifact ?? null, method: artifact ? `${artifact.manifest.method} W${artifact.manifest.wBits}A${artifact.manifest.aBits}` : null,
      device: gpu.describe(), timer: timer ? 'timestamp-query' : 'wall', settings, fp: fp!, copyPeak, decodeTraffic, seconds: 0,
    };
    if (artifact && on && off) {
      result.quantized = { on, off };
      if (on.ops && off.ops) {
        const lin = manifestLinears(artifact.manifest.layers);
        const pct = (a: number, b: number) => (b > 0 ? (100 * (a - b)) / b : 0);
        const row = (kind: string, kinds: string[]): SideShareRow => {
          const sum = (rec: Record<string, number>) => kinds.reduce((s, k) => s + (rec[k] ?? 0), 0);
          const linears = kinds.flatMap((k) => GROUPS[k] ?? [k]);
          const flops = flopsAccounting(lin.filter((l) => linears.includes(l.name.split('.').pop()!)), { wBits: artifact.manifest.wBits, lowRankDtype: artifact.manifest.lowRankDtype }).total;
          const [pOn, pOff, dOn, dOff] = [sum(on.ops!.prefill), sum(off.ops!.prefill), sum(on.ops!.decode), sum(off.ops!.decode)];
          return { kind, flopsPct: flops.flopsPct, bytePct: flops.bytePct, prefillOnMs: pOn, prefillOffMs: pOff, prefillOverheadPct: pct(pOn, pOff), decodeOnMs: dOn, decodeOffMs: dOff, decodeOverheadPct: pct(dOn, dOff) };
        };
        // Grouped linears (q|k|v, gate|up as one op) are timed as their group, the others by kind.
        const timedOp = (k: string) => k in on.ops!.prefill || k in off.ops!.prefill;
        const kinds = OP_KINDS.filter((k) => (GROUPS[k] ? timedOp(k) : !Object.entries(GROUPS).some(([g, members]) => members.includes(k) && timedOp(g))));
        result.sideShare = [...kinds.map((k) => row(k, [k])), row('all linears', kinds)];
      }
    }
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  } finally {
    for (const ex of executors) ex.destroy(); // before the timer; session.close() then closes the model and the device
    timer?.destroy();
    session.close();
  }
}

/** Markdown: throughput, per-op GPU time, and the side path's latency vs FLOPs overhead. */
export function formatProfileMarkdown(r: ProfileRunResult): string {
  const out: string[] = [];
  const runs: Array<[string, ExecutorProfile]> = [['fp32', r.fp], ...(r.quantized ? ([[`${r.method} (side path on)`, r.quantized.on], [`${r.method} (side path off)`, r.quantized.off]] as Array<[string, ExecutorProfile]>) : [])];
  out.push(`| run | prefill tok/s (${r.settings.prefill} tok) | decode tok/s | decode ms/token (wall) | prefill GPU ms | decode GPU ms/token |`, '|---|---|---|---|---|---|');
  for (const [name, p] of runs) {
    out.push(`| ${name} | ${p.prefill.tokPerSec.toFixed(0)} | ${p.decode.tokPerSec.toFixed(0)} | ${p.decode.wallMs.toFixed(2)} | ${p.ops ? p.ops.prefillTotal.toFixed(3) : '—'} | ${p.ops ? p.ops.decodeTotal.toFixed(3) : '—'} |`);
  }
  // Profiles written before the traffic figures existed (older results.json) have none.
  if (r.decodeTraffic && r.copyPeak) {
    const traffic: Array<[string, DecodeTrafficReport | undefined]> = [['fp32', r.decodeTraffic.fp], [`${r.method} (side path on)`, r.decodeTraffic.on], [`${r.method} (side path off)`, r.decodeTraffic.off]];
    out.push('', `Decode traffic per token (positions ${r.decodeTraffic.fp.positions.join('–')}): bytes the kernels read, over the decode ${r.fp.ops ? 'GPU' : 'wall'} time per token; copy peak measured in this run: ${r.copyPeak.gbPerSec.toFixed(2)} GB/s`, '',
      '| run | dispatches/token | MB read/token | ideal MB/token | read / ideal | achieved GB/s | of copy peak | bound ms/token (ideal at peak) |', '|---|---|---|---|---|---|---|---|');
    for (const [name, t] of traffic) {
      if (!t) continue;
      out.push(`| ${name} | ${t.dispatchesPerToken} | ${(t.bytesPerToken / 1e6).toFixed(2)} | ${(t.idealBytesPerToken / 1e6).toFixed(2)} | ${(t.bytesPerToken / t.idealBytesPerToken).toFixed(2)} | ${t.achievedGBs.toFixed(2)} | ${(100 * t.copyPeakFraction).toFixed(1)} % | ${t.boundMsPerToken.toFixed(3)} |`);
    }
  }
  const main = r.quantized?.on ?? r.fp;
  if (main.ops) {
    out.push('', `GPU ms per op (${r.quantized ? `${r.method}, side path on` : 'fp32'}; summed over layers): prefill | one decode step`, '', '| op | prefill ms | decode ms/step |', '|---|---|---|');
    const labels = Object.keys(main.ops.prefill).sort((a, b) => main.ops!.prefill[b]! - main.ops!.prefill[a]!);
    for (const l of labels) out.push(`| ${l} | ${main.ops.prefill[l]!.toFixed(3)} | ${(main.ops.decode[l] ?? 0).toFixed(3)} |`);
  } else {
    out.push('', 'No timestamp-query on this adapter: wall times only.');
  }
  if (r.sideShare) {
    out.push('', 'Side path: latency overhead (on vs off, same run) beside its FLOPs and bytes overhead, per linear kind', '', '| linear | +FLOPs % | +bytes % | prefill on / off ms | +latency % prefill | decode on / off ms | +latency % decode |', '|---|---|---|---|---|---|---|');
    for (const s of r.sideShare) {
      out.push(`| ${s.kind} | ${s.flopsPct.toFixed(2)} | ${s.bytePct !== undefined ? s.bytePct.toFixed(2) : '—'} | ${s.prefillOnMs.toFixed(3)} / ${s.prefillOffMs.toFixed(3)} | ${s.prefillOverheadPct.toFixed(1)} | ${s.decodeOnMs.toFixed(3)} / ${s.decodeOffMs.toFixed(3)} | ${s.decodeOverheadPct.toFixed(1)} |`);
    }
  }
  out.push('', `device: ${r.device}; timer: ${r.timer}; ${r.settings.repeats} wall repeats (median), variants measured in interleaved rounds; per-op times: median of as many timed passes.`);
  return out.join('\n');
}
