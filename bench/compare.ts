/**
 * `npm run bench -- --compare`: this run's ratios beside the committed bench/results.json. Every
 * ratio is value / baseline; whether lower or higher is better follows from the unit (rates:
 * higher; times and bytes: lower). A ratio that got worse by more than 25% is flagged.
 */
import type { ResultRow } from './lib.js';

export const WORSE_BY = 0.25;

export interface Comparison {
  name: string;
  before: number;
  after: number;
  /** > 0: worse by that fraction; < 0: better. */
  change: number;
  flagged: boolean;
}

/** Rates (…/s) are better higher; times, bytes and anything else lower. */
export function higherIsBetter(unit: string): boolean {
  return unit.endsWith('/s');
}

export interface ComparisonReport {
  compared: Comparison[];
  /** Rows of this run that could not be compared, each with the reason (so none is skipped unseen). */
  notCompared: { name: string; why: string }[];
}

export function compareRows(previous: ResultRow[], current: ResultRow[]): ComparisonReport {
  const byName = new Map(previous.map((r) => [r.name, r]));
  const report: ComparisonReport = { compared: [], notCompared: [] };
  for (const row of current) {
    const old = byName.get(row.name);
    if (!old) report.notCompared.push({ name: row.name, why: 'no row of this name in bench/results.json (new, or its name carries a tally)' });
    else if (!(old.ratio > 0) || !(row.ratio > 0))
      report.notCompared.push({ name: row.name, why: `no positive ratio (before ${old.ratio}, now ${row.ratio})` });
    else {
      const change = higherIsBetter(row.unit) ? old.ratio / row.ratio - 1 : row.ratio / old.ratio - 1;
      report.compared.push({ name: row.name, before: old.ratio, after: row.ratio, change, flagged: change > WORSE_BY });
    }
  }
  return report;
}

export function formatComparison({ compared, notCompared }: ComparisonReport): string {
  const skipped = notCompared.map((r) => `not compared: ${r.name}: ${r.why}`);
  if (!compared.length) return ['(no row of this run is in bench/results.json)', ...skipped].join('\n');
  const width = Math.max(...compared.map((r) => r.name.length));
  return compared
    .map(
      (r) =>
        `${r.name.padEnd(width)}  ${r.before.toPrecision(3).padStart(8)}x -> ${r.after.toPrecision(3).padStart(8)}x  ` +
        `${r.change > 0 ? 'worse' : 'better'} by ${(Math.abs(r.change) * 100).toFixed(0)}%${r.flagged ? '  <-- FLAGGED' : ''}`,
    )
    .concat(skipped)
    .join('\n');
}
