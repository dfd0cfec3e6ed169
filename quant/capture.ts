// Calibration capture: runs a token window through the fp executor and hands the input of every
// block linear to a callback, per (layer, input kind) and row chunk, by tapping the executor's forward
// (Executor.tapLayers). Layer-by-layer calibration carries each window's residual stream
// (ResidualState) from one pass to the next, so a pass runs only its own layers.
import type { LinearInputKind, ModelConfig } from '../core/model.js';
import { createBufferChecked } from '../runtime/device.js';
import { readMappedF32, READBACK } from '../runtime/buffers.js';
import type { Executor } from '../runtime/executor.js';


/** Receives rows [firstRow, firstRow + T) of a linear input of `layer`, x = [T, in] row-major f32. */
export type LinearInputCallback = (layer: number, kind: LinearInputKind, x: Float32Array, firstRow: number) => void | Promise<void>;

/**
 * The residual stream of a token sequence after layer `afterLayer`: `x` and its normed copy `xn` (the
 * next layer's input), each [tokens, dim] f32. Layer-by-layer calibration carries it from one pass to
 * the next so that a pass runs only its own layers, not every layer below them again.
 */
export interface ResidualState {
  afterLayer: number;
  x: Float32Array;
  xn: Float32Array;
}

export interface CaptureOptions {
  /** Layers to report; the forward stops after the last of them. */
  layers?: Iterable<number>;
  /** Start after `from.afterLayer` from this state of the same tokens instead of at the embedding. */
  from?: ResidualState;
  /** Return the state after the last layer run (undefined when that is the model's last layer). */
  keepState?: boolean;
}

type CaptureConfig = Pick<ModelConfig, 'dim' | 'hiddenDim' | 'nHeads' | 'headDim'>;

/**
 * What calibration needs from the model: its config and every block linear's input during a forward
 * pass, reported per (layer, input kind) as row chunks x = rows [firstRow, firstRow + T) of the
 * window, [T, in]. executorCapture makes one of an executor; quant/group-capture.ts another.
 */
export interface LinearInputCapture {
  readonly config: CaptureConfig;
  captureLinearInputs(
    tokens: ArrayLike<number>,
    onInput: LinearInputCallback,
    /**
     * Layers wanted: a capture may skip the others and stop after the last (the executor does). With
     * `from` it starts from that residual state; with `keepState` it may return the state after its
     * last layer (a capture that returns nothing just makes the next pass start at the embedding).
     */
    opts?: CaptureOptions,
  ): Promise<ResidualState | undefined | void> | void;
}

/** Input width of each linear input kind. */
export function linearInputWidths(config: CaptureConfig): Record<LinearInputKind, number> {
  return { attn_in: config.dim, attn_out: config.nHeads * config.headDim, mlp_in: config.dim, mlp_act: config.hiddenDim };
}

/** The executor as a LinearInputCapture. */
export function executorCapture(executor: Executor): LinearInputCapture {
  return {
    config: executor.config,
    captureLinearInputs: (tokens, onInput, opts) => captureLinearInputs(executor, tokens, onInput, opts),
  };
}

/**
 * A fresh prefill of `tokens` from position 0 that reports, per layer, the inputs of its linears:
 * 'attn_in' (normed input of q/k/v), 'attn_out' (o_proj input), 'mlp_in' (normed input of gate/up),
 * 'mlp_act' (down_proj input), each [rows, in] row-major f32. Rows come in chunks of at most the
 * executor's maxBatchTokens (`firstRow` = index of row 0 in `tokens`): one call per (layer, kind) when
 * tokens.length ≤ maxBatchTokens. One layer's activations are held at a time. Leaves the tokens in the
 * executor's cache but no valid logits. With `opts.layers`, only those layers are reported and the
 * forward stops after the last of them; `from` / `keepState` carry the residual stream between such
 * passes.
 */
export async function captureLinearInputs(
  executor: Executor, tokens: ArrayLike<number>, onInput: LinearInputCallback, opts: CaptureOptions = {},
): Promise<ResidualState | undefined> {
  const c = executor.config;
  const n = tokens.length;
  const wanted = opts.layers ? new Set(opts.layers) : undefined;
  const lastLayer = wanted ? Math.min(c.nLayers - 1, Math.max(-1, ...wanted)) : c.nLayers - 1;
  const keep = opts.keepState === true && lastLayer < c.nLayers - 1;
  const state: ResidualState | undefined = keep ? { afterLayer: lastLayer, x: new Float32Array(n * c.dim), xn: new Float32Array(n * c.dim) } : undefined;
  const cols = linearInputWidths(c);
  const kinds = Object.keys(cols) as LinearInputKind[];
  const rowsMax = Math.min(n, executor.maxBatchTokens);
  // One readback buffer per input kind (and for the kept state), reused chunk by chunk and layer by layer.
  const staging = {} as Record<LinearInputKind | 'x' | 'xn', GPUBuffer>;
  try {
    for (const kind of [...kinds, ...(keep ? (['x', 'xn'] as const) : [])]) {
      const width = kind === 'x' || kind === 'xn' ? c.dim : cols[kind];
      staging[kind] = await createBufferChecked(executor.device, { size: rowsMax * width * 4, usage: READBACK, label: `capture/${kind}` });
    }
    const tapped = (layer: number) => !wanted || wanted.has(layer);
    await executor.tapLayers(tokens, {
      label: 'captureLinearInputs',
      lastLayer,
      from: opts.from,
      output(at, kind, src) {
        if (tapped(at.layer) && kind in cols) at.copy(src, staging[kind as LinearInputKind], at.rows * cols[kind as LinearInputKind] * 4);
      },
      end(at, x, xn) {
        if (!state || at.layer !== lastLayer) return;
        at.copy(x, staging.x, at.rows * c.dim * 4);
        at.copy(xn, staging.xn, at.rows * c.dim * 4);
      },
      async submitted(at) {
        if (tapped(at.layer)) {
          for (const kind of kinds) await onInput(at.layer, kind, await readMappedF32(staging[kind], at.rows * cols[kind] * 4), at.firstRow);
        }
        if (state && at.layer === lastLayer) {
          state.x.set(await readMappedF32(staging.x, at.rows * c.dim * 4), at.firstRow * c.dim);
          state.xn.set(await readMappedF32(staging.xn, at.rows * c.dim * 4), at.firstRow * c.dim);
        }
      },
    });
    return state;
  } finally {
    for (const b of Object.values(staging)) b.destroy();
  }
}
