/**
 * 4. Node start time: `System.start` with one thread node until it resolves (the node's thread is
 * up, its kernel answers), and `addNode` of a second node to a running system (which also connects
 * it to the first). Baseline: a bare worker thread (bench/bare-worker.ts, an ESM file) from
 * `new Worker` until its first message.
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { System } from '../src/index.js';
import { gc, measure, now, row, within, type Benchmark } from './lib.js';

async function bareWorkerStart(): Promise<number> {
  const t0 = now();
  const worker = new Worker(new URL('./bare-worker.js', import.meta.url));
  await within(once(worker, 'message'), 10_000, 'bare worker start');
  const ms = now() - t0;
  await worker.terminate();
  return ms;
}

async function systemStart(): Promise<{ start: number; add: number }> {
  let t0 = now();
  const system = await System.start({ nodes: [{ name: 'a' }] });
  const start = now() - t0;
  try {
    t0 = now();
    await system.addNode({ name: 'b' });
    const add = now() - t0;
    return { start, add };
  } finally {
    await system.stop();
  }
}

export const nodeStart: Benchmark = {
  name: 'start',
  description: 'thread node start time vs a bare worker thread',
  async run({ reps, log }) {
    // Starts are cheap and noisy: take more rounds than elsewhere.
    const rounds = reps * 2 + 1;
    const base: number[] = [];
    const start: number[] = [];
    const add: number[] = [];
    for (let r = -1; r < rounds; r++) {
      gc();
      let b: number;
      let s: { start: number; add: number };
      if (r % 2 === 0) {
        b = await bareWorkerStart();
        s = await systemStart();
      } else {
        s = await systemStart();
        b = await bareWorkerStart();
      }
      if (r < 0) continue;
      base.push(b);
      start.push(s.start);
      add.push(s.add);
    }
    const baseline = measure('bare worker thread until first message', base, 'ms');
    const rows = [
      row('node start: System.start with 1 thread node', measure('System.start', start, 'ms'), baseline),
      row('node start: addNode to a running system', measure('addNode', add, 'ms'), baseline),
    ];
    log(`  start: bare worker ${baseline.value.toFixed(1)} ms, System.start ${rows[0]!.value.toFixed(1)} ms, addNode ${rows[1]!.value.toFixed(1)} ms`);
    return rows;
  },
};
