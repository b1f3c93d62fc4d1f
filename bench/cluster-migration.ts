/**
 * Across hosts (issue #17): a message stream while its receiver migrates between the nodes of two
 * hosts of a cluster (two Systems in this process, each with its own NATS connection, on a
 * nats-server started for the run). Two senders, one on each host's node, cast numbered messages
 * to one counter server that moves host A -> host B -> host A ... every 20 ms; the counter checks
 * each sender's order and the run counts what arrived. Baseline, same run: the same stream with
 * no moves. The target is the guarantee, not a speed: lost = 0 and per-sender order kept.
 */
import { System } from '../src/index.js';
import { COUNTER, SENDER, streamDuringMoves } from './migration.js';
import { natsServer } from './nats-server.js';
import { measure, row, within, type Benchmark, type ResultRow } from './lib.js';

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
      const { during, still, lost, bad, moves, moveMs } = await streamDuringMoves(a, ['a', 'b'], perSender, reps);
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
