/**
 * Flow control between thread nodes, end to end: senders on one node flooding a slow receiver on
 * another are held while the receiver's window is full (the sending node asked says so), every
 * message arrives once and in order per sender, two nodes flooding each other both finish, and a
 * receiver that goes down releases its senders.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, type Pid } from '../src/index.js';
import { until } from './helpers/wait.js';

const flow = `
  import { next, receive, send } from 'subnode';

  /** Sends seq i..n-1 to \`to\`, 100 a step, then { done: me } to \`reply\`. */
  export function blast(to: string, me: string, i: number, n: number, reply: string): unknown {
    const k = Math.min(100, n - i);
    for (let j = 0; j < k; j++) send(to, { from: me, seq: i + j });
    if (i + k >= n) return send(reply, { done: me });
    return next(blast, to, me, i + k, n, reply);
  }

  /**
   * Takes \`expected\` messages, each after \`spin\` rounds of work, checking each sender's order; then reports.
   * With \`stallMs\`, the first message keeps the node's thread busy that long: nothing is taken in
   * from its ports meanwhile, so a sender's window surely fills (and stays full a while).
   */
  export function collect(expected: number, spin: number, report: string, stallMs = 0): unknown {
    return loop(expected, spin, report, 0, 0, {}, stallMs);
  }

  function loop(expected: number, spin: number, report: string, total: number, bad: number, last: Record<string, number>, stallMs = 0): unknown {
    return receive((m: { from: string; seq: number }) => {
      if (total === 0 && stallMs > 0) for (const end = Date.now() + stallMs; Date.now() < end; );
      let x = 0;
      for (let i = 0; i < spin; i++) x += i;
      if (m.seq !== (last[m.from] ?? -1) + 1) bad++;
      last[m.from] = m.seq;
      if (total + 1 === expected) return send(report, { total: total + 1, outOfOrder: bad, x: x >= 0 });
      return loop(expected, spin, report, total + 1, bad, last);
    });
  }
`;

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const start = async (kind: 'thread' | 'isolate' = 'thread'): Promise<System> =>
  (system = await System.start({ nodes: ['a', 'b'].map((name) => ({ name, kind, modules: { flow } })) }));

/** Waits until `node` holds a process for sending to `peer` (its channel to it is full). */
const held = (s: System, node: string, peer: string): Promise<number> =>
  until(`${node} to hold a sender for ${peer}`, async () => (await s.node(node).holding())[peer] ?? 0);

describe('flow control between nodes', () => {
  it('holds the senders while the receiver is behind, and delivers every message once, in order per sender', async () => {
    const s = await start();
    const inbox = s.inbox();
    const n = 50_000;
    const collector = await s.node('a').spawn('flow', 'collect', [2 * n, 2000, inbox.pid]);
    await s.node('b').spawn('flow', 'blast', [collector, 'x', 0, n, inbox.pid]);
    await s.node('b').spawn('flow', 'blast', [collector, 'y', 0, n, inbox.pid]);
    expect(await held(s, 'b', 'a')).toBeGreaterThan(0);
    const got: unknown[] = [];
    while (got.length < 3) got.push(await inbox.receive(undefined, 60_000));
    expect(got).toContainEqual({ total: 2 * n, outOfOrder: 0, x: true });
    expect(got).toContainEqual({ done: 'x' });
    expect(got).toContainEqual({ done: 'y' });
    // Its last sends done, no process is held any more.
    expect(await s.node('b').holding()).toEqual({});
  });

  it('two nodes flooding each other are both held, and both finish', async () => {
    const s = await start();
    const inbox = s.inbox();
    // As many as the one-way test, whose sending node reliably holds: each side must be seen held.
    const n = 50_000;
    const onA = await s.node('a').spawn('flow', 'collect', [2 * n, 2000, inbox.pid]);
    const onB = await s.node('b').spawn('flow', 'collect', [2 * n, 2000, inbox.pid]);
    for (const [node, to] of [
      ['a', onB],
      ['b', onA],
    ] as [string, Pid][]) {
      await s.node(node).spawn('flow', 'blast', [to, `${node}1`, 0, n, inbox.pid]);
      await s.node(node).spawn('flow', 'blast', [to, `${node}2`, 0, n, inbox.pid]);
    }
    expect(await held(s, 'a', 'b')).toBeGreaterThan(0);
    expect(await held(s, 'b', 'a')).toBeGreaterThan(0);
    const got: unknown[] = [];
    while (got.length < 6) got.push(await inbox.receive(undefined, 60_000));
    expect(got.filter((m) => (m as { total?: number }).total === 2 * n && (m as { outOfOrder: number }).outOfOrder === 0)).toHaveLength(2);
    expect(got.filter((m) => 'done' in (m as object))).toHaveLength(4);
  });

  it('isolate nodes hold their senders too (the kernel inside learns of the full port through the bridge)', async () => {
    const s = await start('isolate');
    const inbox = s.inbox();
    const n = 100_000;
    // The isolate takes batches in as fast as the sender makes them: the window fills, if at all, for
    // a few ms, and polling `holding` may never see it. The collector stalls its thread at the first
    // message instead, long enough for the sender to fill the window and be seen held.
    const collector = await s.node('a').spawn('flow', 'collect', [n, 2000, inbox.pid, 500]);
    await s.node('b').spawn('flow', 'blast', [collector, 'x', 0, n, inbox.pid]);
    expect(await held(s, 'b', 'a')).toBe(1);
    const got: unknown[] = [];
    while (got.length < 2) got.push(await inbox.receive(undefined, 60_000));
    expect(got).toContainEqual({ total: n, outOfOrder: 0, x: true });
    expect(got).toContainEqual({ done: 'x' });
  });

  it('a node holding senders still answers its host, and stops cleanly', async () => {
    const s = await start();
    const inbox = s.inbox();
    const collector = await s.node('a').spawn('flow', 'collect', [1_000_000, 100_000, inbox.pid]);
    await s.node('b').spawn('flow', 'blast', [collector, 'x', 0, 1_000_000, inbox.pid]);
    await held(s, 'b', 'a');
    expect((await s.node('b').modules()).map((m) => m.name)).toContain('flow');
    await s.node('b').stop();
    expect(s.node('b').summary().status).toBe('stopped');
  });

  it('a receiver that goes down releases its senders', async () => {
    const s = await start();
    const inbox = s.inbox();
    const n = 1_000_000;
    // A receiver so slow that the senders would take minutes: they finish only if its going down releases them.
    const collector = await s.node('a').spawn('flow', 'collect', [2 * n, 100_000, inbox.pid]);
    await s.node('b').spawn('flow', 'blast', [collector, 'x', 0, n, inbox.pid]);
    await held(s, 'b', 'a');
    await s.node('a').stop();
    expect(await inbox.receive(undefined, 60_000)).toEqual({ done: 'x' });
    expect(await s.node('b').holding()).toEqual({});
  });
});
