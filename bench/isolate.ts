/**
 * Isolate nodes beside thread nodes, in one run (issue 4): start time, memory per node, messages
 * inside a node, and messages into a node from a thread node. The baseline of every row is the
 * same figure for a thread node.
 */
import { System, type NodeKind } from '../src/index.js';
import { CROSS_MODULE } from './cross-node.js';
import { batchedSum, gc, measure, now, row, tick, within, type Benchmark, type ResultRow } from './lib.js';

/** Timed inside the node with Date.now (an isolate has no `performance`). */
const PINGPONG = `
  import { receive, send, spawn, self, next } from 'subnode';
  export function run(n: number, batch: number, replyTo: string): unknown {
    const t0 = Date.now();
    const rx = spawn(receiver, n, self(), 0);
    spawn(sender, rx, n, batch);
    return receive((sum: number) => { send(replyTo, { ms: Date.now() - t0, sum }); return 'done'; });
  }
  export function receiver(left: number, parent: string, sum: number): unknown {
    return receive((m: { n: number }) => left === 1 ? (send(parent, sum + m.n), 'done') : receiver(left - 1, parent, sum + m.n));
  }
  export function sender(to: string, left: number, batch: number): unknown {
    const k = left < batch ? left : batch;
    for (let i = 0; i < k; i++) send(to, { n: i });
    return left > k ? next(sender, to, left - k, batch) : 'done';
  }
`;

const KINDS: NodeKind[] = ['thread', 'isolate'];

async function startRows(reps: number): Promise<ResultRow[]> {
  const times: Record<NodeKind, number[]> = { thread: [], isolate: [] };
  const rss: Record<NodeKind, number[]> = { thread: [], isolate: [] };
  for (let r = -1; r < reps; r++) {
    for (const kind of r % 2 ? KINDS : [...KINDS].reverse()) {
      gc();
      const t = now();
      const one = await System.start({ nodes: [{ name: 'n', kind }] });
      const ms = now() - t;
      await one.stop();
      // Memory: four idle nodes of this kind, RSS growth per node.
      gc();
      await tick();
      const before = process.memoryUsage().rss;
      const four = await System.start({ nodes: [0, 1, 2, 3].map((i) => ({ name: `m${i}`, kind })) });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const per = (process.memoryUsage().rss - before) / 4;
      await four.stop();
      if (r >= 0) {
        times[kind].push(ms);
        rss[kind].push(per / 2 ** 20);
      }
    }
  }
  return [
    row('node start (System.start until ready), isolate node', measure('isolate node', times.isolate, 'ms'), measure('thread node', times.thread, 'ms')),
    row('memory per idle node (process RSS growth), isolate node', measure('isolate node', rss.isolate, 'MiB'), measure('thread node', rss.thread, 'MiB')),
  ];
}

async function messageRows(reps: number, scale: number): Promise<ResultRow[]> {
  const n = Math.max(1000, Math.round(200_000 * scale));
  const batch = 256;
  const system = await System.start({ nodes: [{ name: 'src' }, ...KINDS.map((kind) => ({ name: kind, kind }))] });
  try {
    await Promise.all(['src', ...KINDS].map((name) => system.node(name).load('cross', CROSS_MODULE)));
    await Promise.all(KINDS.map((name) => system.node(name).load('pp', PINGPONG)));
    const inbox = system.inbox();
    const intra: Record<NodeKind, number[]> = { thread: [], isolate: [] };
    const cross: Record<NodeKind, number[]> = { thread: [], isolate: [] };
    const out: Record<NodeKind, number[]> = { thread: [], isolate: [] };
    for (let r = -1; r < reps; r++) {
      for (const kind of r % 2 ? KINDS : [...KINDS].reverse()) {
        gc();
        await system.node(kind).spawn('pp', 'run', [n, batch, inbox.pid]);
        const inside = await within(inbox.receive<{ ms: number; sum: number }>(undefined, 120_000), 120_000, 'intra');
        if (inside.sum !== batchedSum(n, batch)) throw new Error(`${kind}: intra-node run lost messages`);
        const sink = await system.node(kind).spawn('cross', 'sink', [n, inbox.pid, 0]);
        const source = await system.node('src').spawn('cross', 'source');
        const t = now();
        system.send(source, { to: sink, n, batch });
        const done = await within(inbox.receive<{ sum: number }>(undefined, 120_000), 120_000, 'cross');
        const ms = now() - t;
        if (done.sum !== batchedSum(n, batch)) throw new Error(`${kind}: cross-node run lost messages`);
        // and out: the same run from a process of this node to one on the thread node 'src'
        const outSink = await system.node('src').spawn('cross', 'sink', [n, inbox.pid, 0]);
        const outSource = await system.node(kind).spawn('cross', 'source');
        const t2 = now();
        system.send(outSource, { to: outSink, n, batch });
        const outDone = await within(inbox.receive<{ sum: number }>(undefined, 120_000), 120_000, 'out');
        const outMs = now() - t2;
        if (outDone.sum !== batchedSum(n, batch)) throw new Error(`${kind}: outbound run lost messages`);
        if (r >= 0) {
          intra[kind].push(n / (Math.max(inside.ms, 1) / 1000));
          cross[kind].push(n / (ms / 1000));
          out[kind].push(n / (outMs / 1000));
        }
      }
    }
    inbox.close();
    return [
      row('messages inside a node, isolate node', measure('isolate node', intra.isolate, 'msg/s'), measure('thread node', intra.thread, 'msg/s')),
      row(
        'messages from a thread node into an isolate node',
        measure('into isolate node', cross.isolate, 'msg/s'),
        measure('into thread node', cross.thread, 'msg/s'),
      ),
      row(
        'messages from an isolate node out to a thread node',
        measure('out of isolate node', out.isolate, 'msg/s'),
        measure('out of thread node', out.thread, 'msg/s'),
      ),
    ];
  } finally {
    await system.stop();
  }
}

export const isolateBench: Benchmark = {
  name: 'isolate',
  description: 'isolate nodes beside thread nodes: start, memory, messaging',
  async run({ reps, scale, log }) {
    const rows = [...(await startRows(reps)), ...(await messageRows(reps, scale))];
    for (const r of rows) log(`  ${r.name}: ${r.value} ${r.unit} vs ${r.baseline.value} ${r.baseline.unit}`);
    return rows;
  },
};
