// The plan of one dispatch as plain data (ORT ProgramInfo style): `spec` carries only compile-time facts
// (shader file, defines, label), so it is the pipeline key; everything that merely moves loop bounds
// (token counts, positions, sizes) travels in `uniforms`, so one pipeline serves every sequence length.
import type { KernelSpec } from '../core/kernel-spec.js';

export interface KernelPlan<Binding extends string = string> {
  spec: KernelSpec;
  /** Workgroup counts; large 1-D grids are folded into x·y (shaders use wid.x + wid.y·nwg.x). */
  workgroups: [number, number, number];
  /** Bytes of the shader's `Params` uniform struct, field for field (empty for shaders without one). */
  uniforms: ArrayBuffer;
  /**
   * What each binding holds, in binding order: index i is the WGSL `@binding(i)` ('' = unused by this
   * variant). Binding 0 is the uniforms where the shader has a `Params` struct.
   */
  bindings: readonly (Binding | '')[];
  /**
   * Bytes each storage binding covers in this call (0 where the variant binds nothing), for plans whose
   * runtime sizes buffers and binding ranges from them (the W4A8 kernels: weights and scratch).
   */
  buffers?: Readonly<Partial<Record<Binding, number>>>;
  /**
   * Bytes this call reads through each storage binding (0 for one it only writes), where that is not
   * simply the bound range: a buffer bound whole of which the call reads some rows (activations sized
   * for the largest batch, the KV cache up to the position, one row of the RoPE table). A binding the
   * plan leaves out counts as read whole (see callReadBytes); the uniforms are not counted.
   */
  reads?: Readonly<Partial<Record<Binding, number>>>;
}

/**
 * Bytes one dispatch of `plan` reads: per used storage binding, plan.reads where it states one, else
 * `bound(name)` (the bytes the bind group binds there). `bound` absent: undefined unless plan.reads
 * covers every used binding. What `aser profile` sums into bytes per token (runtime/traffic.ts).
 */
export function callReadBytes<B extends string>(plan: Pick<KernelPlan<B>, 'bindings' | 'reads'>, bound?: (name: B) => number): number | undefined {
  let sum = 0;
  for (const name of plan.bindings) {
    if (name === '' || name === 'params') continue;
    const r = plan.reads?.[name];
    if (r !== undefined) sum += r;
    else if (bound) sum += bound(name);
    else return undefined;
  }
  return sum;
}

/** Bytes each storage binding covers in one call (every binding but the uniforms; 0 = not bound). */
export type BindingBytes<Binding extends string> = Record<Exclude<Binding, 'params'>, number>;

/** A plan that sizes every storage binding it names (the linears: their runtimes allocate from it). */
export type SizedKernelPlan<Binding extends string> = Omit<KernelPlan<Binding>, 'buffers'> & { buffers: Readonly<BindingBytes<Binding>> };

/** The variant's bindings (plan.bindings) in a shader's binding order: names[i] is `@binding(i)`, '' where `used` says no. */
export function bindingsInOrder<B extends string>(names: readonly B[], used: (name: B) => boolean): Array<B | ''> {
  return names.map((n) => (used(n) ? n : ''));
}

/** WebGPU guarantees at least this many workgroups per dimension; we never ask for more. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/** Packs 32-bit uniform fields; `types[i]` is 'u' (u32), 'i' (i32) or 'f' (f32). Padded to 16 bytes. */
export function packUniforms(fields: readonly number[], types: string): ArrayBuffer {
  if (types.length !== fields.length) throw new RangeError(`packUniforms: ${fields.length} fields but ${types.length} types`);
  const bytes = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(bytes);
  fields.forEach((v, i) => {
    const t = types[i];
    if (t === 'f') view.setFloat32(i * 4, v, true);
    else if (t === 'i') view.setInt32(i * 4, v, true);
    else {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`packUniforms: field ${i} = ${v} is not a u32`);
      view.setUint32(i * 4, v, true);
    }
  });
  return bytes;
}

/** A 1-D count of workgroups as an x·y grid that respects the per-dimension limit. */
export function grid1d(groups: number): [number, number, number] {
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  if (y > MAX_WORKGROUPS_PER_DIM) throw new RangeError(`grid1d: ${groups} workgroups exceed the dispatch limit`);
  return [Math.ceil(groups / y), y, 1];
}
