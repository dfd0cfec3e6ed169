/// <reference types="@webgpu/types" />
// What a forward's kernels do, counted where it happens, for profiles (`aser profile`: dispatches and
// bytes read per decode token). Every bind group made by planBindGroup (runtime/plan-binding.ts)
// carries the bytes one dispatch with it reads, from its kernel plan (KernelPlan.reads, else the bound
// ranges); while an executor has a TrafficCounter, each recorded op's compute pass is wrapped so that
// every dispatchWorkgroups counts one dispatch and the reads of the bind group set at group 0. Linear
// ops record their own dispatches, so however many a linear issues, the count stays right.
// The forward's own kernels (norms, RoPE, SwiGLU …) have bind groups made once from their 1-row plans, so
// their bytes are those of a decode step (one token per call); the attention's KV-cache reads, which
// grow with the position, come with each call (Recorder.dispatch `reads`). Prefill chunks would need
// each kernel's reads per call the same way.

interface GroupReads {
  bytes: number;
  /** The plan stated no reads: its bound ranges were counted (an upper bound). */
  estimated: boolean;
}

const groupReads = new WeakMap<GPUBindGroup, GroupReads>();

/** Remembers what one dispatch with `group` reads (planBindGroup calls this for every bind group it makes). */
export function recordBindGroupReads(group: GPUBindGroup, bytes: number, estimated: boolean): void {
  groupReads.set(group, { bytes, estimated });
}

/** Dispatches and bytes read of one op label (summed over layers). */
export interface LabelTraffic {
  dispatches: number;
  bytes: number;
}

export interface TrafficTotals {
  dispatches: number;
  /** Bytes the dispatches read. */
  bytes: number;
  /** Dispatches whose plan stated no reads (their bound bytes were counted). */
  estimated: number;
  /** Dispatches with a bind group not made by planBindGroup (nothing known of their reads: 0 bytes counted). */
  unknown: number;
  byLabel: Record<string, LabelTraffic>;
}

const empty = (): TrafficTotals => ({ dispatches: 0, bytes: 0, estimated: 0, unknown: 0, byLabel: {} });

/** Counts the dispatches of the compute passes it wraps, and the bytes they read; take() returns and resets. */
export class TrafficCounter {
  private totals = empty();

  /**
   * `pass` with its dispatches counted under `label`. `reads` replaces the bind group's bytes per
   * dispatch for ops whose reads depend on the call, not on what is bound (attention: the KV cache up
   * to the position).
   */
  wrap(pass: GPUComputePassEncoder, label: string, reads?: number): GPUComputePassEncoder {
    let current: GroupReads | undefined;
    let known = false;
    const count = () => {
      const t = this.totals;
      const bytes = reads ?? current?.bytes ?? 0;
      t.dispatches++;
      t.bytes += bytes;
      if (reads === undefined && !known) t.unknown++;
      else if (reads === undefined && current?.estimated) t.estimated++;
      const l = (t.byLabel[label] ??= { dispatches: 0, bytes: 0 });
      l.dispatches++;
      l.bytes += bytes;
    };
    return new Proxy(pass, {
      get(target, prop) {
        if (prop === 'setBindGroup') {
          return (index: number, group: GPUBindGroup | null, ...rest: unknown[]) => {
            if (index === 0) {
              current = group ? groupReads.get(group) : undefined;
              known = current !== undefined;
            }
            return (target.setBindGroup as (...a: unknown[]) => void)(index, group, ...rest);
          };
        }
        if (prop === 'dispatchWorkgroups' || prop === 'dispatchWorkgroupsIndirect') {
          return (...args: unknown[]) => {
            count();
            return (target[prop] as (...a: unknown[]) => void)(...args);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  /** The totals since the last take(). */
  take(): TrafficTotals {
    const t = this.totals;
    this.totals = empty();
    return t;
  }
}
