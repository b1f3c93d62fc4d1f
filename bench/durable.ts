/**
 * Durable server state (issue 13, item 4): what checkpoint 'message' costs a call (the state
 * written and fsynced before the reply) beside the same call to a server that keeps nothing, in
 * the same system; and one checkpoint write of the state store (temp file, fsync, rename,
 * directory fsync) beside the same write without the fsyncs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryStateStore, System } from '../src/index.js';
import { measure, now, row, type Benchmark, type ResultRow } from './lib.js';

const counter = `
  export function init(n: number) { return { count: n }; }
  export function handleCall(_req: unknown, _from: unknown, s: { count: number }) { return { reply: s.count + 1, state: { count: s.count + 1 } }; }
  export function handleCast(_m: unknown, s: unknown) { return { noreply: s }; }
`;

async function timedCalls(system: System, dest: { name: string; node: string }, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = now();
    await system.call(dest, 'inc');
    times.push((now() - t0) * 1000);
  }
  return times;
}

async function timedPuts(store: DirectoryStateStore, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = now();
    await store.put({ node: 'a', key: 'c', module: 'counter', vsn: 1, state: { count: i, history: [1, 2, 3] }, at: Date.now() });
    times.push((now() - t0) * 1000);
  }
  return times;
}

export const durableBench: Benchmark = {
  name: 'durable',
  description: "a call to a server with checkpoint 'message' vs a server that keeps nothing; one state write with and without fsync",
  async run({ reps, scale, log }): Promise<ResultRow[]> {
    const dir = mkdtempSync(join(tmpdir(), 'subnode-bench-durable-'));
    const calls = Math.max(20, Math.round(200 * scale));
    try {
      const durable: number[] = [];
      const plain: number[] = [];
      const synced: number[] = [];
      const unsynced: number[] = [];
      for (let r = 0; r <= reps; r++) {
        const system = await System.start({
          nodes: [
            {
              name: 'a',
              modules: { counter },
              start: [
                { server: 'counter', args: [0], name: 'durable', durable: { checkpoint: 'message' } },
                { server: 'counter', args: [0], name: 'plain' },
              ],
            },
          ],
          releases: { store: join(dir, `store-${r}`) },
        });
        const d = await timedCalls(system, { name: 'durable', node: 'a' }, calls);
        const p = await timedCalls(system, { name: 'plain', node: 'a' }, calls);
        await system.stop();
        const s = await timedPuts(new DirectoryStateStore(join(dir, `states-${r}`)), calls);
        const u = await timedPuts(new DirectoryStateStore(join(dir, `nosync-${r}`), { fsync: false }), calls);
        if (r === 0) continue; // warm-up
        durable.push(...d);
        plain.push(...p);
        synced.push(...s);
        unsynced.push(...u);
        log(`durable: rep ${r} done`);
      }
      return [
        // No target: an every-message checkpoint pays a round trip to the host and the disk's fsyncs per
        // call that changes the state; the figure is for users choosing a policy.
        row(
          "system.call to a durable server (checkpoint 'message', durable before the reply)",
          measure('call, durable', durable, 'µs'),
          measure('the same call, a server that keeps nothing', plain, 'µs'),
        ),
        row(
          'durable state write (temp file, fsync, rename, directory fsync)',
          measure('state write', synced, 'µs'),
          measure('the same write without fsync', unsynced, 'µs'),
        ),
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
