/**
 * A move's window: between its snapshot (migrateOut) and its commit or abort the process, suspended
 * on its source node, still takes signals. Monitors and links set or removed then (a system.call's
 * monitor among them) did not travel in the snapshot: at commit they follow it to the target, before
 * the messages that queued (a monitor precedes its request); at abort they simply stay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NoProcess, System } from '../src/index.js';
import type { NodeHandle } from '../src/host/node-handle.js';
import { CALL_REF } from '../src/kernel/host-calls.js';
import type { Pid } from '../src/kernel/pid.js';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { envelopes, HOST, info, waitFor } from './helpers/kernel-tools.js';
import { until } from './helpers/wait.js';

// Signal numbers (src/kernel/signals.ts).
const MESSAGE = 0;
const LINK = 1;
const UNLINK = 2;
const MONITOR = 4;
const DEMONITOR = 5;
const FLUSHED = 8;
const CALL = 10;
const REPLY = 11;

const SERVER = `
  export function init() { return 0; }
  export function handleCall(req: any, _from: any, n: number) {
    if (req === 'crash') throw new Error('crashed');
    return { reply: n + 1, state: n + 1 };
  }
  export function handleCast(_m: unknown, n: number) { return { noreply: n }; }
  export function handleInfo(_m: unknown, n: number) { return { noreply: n }; }
`;

/** Links to a process, trapping exits, and tells `reply` so and what it gets. */
const LINKER = `
  import { link, receive, send, trapExit } from 'subnode';
  export function start(to: string, reply: string) { trapExit(true); link(to); send(reply, { linked: to }); return wait(reply); }
  export function wait(reply: string): unknown { return receive((m: unknown) => { send(reply, { got: m }); return wait(reply); }); }
`;

describe('the node side of a move’s window', () => {
  let k: LocalKernel;
  afterEach(() => k?.kernel.orderlyStop(1_000));
  const ref = `${CALL_REF}1.secret>`;

  /** A server with a monitor and a link from node c, taken out (suspended, snapshot taken); then, in the window, a call, a monitor and a link arrive and the old ones are undone. */
  function inWindow(): Pid {
    k = localKernel('a');
    k.load('s', SERVER);
    const srv = k.kernel.startBehaviour('server', 's', []) as Pid;
    k.kernel.deliver([[MONITOR, srv, '<c.3>', 'r-old'] as never, [LINK, srv, '<c.4>'] as never], 'c');
    const [out] = k.kernel.migrateOut([srv]);
    if (!out || !('ok' in out)) throw new Error(`migrateOut failed: ${JSON.stringify(out)}`);
    expect(out.ok.watchers).toEqual([['r-old', '<c.3>']]);
    k.kernel.deliver([[CALL, srv, HOST, ref, 'inc']] as never, 'host');
    k.kernel.deliver(
      [
        [MONITOR, srv, '<c.1>', 'r-new'],
        [LINK, srv, '<c.2>'],
        [DEMONITOR, srv, '<c.3>', 'r-old'],
        [UNLINK, srv, '<c.4>'],
      ] as never,
      'c',
    );
    return srv;
  }

  it('at commit, what changed goes to the target before the messages that queued, then Flushed', async () => {
    const srv = inWindow();
    k.kernel.migrateCommit([srv], 'b');
    await waitFor(() => envelopes(k).some((e) => e[0] === FLUSHED), 'the Flushed marker');
    expect(k.outbound.filter((o) => o.node === 'b').flatMap((o) => o.envelopes)).toEqual([
      [MONITOR, srv, HOST, ref],
      [MONITOR, srv, '<c.1>', 'r-new'],
      [DEMONITOR, srv, '<c.3>', 'r-old'],
      [LINK, srv, '<c.2>'],
      [UNLINK, srv, '<c.4>'],
      [MESSAGE, srv, { $call: 'inc', from: { pid: HOST, ref } }],
      [FLUSHED, srv],
    ]);
  });

  it('at abort, they stay with the process, which answers the call; its next move takes them in its snapshot and sends no changes', async () => {
    const srv = inWindow();
    k.kernel.migrateAbort([srv]);
    await waitFor(() => envelopes(k).some((e) => e[0] === REPLY), 'the reply');
    expect(envelopes(k)).toEqual([[REPLY, HOST, ref, 1]]);
    expect(info(k, srv)!.monitoredBy).toEqual(['<c.1>']);
    expect(info(k, srv)!.links).toEqual(['<c.2>']);
    const [out] = k.kernel.migrateOut([srv]);
    if (!out || !('ok' in out)) throw new Error(`migrateOut failed: ${JSON.stringify(out)}`);
    expect(out.ok.watchers).toEqual([['r-new', '<c.1>']]);
    k.kernel.migrateCommit([srv], 'b');
    await waitFor(() => envelopes(k).some((e) => e[0] === FLUSHED), 'the Flushed marker');
    expect(k.outbound.filter((o) => o.node === 'b').flatMap((o) => o.envelopes)).toEqual([[FLUSHED, srv]]);
  });
});

