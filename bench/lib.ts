/**
 * Shared pieces of the benchmark suite: result rows, medians, the machine description, and the
 * table printer. Every figure is reported beside a baseline measured in the same run; `ratio` is
 * always value / baseline (for rates higher is better, for times and bytes lower is better).
 */
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';

export interface Measure {
  name: string;
  value: number;
  unit: string;
  /** Every repetition, in run order (the value is their median). */
  samples?: number[];
}

export interface ResultRow {
  name: string;
  value: number;
  unit: string;
  samples?: number[];
  baseline: Measure;
  ratio: number;
  target?: string;
  met?: boolean;
  /** When the target is not met: the measured cause, as the benchmark knows it. */
  whyNot?: string;
}

export interface Machine {
  node: string;
  cpus: number;
  cpuModel: string;
  totalMemGiB: number;
  date: string;
}

export interface BenchOptions {
  /** Measured repetitions per figure (a warm-up round comes first and is not counted). */
  reps: number;
  /** Scale the message/process counts (1 = the default sizes). */
  scale: number;
  /**
   * Whether the row named `row` is wanted (`--only`): a benchmark may skip the work of rows nobody
   * asked for; the runner drops unwanted rows in any case.
   */
  wants(row: string): boolean;
  log(line: string): void;
}

/** `--only` texts to a row filter: a row is wanted when its name contains one of them (any case). */
export function rowFilter(only: string[]): (row: string) => boolean {
  if (!only.length) return () => true;
  const texts = only.map((t) => t.toLowerCase());
  return (row) => texts.some((t) => row.toLowerCase().includes(t));
}

export interface Benchmark {
  name: string;
  description: string;
  run(options: BenchOptions): Promise<ResultRow[]>;
}

export function median(values: number[]): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function measure(name: string, samples: number[], unit: string): Measure {
  return { name, value: median(samples), unit, samples };
}

/** A result row; `target` is checked against the ratio unless `check` says otherwise. */
export function row(
  name: string,
  subject: Measure,
  baseline: Measure,
  target?: { text: string; check: (value: number, ratio: number) => boolean },
  /** Said beside the row when its target is not met: the measured cause. */
  whyNot?: string,
): ResultRow {
  const ratio = subject.value / baseline.value;
  const out: ResultRow = {
    name,
    value: round(subject.value),
    unit: subject.unit,
    samples: subject.samples?.map((x) => round(x)),
    baseline: { name: baseline.name, value: round(baseline.value), unit: baseline.unit, samples: baseline.samples?.map((x) => round(x)) },
    ratio: round(ratio, 4),
  };
  if (target) {
    out.target = target.text;
    out.met = target.check(subject.value, ratio);
    if (!out.met && whyNot) out.whyNot = whyNot;
  }
  return out;
}

/** Measurements are noisy well before the 6th digit: keep results.json readable. */
const round = (x: number, digits = 6): number => (Number.isFinite(x) ? Number(x.toPrecision(digits)) : x);

export const atLeastRatio = (min: number, of = 'baseline') => ({
  text: `>= ${Math.round(min * 100)}% of ${of}`,
  check: (_value: number, ratio: number) => ratio >= min,
});

/** What a receiver's sum of `n` must be when the sender numbers each batch of `batch` from 0. */
export function batchedSum(n: number, batch: number): number {
  const tri = (k: number) => (k * (k - 1)) / 2;
  return Math.floor(n / batch) * tri(batch) + tri(n % batch);
}

export function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect) {
    collect();
    collect();
  }
}

export function hasGc(): boolean {
  return typeof (globalThis as { gc?: unknown }).gc === 'function';
}

export const now = (): number => performance.now();

/** Lets pending I/O and immediates run (a macrotask turn). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Rejects if `promise` takes longer than `ms`, so a stuck benchmark fails instead of hanging. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    date: new Date().toISOString(),
  };
}

// ---- formatting ---------------------------------------------------------------------------------

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === 'msg/s' || unit === 'proc/s') {
    if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M ${unit}`;
    if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k ${unit}`;
    return `${value.toFixed(0)} ${unit}`;
  }
  if (unit === 'ms') return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
  if (unit === 'B') return `${value.toFixed(0)} B`;
  return `${value.toPrecision(4)} ${unit}`;
}

export function formatTable(rows: ResultRow[]): string {
  const header = ['benchmark', 'value', 'baseline', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    formatValue(r.value, r.unit),
    `${formatValue(r.baseline.value, r.baseline.unit)}  (${r.baseline.name})`,
    `${r.ratio.toFixed(3)}x`,
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : r.whyNot ? `NO: ${r.whyNot}` : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.map(fmt)].join('\n');
}
