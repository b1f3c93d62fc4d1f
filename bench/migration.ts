/**
 * Migration (issue 5): the latency of moving one server between thread nodes, the throughput of
 * a bulk move of 10^4 servers, and a message stream's delivery while its receiver moves back and
 * forth. Baselines in the same run: the cold alternative (read the state, kill the process, start
 * a new one on the other node with that state) for the moves, and the same stream with no moves.
 */
import { System, type Pid } from '../src/index.js';
import { measure, now, row, type Benchmark, type ResultRow } from './lib.js';

export const COUNTER = `
  export const vsn = 1;
  export function init(state: any) { return typeof state === 'object' && state ? state : { seen: {}, total: 0, bad: 0 }; }
  export function handleCall(req: string, _f: unknown, s: any) { return { reply: req === 'state' ? s : s.total, state: s }; }
  export function handleCast(m: { from: string; seq: number }, s: any) {
    const last = s.seen[m.from] ?? -1;
    if (m.seq !== last + 1) s.bad++;
    s.seen[m.from] = m.seq;
    s.total++;
    return { noreply: s };
  }
`;

export const SENDER = `
  import { server, receive, after } from 'subnode';
  export function blast(to: string, me: string, i: number, n: number, reply: string): unknown {
    const k = Math.min(100, n - i);
    for (let j = 0; j < k; j++) server.cast(to, { from: me, seq: i + j });
    if (i + k >= n) { server.cast(reply, { done: me }); return 'done'; }
    return receive(after(0, () => blast(to, me, i + k, n, reply)));
  }
`;

async function cold(system: System, pids: Pid[], from: string, to: string): Promise<Pid[]> {
  const states = await Promise.all(pids.map((p) => system.node(from).getState(p)));
  await Promise.all(pids.map((p) => system.node(from).exit(p, 'kill')));
  return Promise.all(states.map((s) => system.node(to).startServer('counter', [s])));
}

export const migrationBench: Benchmark = {
  name: 'migrate',
  description: 'migration latency, bulk moves, and a message stream during moves',
  async run({ reps, scale, log }) {
    const system = await System.start({ nodes: ['a', 'b'].map((name) => ({ name, modules: { counter: COUNTER, sender: SENDER } })) });
    const rows: ResultRow[] = [];
    try {
      // 1. One server, a -> b -> a ..., against cold moves.
      const hot: number[] = [];
      const coldMs: number[] = [];
      const pid = await system.node('a').startServer('counter', [null]);
      let coldPid = await system.node('a').startServer('counter', [null]);
      let at = 'a';
      for (let r = -1; r < reps * 4; r++) {
        const to = at === 'a' ? 'b' : 'a';
        let t = now();
        await system.migrate(pid, to);
        const h = now() - t;
        t = now();
        [coldPid] = await cold(system, [coldPid], at, to);
        const c = now() - t;
        at = to;
        if (r >= 0) {
          hot.push(h);
          coldMs.push(c);
        }
      }
      rows.push(
        row(
          'migrate one server between thread nodes (latency)',
          measure('system.migrate', hot, 'ms'),
          measure('cold move: getState, kill, startServer there', coldMs, 'ms'),
        ),
      );
      log(`  one move: ${rows[0]!.value} ms (cold ${rows[0]!.baseline.value} ms)`);

      // 2. Bulk: 10^4 servers from a to b and back.
      const n = Math.max(100, Math.round(10_000 * scale));
      const bulk: number[] = [];
      const bulkCold: number[] = [];
      for (let r = -1; r < Math.max(1, Math.floor(reps / 2)); r++) {
        const pids: Pid[] = [];
        for (let i = 0; i < n; i++) pids.push(await system.node('a').startServer('counter', [null]));
        let t = now();
        const moved = await system.migrateAll({ from: 'a', to: 'b', pids });
        const ms = now() - t;
        if (moved.some((m) => !m.ok)) throw new Error('bulk migration failed for some processes');
        t = now();
        const back = await cold(system, pids, 'b', 'a');
        const cms = now() - t;
        await Promise.all(back.map((p) => system.node('a').exit(p, 'kill')));
        if (r >= 0) {
          bulk.push(n / (ms / 1000));
          bulkCold.push(n / (cms / 1000));
        }
      }
      rows.push(
        row(`bulk move of ${n.toLocaleString('en')} servers (migrateAll)`, measure('migrateAll', bulk, 'proc/s'), measure('cold moves', bulkCold, 'proc/s')),
      );
      log(`  bulk: ${Math.round(rows[1]!.value)} proc/s (cold ${Math.round(rows[1]!.baseline.value)})`);

      // 3. A stream from two nodes (2 x 50,000 casts) while the receiver moves every 20 ms.
      const perSender = Math.max(1000, Math.round(50_000 * scale));
      const { during, still, lost, bad, moves } = await streamDuringMoves(system, ['a', 'b'], perSender, reps);
      const streamRow = row(
        `message stream while the receiver migrates (lost ${lost}, out of order ${bad}, ${moves} moves)`,
        measure('delivered during moves', during, 'msg/s'),
        measure('same stream, no moves', still, 'msg/s'),
        { text: 'lost = 0 and order kept', check: () => lost === 0 && bad === 0 },
      );
      rows.push(streamRow);
      log(
        `  stream: ${Math.round(streamRow.value)} msg/s during moves vs ${Math.round(streamRow.baseline.value)} still; lost ${lost}, out of order ${bad}, moves ${moves}`,
      );
      void pid;
    } finally {
      await system.stop();
    }
    return rows;
  },
};

