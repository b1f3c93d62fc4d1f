/** The README's benchmark table is the committed bench/results.json, as bench/readme-table.ts writes it. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { markdownTable, tableIn, type Results } from '../bench/readme-table.js';

it("the README's benchmark table is generated from bench/results.json", () => {
  const results = JSON.parse(readFileSync(new URL('../bench/results.json', import.meta.url), 'utf8')) as Results;
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  expect(tableIn(readme), 'run `node dist/bench/readme-table.js` after changing bench/results.json').toBe(markdownTable(results));
});
