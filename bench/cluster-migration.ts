/**
 * Across hosts (issue #17): a message stream while its receiver migrates between the nodes of two
 * hosts of a cluster (two Systems in this process, each with its own NATS connection, on a
 * nats-server started for the run). Two senders, one on each host's node, cast numbered messages
 * to one counter server that moves host A -> host B -> host A ... every 20 ms; the counter checks
 * each sender's order and the run counts what arrived. Baseline, same run: the same stream with
 * no moves. The target is the guarantee, not a speed: lost = 0 and per-sender order kept.
 */
import { System, type Pid } from '../src/index.js';
import { COUNTER, SENDER } from './migration.js';
import { natsServer } from './nats-server.js';
import { measure, now, row, within, type Benchmark, type ResultRow } from './lib.js';

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

export const clusterMigrationBench: Benchmark = {
  name: 'cluster-migrate',
  description: 'across hosts on NATS: a message stream while its receiver migrates between hosts',
  async run({ reps, scale, log }): Promise<ResultRow[]> {
    const perSender = Math.max(1_000, Math.round(100_000 * scale));
    const server = await natsServer();
    const cluster = (name: string) => ({ servers: server.url, name, cluster: 'bench-migrate' });
    const modules = { counter: COUNTER, sender: SENDER };
    const a = await System.start({ cluster: cluster('A'), nodes: [{ name: 'a', modules }] });
    const b = await System.start({ cluster: cluster('B'), nodes: [{ name: 'b', modules }] });
    try {
      await within(
        (async () => {
          while (!a.nodes().some((x) => x.name === 'b') || !b.nodes().some((x) => x.name === 'a')) await settle();
        })(),
        10_000,
        'hosts A and B see each other',
      );
      const inbox = a.inbox();
      const moveMs: number[] = [];
      const stream = async (moving: boolean): Promise<{ rate: number; lost: number; bad: number; moves: number }> => {
        const target: Pid = await a.node('a').startServer('counter', [null]);
        const t = now();
        await a.node('a').spawn('sender', 'blast', [target, 'sa', 0, perSender, inbox.pid]);
        await a.node('b').spawn('sender', 'blast', [target, 'sb', 0, perSender, inbox.pid]);
        let moves = 0;
        let doneCount = 0;
        const done = (async () => {
          while (doneCount < 2) {
            await inbox.receive({ $cast: { done: (d: unknown) => typeof d === 'string' } }, 120_000);
            doneCount++;
          }
        })();
        while (moving && doneCount < 2) {
          await new Promise((r) => setTimeout(r, 20));
          const started = now();
          await a.migrate(target, a.locate(target).node === 'a' ? 'b' : 'a');
          moveMs.push(now() - started);
          moves++;
        }
        await done;
        // Sends are at most once and asynchronous: wait (bounded) until the counter has seen what
        // the senders sent; what is still missing at the deadline is counted as lost.
        while ((await a.call<number>(target, 'total', 60_000)) < 2 * perSender && now() - t < 60_000) await settle();
        const ms = now() - t;
        const state = await a.call<{ total: number; bad: number }>(target, 'state', 60_000);
        await a.node(a.locate(target).node).exit(target, 'kill');
        return { rate: state.total / (ms / 1000), lost: 2 * perSender - state.total, bad: state.bad, moves };
      };
      const during: number[] = [];
      const still: number[] = [];
      let lost = 0;
      let bad = 0;
      let moves = 0;
      for (let r = -1; r < reps; r++) {
        const m = await stream(true);
        const s = await stream(false);
        lost += m.lost + s.lost;
        bad += m.bad + s.bad;
        moves += m.moves;
        if (r >= 0) {
          during.push(m.rate);
          still.push(s.rate);
        }
      }
      inbox.close();
      const streamRow = row(
        `message stream across hosts while the receiver migrates between them (lost ${lost}, out of order ${bad}, ${moves} moves)`,
        measure('delivered during cross-host moves', during, 'msg/s'),
        measure('same stream, no moves', still, 'msg/s'),
        { text: 'lost = 0 and order kept, under moves', check: () => lost === 0 && bad === 0 && moves > 0 },
      );
      log(
        `  cross-host stream: ${Math.round(streamRow.value)} msg/s during moves vs ${Math.round(streamRow.baseline.value)} still; lost ${lost}, out of order ${bad}, moves ${moves}, each ${moveMs.map((ms) => ms.toFixed(0)).join(', ')} ms`,
      );
      return [streamRow];
    } finally {
      await Promise.allSettled([a.stop(), b.stop()]);
      await server.stop();
    }
  },
};
