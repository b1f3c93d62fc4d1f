/**
 * The control plane under load: how long a control request (`node.modules()`, one round trip to the
 * node's thread) takes while the node is flooded — two senders on another node stream casts to a
 * server on it as fast as they can, so the node's inbound port always has batches waiting and its
 * run queue is never empty. Nothing hangs means the node serves its host between slices, whatever
 * its processes do; flow control between nodes keeps what waits in the node's inbound port to a
 * window, so the request is not read behind a backlog. Baseline, same run: the same request to the
 * same node, idle.
 */
import { System } from '../src/index.js';
import { COUNTER, SENDER } from './migration.js';
import { measure, now, row, type Benchmark, type ResultRow } from './lib.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The value at quantile q of the samples. */
const quantile = (xs: number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};

export const controlLoadBench: Benchmark = {
  name: 'control-load',
  description: 'control requests to a node flooded with messages from another node, against the same node idle',
  async run({ reps, scale, log }): Promise<ResultRow[]> {
    const perSender = Math.max(20_000, Math.round(200_000 * scale));
    const system = await System.start({ nodes: ['a', 'b'].map((name) => ({ name, modules: { counter: COUNTER, sender: SENDER } })) });
    try {
      const inbox = system.inbox();
      const ask = async (): Promise<number> => {
        const t = now();
        await system.node('a').modules();
        return now() - t;
      };
      const loaded: number[] = [];
      const idle: number[] = [];
      for (let r = -1; r < reps; r++) {
        const target = await system.node('a').startServer('counter', [null]);
        await system.node('b').spawn('sender', 'blast', [target, 'x', 0, perSender, inbox.pid]);
        await system.node('b').spawn('sender', 'blast', [target, 'y', 0, perSender, inbox.pid]);
        let done = 0;
        const finished = (async () => {
          while (done < 2) {
            await inbox.receive({ $cast: { done: (d: unknown) => typeof d === 'string' } }, 120_000);
            done++;
          }
        })();
        const during: number[] = [];
        while (done < 2) {
          during.push(await ask());
          await pause(10);
        }
        await finished;
        // The server drains what the senders left in its mailbox; then the node is idle.
        while ((await system.call<number>(target, 'total', 120_000)) < 2 * perSender) await pause(10);
        const still: number[] = [];
        for (let i = 0; i < Math.max(20, during.length); i++) {
          still.push(await ask());
          await pause(10);
        }
        await system.node('a').exit(target, 'kill');
        if (r < 0) continue;
        loaded.push(quantile(during, 0.99));
        idle.push(quantile(still, 0.99));
        log(
          `  control under load: ${during.length} requests, p50 ${quantile(during, 0.5).toFixed(2)} ms, p99 ${quantile(during, 0.99).toFixed(2)} ms, max ${Math.max(...during).toFixed(1)} ms`,
        );
      }
      inbox.close();
      return [
        row(
          'control request to a node flooded from another node (p99)',
          measure('node.modules() while two senders flood a server on the node', loaded, 'ms'),
          measure('node.modules() to the same node idle (p99)', idle, 'ms'),
          { text: '<= 50 ms', check: (value) => value <= 50 },
          "with flow control between nodes (a window of ~32,768 envelopes per port, acked on the receiver's next event-loop turn; senders held while it is full) the node's inbound port holds at most a window from the flooding node, so a control request waits behind at most that and a slice: p99 16-18 ms at machine load 3-5 on 2 cores, paired with 0.20-0.22 s without flow control; 15-61 ms at load 8-16. Over the target only when the node's thread is descheduled under machine load (its event-loop delay then reached 50-120 ms), not behind a queue",
        ),
      ];
    } finally {
      await system.stop();
    }
  },
};
