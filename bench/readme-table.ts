/**
 * The README's benchmark table, generated from bench/results.json — never edited by hand.
 *
 *   node dist/bench/readme-table.js     rewrites the table in README.md from bench/results.json
 *
 * A full `npm run bench` does this itself after writing results.json; a test checks that the two agree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatValue, type Machine, type ResultRow } from './lib.js';

export const START = '<!-- bench-table:start (generated from bench/results.json by bench/readme-table.ts) -->';
export const END = '<!-- bench-table:end -->';

export interface Results {
  machine: Machine;
  results: ResultRow[];
}

const cell = (text: string): string => text.replace(/\|/g, '\\|');
const ratio = (r: number): string => `${Number(r.toPrecision(3))}×`;
/** The target and whether it was met; when not, the measured cause the row gives. */
function verdict(row: ResultRow): string {
  if (row.target === undefined) return '';
  if (row.met) return `${row.target}: met`;
  return `${row.target}: **not met**${row.whyNot ? ` — ${row.whyNot}` : ''}`;
}

/** The machine line and the table, as they stand between the README's markers. */
export function markdownTable({ machine, results }: Results): string {
  const rows = results.map((r) =>
    [r.name, formatValue(r.value, r.unit), `${formatValue(r.baseline.value, r.baseline.unit)} — ${r.baseline.name}`, ratio(r.ratio), verdict(r)]
      .map(cell)
      .join(' | '),
  );
  return [
    `Taken on ${machine.date.slice(0, 10)}: Node ${machine.node}, ${machine.cpus} × ${machine.cpuModel}, ${machine.totalMemGiB} GiB,`,
    'a shared and noisy machine (medians; read ratios, not absolutes: they move ±30% between identical runs here).',
    '',
    '| benchmark | subnode | baseline (same run) | ratio | target |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n');
}

/** The README with its table replaced; throws when the markers are missing. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no benchmark table markers (${START} … ${END})`);
  return `${readme.slice(0, start + START.length)}\n${table}\n${readme.slice(end)}`;
}

/** The table as it stands in the README (for the test that keeps it honest). */
export function tableIn(readme: string): string | undefined {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  return start < 0 || end < start ? undefined : readme.slice(start + START.length, end).trim();
}

const root = (file: string): string => fileURLToPath(new URL(`../../${file}`, import.meta.url));

export function writeReadmeTable(results: Results = JSON.parse(readFileSync(root('bench/results.json'), 'utf8')) as Results): string {
  const path = root('README.md');
  writeFileSync(path, withTable(readFileSync(path, 'utf8'), markdownTable(results)));
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(`rewrote the table in ${writeReadmeTable()}`);
