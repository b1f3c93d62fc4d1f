/**
 * The request/reply fast paths keep their semantics: a process's monitor table (flat while small,
 * a Map past 8 entries), the timer heap with real removal and reusable entries, receive timeouts
 * armed at the end of a slice (late by at most a slice, never early), calls that leave no monitor
 * behind on either side, and a host call's monitor ended on the node by the reply.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RefTable } from '../src/kernel/ref-table.js';
import { TimerHeap, timerEntry, type TimerEntry } from '../src/kernel/timers.js';
import type { Pid } from '../src/kernel/pid.js';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { HOST, sent, waitFor } from './helpers/kernel-tools.js';
import { System } from '../src/index.js';

const pid = (n: number) => `<a.${n}>` as Pid;

describe('RefTable', () => {
  it('keeps insertion order, replaces, deletes from the middle, and is the same past 8 entries (a Map)', () => {
    for (const count of [3, 8, 9, 40]) {
      const t = new RefTable();
      const model = new Map<string, Pid>();
      for (let i = 0; i < count; i++) {
        t.set(`r${i}`, pid(i));
        model.set(`r${i}`, pid(i));
      }
      t.set('r1', pid(100));
      model.set('r1', pid(100));
      for (const ref of ['r0', `r${count - 1}`, 'r2', 'missing']) expect(t.delete(ref)).toBe(model.delete(ref));
      expect(t.size).toBe(model.size);
      expect([...t]).toEqual([...model]);
      expect([...t.values()]).toEqual([...model.values()]);
      expect(t.get('r1')).toBe(pid(100));
      expect(t.has('r0')).toBe(false);
    }
  });

  it('lets the entry being visited be deleted (an ending forgets each monitor once its signal is queued)', () => {
    for (const count of [5, 20]) {
      const t = RefTable.of(Array.from({ length: count }, (_, i) => [`r${i}`, pid(i)] as [string, Pid]));
      const seen: string[] = [];
      for (const [ref] of t) {
        seen.push(ref);
        t.delete(ref);
      }
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => `r${i}`));
      expect(t.size).toBe(0);
    }
  });
});

describe('TimerHeap', () => {
  it('gives due entries earliest first after random adds, moves and removals, and entries can be armed again', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const heap = new TimerHeap();
    const entries: TimerEntry[] = Array.from({ length: 200 }, (_, i) => timerEntry(() => {}, i));
    const armed = new Map<TimerEntry, number>();
    for (let step = 0; step < 5_000; step++) {
      const e = entries[Math.floor(random() * entries.length)]!;
      if (random() < 0.4) {
        heap.remove(e);
        armed.delete(e);
      } else {
        const at = Math.floor(random() * 1_000);
        heap.add(e, at);
        armed.set(e, at);
      }
      expect(heap.size).toBe(armed.size);
    }
    const order: number[] = [];
    for (let e = heap.popDue(500); e; e = heap.popDue(500)) {
      expect(e.index).toBe(-1);
      order.push(e.deadline);
    }
    const expected = [...armed.values()].filter((d) => d <= 500).sort((a, b) => a - b);
    expect(order).toEqual(expected);
    expect(heap.size).toBe(armed.size - expected.length);
  });
});

const SERVER = `
  import { server, send, receive, after, self } from 'subnode';
  export function init() { return 0; }
  export function handleCall(req: any, _from: unknown, n: number) {
    if (req === 'crash') throw new Error('crashed');
    if (req === 'hang') return { noreply: n };
    return { reply: n + 1, state: n + 1 };
  }
  export function handleCast(_m: unknown, n: number) { return { noreply: n }; }

  /** k sequential calls, then reports to the host. */
  export function caller(srv: string, k: number, tag: string): unknown {
    if (k === 0) { send('${HOST}', { done: tag }); return receive(() => 'done'); }
    return server.call(srv, 'inc', () => caller(srv, k - 1, tag));
  }
  /** One call that is expected to fail; reports how. */
  export function failing(srv: string, req: string, timeout: number): unknown {
    return server.call(srv, req, (r: unknown) => { send('${HOST}', { unexpected: r }); return 'done'; }, { timeout, onTimeout: () => { send('${HOST}', { timedOut: self() }); return 'done'; } });
  }
  /** Waits in a receive with a timeout from when it started; reports how long it really waited. */
  export function waiter(ms: number): unknown {
    const t0 = performance.now();
    return receive(() => 'done', after(ms, () => { send('${HOST}', { waited: performance.now() - t0 }); return 'done'; }));
  }
