/**
 * 2. Cross-node throughput: a process on thread node `a` sends N messages to a process on thread
 * node `b`. They travel over the direct port between the two threads, batched by the sending
 * kernel once per scheduler slice. Timed on the main thread from the `go` message to the
 * receiver's report (two extra hops of ~20 µs against hundreds of ms).
 *
 * Baselines: raw `postMessage` of the same envelopes over a MessageChannel between two worker
 * threads (bench/raw-port-worker.ts), one envelope per post and arrays of 256, timed the same way.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { System } from '../src/index.js';
import { atLeastRatio, batchedSum, gc, measure, now, row, within, type Benchmark, type ResultRow } from './lib.js';

export const CROSS_MODULE = `
  import { receive, send, next } from 'subnode';

  /** Counts n messages, then tells replyTo. */
  export function sink(left: number, replyTo: string, sum: number): unknown {
    return receive((m: { n: number }) => {
      if (left === 1) { send(replyTo, { sum: sum + m.n }); return 'done'; }
      return sink(left - 1, replyTo, sum + m.n);
    });
  }

  /** Waits for { to, n, batch }, then sends n messages to \`to\`, yielding every \`batch\`. */
  export function source(): unknown {
    return receive((go: { to: string; n: number; batch: number }) => blast(go.to, go.n, go.batch));
  }

  export function blast(to: string, left: number, batch: number): unknown {
    const k = left < batch ? left : batch;
    for (let i = 0; i < k; i++) send(to, { n: i });
    return left > k ? next(blast, to, left - k, batch) : 'done';
  }
`;

interface RawPair {
  sender: Worker;
  receiver: Worker;
  run(n: number, batch: number): Promise<number>;
  close(): Promise<void>;
}

async function rawPair(): Promise<RawPair> {
  const { port1, port2 } = new MessageChannel();
  const url = new URL('./raw-port-worker.js', import.meta.url);
  const sender = new Worker(url, { workerData: { role: 'sender', port: port1 }, transferList: [port1] });
  const receiver = new Worker(url, { workerData: { role: 'receiver', port: port2 }, transferList: [port2] });
  await Promise.all([once(sender, 'message'), once(receiver, 'message')]);
  const next = (worker: Worker, type: string) =>
    new Promise<{ t: string; sum?: number }>((resolve, reject) => {
      const onMessage = (m: { t: string }) => {
        if (m.t === type) {
          cleanup();
          resolve(m);
        }
      };
      const onError = (e: Error) => {
        cleanup();
        reject(e);
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
  return {
    sender,
    receiver,
    async run(n, batch) {
      const armed = next(receiver, 'armed');
      receiver.postMessage({ n, batch });
      await armed;
      const done = next(receiver, 'done');
      const t0 = now();
      sender.postMessage({ n, batch });
      const reply = await within(done, 60_000, 'raw postMessage run');
      const ms = now() - t0;
      if (reply.sum !== (n * (n - 1)) / 2) throw new Error(`raw baseline lost messages (sum ${reply.sum})`);
      return ms;
    },
    async close() {
      await Promise.all([sender.terminate(), receiver.terminate()]);
    },
  };
}

export const crossNode: Benchmark = {
  name: 'cross',
  description: 'cross-node throughput vs raw postMessage between two workers',
  async run({ reps, scale, log }) {
    const n = Math.max(1024, Math.round(500_000 * scale));
    const system = await System.start({ nodes: [{ name: 'a' }, { name: 'b' }] });
    const raw = await rawPair();
    const rows: ResultRow[] = [];
    try {
      await Promise.all([system.node('a').load('cross', CROSS_MODULE), system.node('b').load('cross', CROSS_MODULE)]);
      const inbox = system.inbox();
      const subnodeRun = async (batch: number): Promise<number> => {
        const to = await system.node('b').spawn('cross', 'sink', [n, inbox.pid, 0]);
        const from = await system.node('a').spawn('cross', 'source', []);
        const t0 = now();
        system.send(from, { to, n, batch });
        const reply = await inbox.receive<{ sum: number }>(undefined, 60_000);
        const ms = now() - t0;
        if (reply.sum !== batchedSum(n, batch)) throw new Error(`subnode lost messages (sum ${reply.sum})`);
        return ms;
      };

      const samples = { unbatched: [] as number[], batched: [] as number[], s1024: [] as number[], s1: [] as number[] };
      const jobs: [keyof typeof samples, () => Promise<number>][] = [
        ['unbatched', () => raw.run(n, 1)],
        ['batched', () => raw.run(n, 256)],
        ['s1024', () => subnodeRun(1024)],
        ['s1', () => subnodeRun(1)],
      ];
      for (let r = -1; r < reps; r++) {
        const order = r % 2 === 0 ? jobs : [...jobs].reverse();
        for (const [key, job] of order) {
          gc();
          const ms = await job();
          if (r >= 0) samples[key].push(n / (ms / 1000));
        }
      }
      inbox.close();
      const unbatched = measure('raw postMessage, 1 msg per post', samples.unbatched, 'msg/s');
      const batched = measure('raw postMessage, arrays of 256', samples.batched, 'msg/s');
      const s1024 = measure('subnode a->b', samples.s1024, 'msg/s');
      const s1 = measure('subnode a->b', samples.s1, 'msg/s');
      rows.push(row('cross-node a->b, sender yields every 1024', s1024, batched, atLeastRatio(0.5, 'raw batched')));
      rows.push(row('cross-node a->b, sender yields every msg', s1, batched, atLeastRatio(0.5, 'raw batched')));
      rows.push(row('cross-node a->b, sender yields every 1024 (vs unbatched)', s1024, unbatched));
      log(`  cross: n=${n}, raw unbatched ${fmtM(unbatched.value)}, raw batched ${fmtM(batched.value)}, subnode ${fmtM(s1024.value)} / ${fmtM(s1.value)}`);
    } finally {
      await Promise.all([system.stop(), raw.close()]);
    }
    return rows;
  },
};

const fmtM = (v: number) => `${(v / 1e6).toFixed(2)} M/s`;
