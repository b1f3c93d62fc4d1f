/**
 * 8. Across hosts (issue #17): two hosts of a cluster (two Systems, each with its own NATS
 * connection, in this process) on a nats-server started for the run (`nats-server` on PATH, or
 * NATS_SERVER). Throughput: a process on host A's node sends N messages to a process on host B's
 * node; round trip: `system.call` from host A to a server on host B's node. Nodes read and send
 * their batches on NATS connections of their own (src/node/nats-endpoint.ts).
 *
 * Baselines, same run, same server: raw NATS publish of the same envelopes in v8-serialized
 * arrays of 256 from one connection to a subscriber on another; raw NATS request/reply (an echo).
 * Each pair runs in alternating order, the round trips each after a collection.
 */
import { deserialize, serialize } from 'node:v8';
import { connect } from '@nats-io/transport-node';
import { System } from '../src/index.js';
import { CROSS_MODULE } from './cross-node.js';
import { natsServer } from './nats-server.js';
import { atLeastRatio, batchedSum, gc, measure, now, row, within, type Benchmark, type ResultRow } from './lib.js';

const ECHO = `
  export function init() { return 0; }
  export function handleCall(req: unknown, _from: unknown, s: number) { return { reply: req, state: s }; }
  export function handleCast(_m: unknown, s: number) { return { noreply: s }; }
`;

