/**
 * 1. Intra-node send/receive throughput: a sender process passes N messages to a receiver process
 * on the same node, through `send` and `receive`. Measured
 *   - with the kernel on this thread (the host of a thread node, without the thread), and
 *   - inside a real thread node, timed inside the node (`performance.now()` in module code; the
 *     figure travels back as a message),
 * each with a sender that yields every 1,024 messages (returns `next(...)` after a batch) and one
 * that yields after every message. Baseline: a bare in-thread actor (bench/bare-actor.ts) with the
 * same message shape and the same yielding, measured interleaved with the kernel runs, in a worker
 * thread of its own (one per actor style, so no run's garbage slows another's).
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { System } from '../src/index.js';
import type { BareActorJob } from './bare-actor-worker.js';
import { benchKernel } from './local-kernel.js';

const INTRA_WHY =
  "a step is never cut: a sender's step of 1024 sends overran its 2000-reduction turn and ran two per turn, 2048 sends, while its receiver took 2000; the overrun is now its next turn's reduction debt, so over turns it sends ~2000 as the receiver takes 2000 (receiver backlog at slice ends ~2.8k of 10^6 messages, was ~23k; GC pauses ~3-5 ms of a ~65 ms run, were ~6-10 ms; median ratio of 12 paired runs 0.24 -> 0.27 on the main thread, 0.32 -> 0.37 inside a thread node, load 6-9 on 2 cores). Left is per message: a pid lookup, a reduction, a receive object (40 B) beside the closure module code makes, and the step's dispatch: ~60-70 ns a message against the bare actor's ~20 ns";
import { atLeastRatio, batchedSum, gc, measure, row, within, type Benchmark, type ResultRow } from './lib.js';

/** A worker that runs bare-actor rounds on request. */
export class BareActorThread {
  private readonly worker = new Worker(new URL('./bare-actor-worker.js', import.meta.url));
  async run(job: BareActorJob): Promise<number> {
    this.worker.postMessage(job);
    const [reply] = (await within(once(this.worker, 'message'), 60_000, 'bare actor run')) as [{ ms?: number; error?: string }];
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.ms!;
  }
  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

export const INTRA_MODULE = `
  import { receive, send, spawn, next, self } from 'subnode';

  /** Spawns a receiver and a sender, and reports how long the receiver took to get n messages. */
  export function run(n: number, batch: number, replyTo: string): unknown {
    const t0 = performance.now();
    const rx = spawn(receiver, n, self(), 0);
    spawn(sender, rx, n, batch);
    return receive((sum: number) => {
      send(replyTo, { ms: performance.now() - t0, sum });
      return 'done';
    });
  }

  export function receiver(left: number, parent: string, sum: number): unknown {
    return receive((m: { n: number }) => left === 1 ? finish(parent, sum + m.n) : receiver(left - 1, parent, sum + m.n));
  }

  function finish(parent: string, sum: number): unknown {
    send(parent, sum);
    return 'done';
  }

  /** Sends up to \`batch\` messages per step, then yields to the scheduler with next(). */
  export function sender(to: string, left: number, batch: number): unknown {
    const k = left < batch ? left : batch;
    for (let i = 0; i < k; i++) send(to, { n: i });
    return left > k ? next(sender, to, left - k, batch) : 'done';
  }
`;

const VARIANTS = [
  { batch: 1024, label: 'yield every 1024' },
  { batch: 1, label: 'yield every msg' },
];

export const intraNode: Benchmark = {
  name: 'intra',
  description: 'intra-node send/receive throughput vs a bare in-thread actor',
  async run({ reps, scale, log }) {
    const n = Math.max(1024, Math.round(1_000_000 * scale));
    const local = benchKernel('a');
    local.load('intra', INTRA_MODULE);
    const system = await System.start({ nodes: [{ name: 'a' }] });
    const drainThread = new BareActorThread();
    const eachThread = new BareActorThread();
    const rows: ResultRow[] = [];
    try {
      const node = system.node('a');
      await node.load('intra', INTRA_MODULE);
      const inbox = system.inbox();

      const onThisThread = async (batch: number): Promise<number> => {
        local.kernel.spawn('intra', 'run', [n, batch, local.hostPid]);
        const reply = (await within(local.receive(), 60_000, 'intra-node run')) as { ms: number; sum: number };
        if (reply.sum !== batchedSum(n, batch)) throw new Error(`intra-node run lost messages (sum ${reply.sum})`);
        return reply.ms;
      };
      const inThreadNode = async (batch: number): Promise<number> => {
        await node.spawn('intra', 'run', [n, batch, inbox.pid]);
        const reply = await inbox.receive<{ ms: number; sum: number }>(undefined, 60_000);
        if (reply.sum !== batchedSum(n, batch)) throw new Error(`thread node run lost messages (sum ${reply.sum})`);
        return reply.ms;
      };

      for (const { batch, label } of VARIANTS) {
        const jobs: [string, () => Promise<number>][] = [
          ['base', () => drainThread.run({ n, yieldEvery: batch, mode: 'drain' })],
          ['kern', () => onThisThread(batch)],
          ['thread', () => inThreadNode(batch)],
        ];
        // With a sender that yields every message, both actor loops wake once per message: one
        // baseline is enough. With batches they differ: keep the await-each loop as a reference.
        if (batch > 1) jobs.push(['each', () => eachThread.run({ n, yieldEvery: batch, mode: 'each' })]);
        const samples = new Map<string, number[]>(jobs.map(([key]) => [key, []]));
        // Round -1 warms the JIT up and is not counted; the order alternates to spread drift.
        for (let r = -1; r < reps; r++) {
          for (const [key, job] of r % 2 === 0 ? jobs : [...jobs].reverse()) {
            gc();
            const ms = await job();
            if (r >= 0) samples.get(key)!.push(n / (ms / 1000));
          }
        }
        const baseline = measure(`bare actor draining its queue, ${label}`, samples.get('base')!, 'msg/s');
        const kern = measure('kernel', samples.get('kern')!, 'msg/s');
        const thread = measure('thread node', samples.get('thread')!, 'msg/s');
        rows.push(row(`intra-node, kernel on main thread, ${label}`, kern, baseline, atLeastRatio(0.3), INTRA_WHY));
        rows.push(row(`intra-node, inside a thread node, ${label}`, thread, baseline, atLeastRatio(0.3), INTRA_WHY));
        let extra = '';
        if (samples.has('each')) {
          const each = measure(`bare actor awaiting each message, ${label}`, samples.get('each')!, 'msg/s');
          rows.push(row(`intra-node, kernel on main thread, ${label} (reference)`, kern, each));
          extra = `, await-each actor ${fmtM(each.value)}`;
        }
        log(`  intra ${label}: n=${n}, drain actor ${fmtM(baseline.value)}${extra}, kernel ${fmtM(kern.value)}, thread node ${fmtM(thread.value)}`);
      }
      inbox.close();
    } finally {
      await Promise.all([system.stop(), drainThread.terminate(), eachThread.terminate()]);
    }
    return rows;
  },
};

const fmtM = (v: number) => `${(v / 1e6).toFixed(2)} M/s`;