`;

describe('calls on the fast path', () => {
  let k: LocalKernel;
  afterEach(() => k?.kernel.orderlyStop(1_000));

  it('leave no monitor behind on either side, with one caller and with many at once (past the flat table)', async () => {
    k = localKernel();
    k.load('s', SERVER);
    const srv = k.kernel.startBehaviour('server', 's', []);
    const callers = Array.from({ length: 20 }, (_, i) => k.kernel.spawn('s', 'caller', [srv, 50, `c${i}`]));
    await waitFor(() => sent(k).length === 20, 'every caller done');
    expect(k.kernel.getState(srv)).toBe(20 * 50);
    expect(k.kernel.processInfo(srv)!.monitoredBy).toEqual([]);
    for (const c of callers) expect(k.kernel.processInfo(c)!.monitors).toEqual([]);
  });

  it('fail every waiting caller when the server dies, and time out with the onTimeout step', async () => {
    k = localKernel();
    k.load('s', SERVER);
    const srv = k.kernel.startBehaviour('server', 's', []);
    const hung = Array.from({ length: 12 }, () => k.kernel.spawn('s', 'failing', [srv, 'hang', Infinity]));
    await waitFor(() => k.kernel.processInfo(srv)!.monitoredBy.length === 12, 'twelve callers waiting');
    const crasher = k.kernel.spawn('s', 'failing', [srv, 'crash', Infinity]);
    await waitFor(() => k.kernel.processCount === 0, 'server and callers gone');
    const exits = k.events.filter((e) => e.type === 'process_exit') as { pid: string; reason: unknown }[];
    for (const c of [...hung, crasher]) {
      const reason = exits.find((e) => e.pid === c)?.reason as { call_failed?: { dest: string } };
      expect(reason?.call_failed?.dest).toBe(srv);
    }

    const srv2 = k.kernel.startBehaviour('server', 's', []);
    const t = k.kernel.spawn('s', 'failing', [srv2, 'hang', 30]);
    await waitFor(() => sent(k).some((m) => (m as { timedOut?: string }).timedOut === t), 'the timeout step');
    await waitFor(() => k.kernel.processInfo(srv2)!.monitoredBy.length === 0, 'the monitor removed after the timeout');
  });

  it('a receive timeout armed inside a slice fires no earlier than its time', async () => {
    k = localKernel();
    k.load('s', SERVER);
    for (const ms of [1, 15, 40]) k.kernel.spawn('s', 'waiter', [ms]);
    await waitFor(() => sent(k).length === 3, 'three timeouts');
    const waited = (sent(k) as { waited: number }[]).map((m) => m.waited).sort((a, b) => a - b);
    expect(waited[0]).toBeGreaterThanOrEqual(1);
    expect(waited[1]).toBeGreaterThanOrEqual(15);
    expect(waited[2]).toBeGreaterThanOrEqual(40);
  });
});

describe('system.call', () => {
  it('its monitor is removed on the node by the reply itself (no demonitor to wait for)', async () => {
    const system = await System.start({ nodes: [{ name: 'n' }] });
    try {
      const node = system.node('n');
      await node.load('s', SERVER);
      const srv = await node.startServer('s', []);
      for (let i = 0; i < 50; i++) expect(await system.call(srv, 'inc')).toBe(i + 1);
      // The node ended the monitor before the reply left: no later envelope is needed.
      expect((await node.processInfo(srv))?.monitoredBy).toEqual([]);
    } finally {
      await system.stop();
    }
  });
});
