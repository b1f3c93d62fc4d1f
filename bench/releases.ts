/**
 * Releases (issue 13): what journaling costs a load (one fsynced journal record, the source stored
 * once by hash) beside the same load with no store, and how long a system takes to start from a
 * store holding 100 releases beside a start from the config alone, in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { System, type NodeSpec } from '../src/index.js';
import { measure, now, row, type Benchmark, type ResultRow } from './lib.js';

const source = (v: number) => `export const vsn = ${v};\nexport function start() { return ${v}; }\n`;
const nodes = (): NodeSpec[] => [
  { name: 'a', modules: { m: source(0) } },
  { name: 'b', modules: { m: source(0) } },
];

async function timedLoads(system: System, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 1; i <= count; i++) {
    const t0 = now();
    await system.node(i % 2 ? 'a' : 'b').load('m', source(i));
    times.push((now() - t0) * 1000);
  }
  return times;
}

export const releasesBench: Benchmark = {
  name: 'releases',
  description: 'a load journaled in the release store vs no store; start from a store of 100 releases vs from the config',
  async run({ reps, log }): Promise<ResultRow[]> {
    const dir = mkdtempSync(join(tmpdir(), 'subnode-bench-releases-'));
    try {
      const withStore: number[] = [];
      const without: number[] = [];
      const fromStore: number[] = [];
      const fromConfig: number[] = [];
      for (let r = 0; r <= reps; r++) {
        const store = join(dir, `store-${r}`);
        let system = await System.start({ nodes: nodes(), releases: { store } });
        const journaled = await timedLoads(system, 100);
        await system.stop();
        system = await System.start({ nodes: nodes() });
        const plain = await timedLoads(system, 100);
        await system.stop();
        let t0 = now();
        system = await System.start({ nodes: nodes(), releases: { store } });
        const restored = (now() - t0) * 1000;
        await system.stop();
        t0 = now();
        system = await System.start({ nodes: nodes() });
        const configured = (now() - t0) * 1000;
        await system.stop();
        if (r === 0) continue; // warm-up
        withStore.push(...journaled);
        without.push(...plain);
        fromStore.push(restored);
        fromConfig.push(configured);
        log(`releases: rep ${r}: start from store ${restored.toFixed(0)} µs, from config ${configured.toFixed(0)} µs`);
      }
      return [
        // No ratio target: a durable load pays the disk's fsyncs (source blob, journal record), which
        // an in-memory load does not; the figure is for operators to know the price.
        row(
          'load journaled in the release store (fsynced before it answers)',
          measure('load with a store', withStore, 'µs'),
          measure('the same load, no store', without, 'µs'),
        ),
        row(
          'start from a store of 100 releases (2 nodes)',
          measure('start from the store', fromStore, 'µs'),
          measure('start from the config alone', fromConfig, 'µs'),
          { text: '≤ 2×', check: (_v, ratio) => ratio <= 2 },
        ),
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
