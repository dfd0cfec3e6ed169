// Charts as standalone SVG strings: a Vega-Lite spec compiled and rendered headlessly (no DOM, no
// canvas), so reports, diagnostics and benchmarks draw plots with one well-kept library.
// Vega loads on the first chart: every CLI command imports this module, few draw (and the GPU kit
// carries no Vega).
import type { TopLevelSpec } from 'vega-lite';

export type ChartSpec = TopLevelSpec;

/** Renders a Vega-Lite spec to an SVG document. Data must be inline (`data: { values }`). */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** What every chart here shares: schema, title, size and inline rows. */
function frame(rows: Array<Record<string, unknown>>, o: { title: string; width?: number; height?: number }) {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: o.title, width: o.width ?? 420, height: o.height ?? 260, data: { values: rows } };
}

export interface LineChartOptions {
  title: string;
  x: string;
  y: string;
  /** Field that splits the rows into one line per value (a legend), if any. */
  series?: string;
  logY?: boolean;
  logX?: boolean;
  points?: boolean;
  width?: number;
  height?: number;
}

/** One or more lines over rows of plain objects: the common case (spectra, ppl vs α, rank per layer). */
export function lineChart(rows: Array<Record<string, unknown>>, o: LineChartOptions): ChartSpec {
  return {
    ...frame(rows, o),
    mark: { type: 'line', point: o.points ?? false },
    encoding: {
      x: { field: o.x, type: 'quantitative', ...(o.logX ? { scale: { type: 'log' } } : {}) },
      y: { field: o.y, type: 'quantitative', ...(o.logY ? { scale: { type: 'log' } } : {}) },
      ...(o.series ? { color: { field: o.series, type: 'nominal' } } : {}),
    },
  } as ChartSpec;
}

export interface BarChartOptions {
  title: string;
  /** Category field (x axis). */
  x: string;
  y: string;
  /** Field for grouped bars side by side, if any. */
  group?: string;
  logY?: boolean;
  width?: number;
  height?: number;
}

export function barChart(rows: Array<Record<string, unknown>>, o: BarChartOptions): ChartSpec {
  return {
    ...frame(rows, o),
    mark: 'bar',
    encoding: {
      x: { field: o.x, type: 'nominal', sort: null },
      y: { field: o.y, type: 'quantitative', ...(o.logY ? { scale: { type: 'log' } } : {}) },
      ...(o.group ? { color: { field: o.group, type: 'nominal' }, xOffset: { field: o.group } } : {}),
    },
  } as ChartSpec;
}

/** Histogram of one numeric field (binned on the fly by Vega-Lite). */
export function histogram(rows: Array<Record<string, unknown>>, o: { title: string; field: string; bins?: number; logY?: boolean; width?: number; height?: number }): ChartSpec {
  return {
    ...frame(rows, o),
    mark: 'bar',
    encoding: {
      x: { field: o.field, type: 'quantitative', bin: { maxbins: o.bins ?? 50 } },
      y: { aggregate: 'count', type: 'quantitative', ...(o.logY ? { scale: { type: 'symlog' } } : {}) },
    },
  } as ChartSpec;
}

/** Points of (x, y), coloured by `series`; an optional y = x guide line (e.g. latency vs FLOPs overhead). */
export function scatterChart(rows: Array<Record<string, unknown>>, o: { title: string; x: string; y: string; series?: string; diagonal?: boolean; width?: number; height?: number }): ChartSpec {
  const points = {
    mark: { type: 'point', filled: true, size: 70 },
    encoding: {
      x: { field: o.x, type: 'quantitative' },
      y: { field: o.y, type: 'quantitative' },
      ...(o.series ? { color: { field: o.series, type: 'nominal' } } : {}),
      tooltip: Object.keys(rows[0] ?? {}).map((field) => ({ field })),
    },
  };
  const xs = rows.map((r) => Number(r[o.x])).filter(Number.isFinite);
  const lo = Math.min(0, ...xs), hi = Math.max(1, ...xs);
  const diagonal = {
    data: { values: [{ [o.x]: lo, [o.y]: lo }, { [o.x]: hi, [o.y]: hi }] },
    mark: { type: 'line', strokeDash: [4, 4], color: '#888' },
    encoding: { x: { field: o.x, type: 'quantitative' }, y: { field: o.y, type: 'quantitative' } },
  };
  return {
    ...frame(rows, o),
    layer: o.diagonal ? [points, diagonal] : [points],
  } as ChartSpec;
}