/** What `streamDuringMoves` measured: rates with and without moves, and what went wrong in all rounds. */
export interface StreamResult {
  during: number[];
  still: number[];
  lost: number;
  bad: number;
  moves: number;
  /** How long each move took (ms). */
  moveMs: number[];
}

/**
 * A stream from a sender on each of two nodes (`perSender` numbered casts each) to a counter
 * server started on the first, while the system moves it between the two every 20 ms — and the
 * same stream without moves — `reps` times after a warm-up round. The counter checks each
 * sender's order; what has not arrived 60 s after the senders finished counts as lost.
 */
export async function streamDuringMoves(system: System, [x, y]: [string, string], perSender: number, reps: number): Promise<StreamResult> {
  const inbox = system.inbox();
  const out: StreamResult = { during: [], still: [], lost: 0, bad: 0, moves: 0, moveMs: [] };
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const stream = async (moving: boolean): Promise<{ rate: number; lost: number; bad: number; moves: number }> => {
    const target = await system.node(x).startServer('counter', [null]);
    const t = now();
    await system.node(x).spawn('sender', 'blast', [target, 'sa', 0, perSender, inbox.pid]);
    await system.node(y).spawn('sender', 'blast', [target, 'sb', 0, perSender, inbox.pid]);
    let moves = 0;
    let doneCount = 0;
    const done = (async () => {
      while (doneCount < 2) {
        await inbox.receive({ $cast: { done: (d: unknown) => typeof d === 'string' } }, 120_000);
        doneCount++;
      }
    })();
    while (moving && doneCount < 2) {
      await pause(20);
      const started = now();
      await system.migrate(target, system.locate(target).node === x ? y : x);
      out.moveMs.push(now() - started);
      moves++;
    }
    await done;
    while ((await system.call<number>(target, 'total', 60_000)) < 2 * perSender && now() - t < 60_000) await pause(5);
    const ms = now() - t;
    const state = await system.call<{ total: number; bad: number }>(target, 'state', 60_000);
    await system.node(system.locate(target).node).exit(target, 'kill');
    return { rate: state.total / (ms / 1000), lost: 2 * perSender - state.total, bad: state.bad, moves };
  };
  for (let r = -1; r < reps; r++) {
    const m = await stream(true);
    const s = await stream(false);
    out.lost += m.lost + s.lost;
    out.bad += m.bad + s.bad;
    out.moves += m.moves;
    if (r >= 0) {
      out.during.push(m.rate);
      out.still.push(s.rate);
    }
  }
  inbox.close();
  return out;
}