describe('a system.call and a monitor that land in a move’s window', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('follow the callee: it dies on the target, the call rejects NoProcess and the monitor’s DOWN comes', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { s: SERVER } },
        { name: 'b', modules: { s: SERVER } },
      ],
    });
    const s = system;
    const pid = await s.node('a').startServer('s', []);
    expect(await s.call(pid, 'inc')).toBe(1);
    const inbox = s.inbox();
    const target = s.node('b') as NodeHandle;
    const migrateIn = target.migrateIn.bind(target);
    let call: Promise<unknown> | undefined;
    let monitorRef = '';
    target.migrateIn = async (...args: Parameters<NodeHandle['migrateIn']>) => {
      // The snapshot is taken and the callee suspended on 'a', where the host still locates it.
      call = s.call(pid, 'crash', 20_000).catch((e: unknown) => e);
      monitorRef = inbox.monitor(pid);
      await until('the call and the monitor to reach the suspended callee', async () => (await s.node('a').processInfo(pid))?.monitoredBy.length === 2);
      return migrateIn(...args);
    };
    expect((await s.migrate(pid, 'b'))?.ok).toBe(true);
    const error = await call;
    expect(error).toBeInstanceOf(NoProcess);
    expect((error as Error).message).toMatch(/ended before replying/);
    expect(await inbox.receive({ type: 'DOWN', ref: monitorRef }, 20_000)).toMatchObject({ pid });
  });

  it('a link made in the window follows the process: its end on the target reaches the linked process', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { s: SERVER } },
        { name: 'b', modules: { s: SERVER } },
        { name: 'c', modules: { linker: LINKER } },
      ],
    });
    const s = system;
    const pid = await s.node('a').startServer('s', []);
    const inbox = s.inbox();
    const target = s.node('b') as NodeHandle;
    const migrateIn = target.migrateIn.bind(target);
    target.migrateIn = async (...args: Parameters<NodeHandle['migrateIn']>) => {
      await s.node('c').spawn('linker', 'start', [pid, inbox.pid]);
      await inbox.receive({ linked: pid }, 20_000);
      await until('the link to reach the suspended process', async () => (await s.node('a').processInfo(pid))?.links.length === 1);
      return migrateIn(...args);
    };
    expect((await s.migrate(pid, 'b'))?.ok).toBe(true);
    // The link comes from node a, the kill from the host: the kill must not overtake it.
    await until('the link to follow the process to b', async () => (await s.node('b').processInfo(pid))?.links.length === 1);
    await s.node('b').exit(pid, 'kill');
    expect(await inbox.receive((m: any) => m?.got?.type === 'EXIT', 20_000)).toMatchObject({ got: { type: 'EXIT', from: pid, reason: 'killed' } });
  });
});

describe('a copy withdrawn when a move’s answer was lost (migrateWithdraw)', () => {
  const kernels: LocalKernel[] = [];
  afterEach(async () => {
    for (const k of kernels.splice(0)) await k.kernel.orderlyStop(1_000);
  });

  /** A server of node a with a monitor and a link from node c, moved into node b (not committed). */
  function arrived(): { a: LocalKernel; b: LocalKernel; srv: Pid } {
    const a = localKernel('a');
    const b = localKernel('b');
    kernels.push(a, b);
    a.load('s', SERVER);
    b.load('s', SERVER);
    const srv = a.kernel.startBehaviour('server', 's', []) as Pid;
    a.kernel.deliver([[MONITOR, srv, '<c.3>', 'r'] as never, [LINK, srv, '<c.4>'] as never], 'c');
    const [out] = a.kernel.migrateOut([srv]);
    if (!out || !('ok' in out)) throw new Error(`migrateOut failed: ${JSON.stringify(out)}`);
    const [into] = b.kernel.migrateIn([out.ok]);
    expect(into && 'ok' in into).toBe(true);
    return { a, b, srv };
  }

  it('leaves the target without dying: no DOWN or exit signal reaches its monitors and links, an event says so', async () => {
    const { b, srv } = arrived();
    expect(b.kernel.migrateWithdraw([srv], 'a')).toEqual([srv]);
    expect(b.kernel.processInfo(srv)).toBeUndefined();
    expect(b.events).toContainEqual({ type: 'migration_withdrawn', node: 'b', pid: srv, from: 'a' });
    // A marker sent after it to node c arrives alone: nothing about the copy went before it.
    b.kernel.send('<c.9>' as Pid, 'marker');
    await waitFor(() => b.outbound.some((o) => o.node === 'c'), 'the marker to node c');
    expect(b.outbound.filter((o) => o.node === 'c').flatMap((o) => o.envelopes)).toEqual([[MESSAGE, '<c.9>', 'marker']]);
  });

  it('leaves a process that did not come from that node alone', () => {
    const { b, srv } = arrived();
    expect(b.kernel.migrateWithdraw([srv], 'z')).toEqual([]);
    expect(b.kernel.processInfo(srv)).toBeDefined();
  });
});