export const clusterBench: Benchmark = {
  name: 'cluster',
  description: 'across hosts on NATS: throughput vs raw NATS batched, call round trip vs raw request/reply',
  async run({ reps, scale, log }): Promise<ResultRow[]> {
    const n = Math.max(1_000, Math.round(100_000 * scale));
    const calls = Math.max(100, Math.round(2_000 * scale));
    const server = await natsServer();
    const cluster = (name: string) => ({ servers: server.url, name, cluster: 'bench' });
    const a = await System.start({ cluster: cluster('A'), nodes: [{ name: 'a', modules: { cross: CROSS_MODULE } }] });
    const b = await System.start({ cluster: cluster('B'), nodes: [{ name: 'b', modules: { cross: CROSS_MODULE, echo: ECHO } }] });
    const pub = await connect({ servers: server.url });
    const sub = await connect({ servers: server.url });
    try {
      await within(
        (async () => {
          while (!a.nodes().some((x) => x.name === 'b')) await new Promise((r) => setTimeout(r, 20));
        })(),
        10_000,
        'host B seen by A',
      );
      const inbox = a.inbox();
      const echo = await a.node('b').startServer('echo', []);
      const subnodeRun = async (): Promise<number> => {
        const sink = await a.node('b').spawn('cross', 'sink', [n, inbox.pid, 0]);
        const source = await a.node('a').spawn('cross', 'source', []);
        const t0 = now();
        a.send(source, { to: sink, n, batch: 1024 });
        const { sum } = await inbox.receive<{ sum: number }>(() => true, 120_000);
        const ms = now() - t0;
        if (sum !== batchedSum(n, 1024)) throw new Error(`cluster: sum ${sum}, expected ${batchedSum(n, 1024)}`);
        return ms;
      };
      const rawRun = async (): Promise<number> => {
        let got = 0;
        const done = new Promise<void>((resolve) => {
          const s = sub.subscribe('bench.raw', {
            callback: (_e, m) => {
              got += (deserialize(m.data) as unknown[]).length;
              if (got >= n) {
                s.unsubscribe();
                resolve();
              }
            },
          });
        });
        await sub.flush();
        const t0 = now();
        for (let i = 0; i < n; i += 256) {
          const batch = [];
          for (let j = i; j < Math.min(n, i + 256); j++) batch.push([0, '<b.1>', { n: j }]);
          pub.publish('bench.raw', serialize(batch));
          if ((i / 256) % 64 === 63) await new Promise((r) => setImmediate(r));
        }
        await done;
        return now() - t0;
      };
      const responder = sub.subscribe('bench.echo', {
        callback: (_e, m) => {
          m.respond(m.data);
        },
      });
      await sub.flush();
      const callRun = async (): Promise<number> => {
        const t0 = now();
        for (let i = 0; i < calls; i++) await a.call(echo, i);
        return (now() - t0) / calls;
      };
      const rawCallRun = async (): Promise<number> => {
        const t0 = now();
        for (let i = 0; i < calls; i++) await pub.request('bench.echo', serialize(i), { timeout: 5_000 });
        return (now() - t0) / calls;
      };
      const samples = { sub: [] as number[], raw: [] as number[], call: [] as number[], rawCall: [] as number[] };
      for (let r = -1; r < reps; r++) {
        gc();
        let s: number;
        let rw: number;
        if (r % 2 === 0) {
          s = await subnodeRun();
          rw = await rawRun();
        } else {
          rw = await rawRun();
          s = await subnodeRun();
        }
        // The round trips after a collection, in alternating order: the garbage of the throughput
        // runs (and of each other) falls on neither one more than the other.
        gc();
        let c: number;
        let rc: number;
        if (r % 2 === 0) {
          c = await callRun();
          gc();
          rc = await rawCallRun();
        } else {
          rc = await rawCallRun();
          gc();
          c = await callRun();
        }
        if (r < 0) continue;
        samples.sub.push(n / (s / 1000));
        samples.raw.push(n / (rw / 1000));
        samples.call.push(c * 1000);
        samples.rawCall.push(rc * 1000);
      }
      responder.unsubscribe();
      inbox.close();
      const thr = measure('subnode host A -> host B', samples.sub, 'msg/s');
      const rawThr = measure('raw NATS, v8 arrays of 256', samples.raw, 'msg/s');
      const rt = measure('system.call A -> server on B', samples.call, 'µs');
      const rawRt = measure('raw NATS request/reply', samples.rawCall, 'µs');
      log(
        `  cluster: n=${n}, subnode ${(thr.value / 1e3).toFixed(0)} k/s vs raw ${(rawThr.value / 1e3).toFixed(0)} k/s; call ${rt.value.toFixed(0)} µs vs raw ${rawRt.value.toFixed(0)} µs`,
      );
      return [
        row(
          'cross-host throughput (NATS)',
          thr,
          rawThr,
          atLeastRatio(0.7, 'raw NATS batched'),
          "node a's thread serializes, frames and publishes its batches on its own NATS connection, node b's reads and decodes them on its own (no main thread on the way, where the raw baseline uses one thread for both ends): the sending node's thread is the busiest (kernel send + v8 serialize + framing, ~1-1.6 µs/msg); on a loaded machine the pipeline loses most",
        ),
        row(
          'cross-host call round trip (NATS)',
          rt,
          rawRt,
          { text: '<= 1.5x baseline', check: (_v, ratio) => ratio <= 1.5 },
          "node b reads the call and publishes the reply on its own NATS connection (no main thread of host B on the way, one NATS message each way), and a call and its reply cross as JSON text (src/net/envelopes.ts; a v8 serializer per batch cost 3-5 µs to write and 1.5-2.5 to read, per side and hop). Measured per step (2,000 calls, a timestamp on each thread): each NATS hop as long as raw's (p50 ~105 µs), node b from receipt to publish p50 ~15 µs, host A ~20-30 µs; the tails (p90 60-100 µs on each side) are the shared 2-core machine's: a fixed 24 µs loop timed at the same point has the same p90 (66-81 µs). Runs on 2026-12-02, the two round trips each after a collection and in alternating order: 1.17-1.39x (before, the call run always came right after the throughput runs and took their garbage: 1.21-1.76x)",
        ),
      ];
    } finally {
      await Promise.allSettled([a.stop(), b.stop(), pub.close(), sub.close()]);
      await server.stop();
    }
  },
};
