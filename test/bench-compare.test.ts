/** `npm run bench -- --compare`: which ratios got worse, and which rows could not be compared. */
import { expect, it } from 'vitest';
import { compareRows, formatComparison } from '../bench/compare.js';
import type { ResultRow } from '../bench/lib.js';

const r = (name: string, unit: string, ratio: number): ResultRow => ({
  name,
  value: ratio,
  unit,
  baseline: { name: 'b', value: 1, unit },
  ratio,
});

it('flags a ratio more than 25% worse, by the direction its unit says is better', () => {
  const before = [r('rate', 'msg/s', 1), r('time', 'µs', 1), r('fine', 'µs', 1)];
  const now = [r('rate', 'msg/s', 0.7), r('time', 'µs', 1.3), r('fine', 'µs', 1.2)];
  const { compared, notCompared } = compareRows(before, now);
  expect(compared.map((c) => [c.name, c.flagged])).toEqual([
    ['rate', true],
    ['time', true],
    ['fine', false],
  ]);
  expect(notCompared).toEqual([]);
});

it('reports each row it could not compare, with the reason, instead of skipping it unseen', () => {
  const report = compareRows([r('old name', 'µs', 1), r('zero', 'µs', 0)], [r('new name', 'µs', 1), r('zero', 'µs', 1)]);
  expect(report.compared).toEqual([]);
  expect(report.notCompared.map((c) => c.name)).toEqual(['new name', 'zero']);
  const text = formatComparison(report);
  expect(text).toContain('not compared: new name: no row of this name');
  expect(text).toContain('not compared: zero: no positive ratio');
});
