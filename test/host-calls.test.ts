/**
 * `system.call` as lean as OTP's: one `Call` envelope from the host (the node sets up the monitor
 * and hands the callee the request), one `Reply` back (the callee's node ends the monitor with the
 * reply, so no demonitor follows). The semantics stay: NoProcess for a dead or unknown callee and
 * for one that dies mid-call, Timeout with the late reply dropped, and no monitor left behind on
 * either side. Only a host may send a Call, and only a host call's monitor ends with a reply.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NoProcess, System, Timeout } from '../src/index.js';
import type { Router } from '../src/host/router.js';
import type { Envelope } from '../src/kernel/signals.js';
import { CALL_REF } from '../src/kernel/host-calls.js';
import type { Pid } from '../src/kernel/pid.js';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { envelopes, HOST, info, waitFor } from './helpers/kernel-tools.js';
import { until } from './helpers/wait.js';
import { denials, record, sink, subvert } from './helpers/sandbox-tools.js';

// Signal numbers (src/kernel/signals.ts).
const MESSAGE = 0;
const MONITOR = 4;
const DEMONITOR = 5;
const DOWN = 6;
const CALL = 10;
const REPLY = 11;

const SERVER = `
  import { server, spawn } from 'subnode';
  import { registerGlobal } from 'subnode/process';
  export function init(global?: string) { if (global) registerGlobal(global); return 0; }
  export function handleCall(req: any, from: any, n: number) {
    if (req === 'crash') throw new Error('crashed');
    if (req === 'get') return { reply: n, state: n };
    if (req === 'hang') return { noreply: n };
    // Someone else answers: the reply does not come from the process holding the monitor.
    if (req === 'delegate') { spawn(answer, from, n); return { noreply: n }; }
    return { reply: n + 1, state: n + 1 };
  }
  export function answer(from: any, n: number) { server.reply(from, { delegated: n }); return 'done'; }
  export function handleCast(_m: unknown, n: number) { return { noreply: n }; }
  export function handleInfo(_m: unknown, n: number) { return { noreply: n }; }
`;

const STATEM = `
  export function init() { return { state: 'off', data: 0 }; }
  export function handleEvent(type: string, content: unknown, state: string, data: number) {
    if (type === 'call' && content === 'flip') return { state: state === 'off' ? 'on' : 'off', data: data + 1, reply: state === 'off' ? 'on' : 'off' };
    return {};
  }
`;

/** The system's router, to count what crosses and to see its monitor table (tests only). */
const routerOf = (system: System): Router => (system as unknown as { router: Router }).router;
const hostMonitors = (system: System): number => (routerOf(system) as unknown as { monitors: Map<string, unknown> }).monitors.size;

let system: System | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await system?.stop();
  system = undefined;
});

describe('system.call on the wire', () => {
  it('is one Call envelope to the node and one Reply back: no monitor, message or demonitor envelopes, nothing left behind', async () => {
    system = await System.start({ nodes: [{ name: 'n', modules: { s: SERVER } }] });
    const s = system;
    const srv = await s.node('n').startServer('s', []);
    const toNode: Envelope[] = [];
    const toHost: Envelope[] = [];
    const route = routerOf(s).route.bind(routerOf(s));
    vi.spyOn(routerOf(s), 'route').mockImplementation((node, batch, from) => {
      (node === 'n' ? toNode : toHost).push(...batch);
      route(node, batch, from);
    });
    for (let i = 0; i < 100; i++) expect(await s.call(srv, 'inc')).toBe(i + 1);
    // A demonitor (the way it was) waits in the router's batch: send it now, through the spy.
    routerOf(s).sendPending();
    expect(toNode.map((e) => e[0])).toEqual(Array(100).fill(CALL));
    expect(toHost.map((e) => e[0])).toEqual(Array(100).fill(REPLY));
    expect(hostMonitors(s)).toBe(0);
    expect((await s.node('n').processInfo(srv))?.monitoredBy).toEqual([]);
  });
});

describe('system.call to a process that moved', () => {
  it('monitors it where it runs and sends the request through its home; the reply ends the monitor there, and no demonitor follows', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { s: SERVER } },
        { name: 'b', modules: { s: SERVER } },
      ],
    });
    const s = system;
    const srv = await s.node('a').startServer('s', []);
    expect((await s.migrate(srv, 'b'))?.ok).toBe(true);
    // What the host sends, and what reaches it (the nodes' own traffic through the router aside).
    const sent: [string, Envelope][] = [];
    const route = routerOf(s).route.bind(routerOf(s));
    vi.spyOn(routerOf(s), 'route').mockImplementation((node, batch, from) => {
      if ((from ?? 'host') === 'host' || node === 'host') for (const e of batch) sent.push([node, e]);
      route(node, batch, from);
    });
    expect(await s.call(srv, 'inc')).toBe(1);
    expect(await s.call(srv, 'inc')).toBe(2);
    routerOf(s).sendPending();
    expect(sent.filter(([node]) => node !== 'host').map(([node, e]) => [node, e[0]])).toEqual([
      ['b', MONITOR],
      ['a', MESSAGE],
      ['b', MONITOR],
      ['a', MESSAGE],
    ]);
    expect(sent.filter(([node]) => node === 'host').map(([, e]) => e[0])).toEqual([REPLY, REPLY]);
    expect(hostMonitors(s)).toBe(0);
    expect((await s.node('b').processInfo(srv))?.monitoredBy).toEqual([]);
    expect(await s.node('a').processInfo(srv)).toBeUndefined();
  });
});

describe('system.call keeps its semantics', () => {
  it('by pid, { name, node }, { global }, to a statem and to a server on a second node; dead or unknown callees reject NoProcess; no monitor is left', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { s: SERVER, t: STATEM } },
        { name: 'b', modules: { s: SERVER } },
      ],
    });
    const s = system;
    const srv = await s.node('a').startServer('s', ['g-counter'], { name: 'counter' });
    const onB = await s.node('b').startServer('s', []);
    const statem = await s.node('a').startStatem('t', []);
    expect(await s.call(srv, 'inc')).toBe(1);
    expect(await s.call({ name: 'counter', node: 'a' }, 'inc')).toBe(2);
    await until('the global name to reach the host', () =>
      s.call({ global: 'g-counter' }, 'get').then(
        () => true,
        () => false,
      ),
    );
    expect(await s.call({ global: 'g-counter' }, 'inc')).toBe(3);
    expect(await s.call(onB, 'inc')).toBe(1);
    expect(await s.call(statem, 'flip')).toBe('on');
    expect(await s.call(statem, 'flip')).toBe('off');
    await expect(s.call({ name: 'nobody', node: 'a' }, 'inc', 20_000)).rejects.toBeInstanceOf(NoProcess);
    const gone = await s.node('b').startServer('s', []);
    await s.node('b').exit(gone, 'kill');
    await expect(s.call(gone, 'inc', 20_000)).rejects.toBeInstanceOf(NoProcess);
    expect(hostMonitors(s)).toBe(0);
    for (const [node, pid] of [
      ['a', srv],
      ['b', onB],
      ['a', statem],
    ] as const)
      expect((await s.node(node).processInfo(pid))?.monitoredBy).toEqual([]);
  });

  it('a callee that dies mid-call rejects NoProcess with its reason; a timed-out call drops its late reply; a delegated reply works; nothing is left', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { s: SERVER } }] });
    const s = system;
    const srv = await s.node('a').startServer('s', []);
    // Timeouts: the host's demonitor ends the node's monitor; the late replies are dropped.
    const timedOut = await Promise.all(Array.from({ length: 20 }, () => s.call(srv, 'hang', 30).catch((e: unknown) => e)));
    for (const e of timedOut) expect(e).toBeInstanceOf(Timeout);
    expect(hostMonitors(s)).toBe(0);
    await until('the node to drop the timed-out calls’ monitors', async () => (await s.node('a').processInfo(srv))?.monitoredBy.length === 0);
    // A reply from another process: the call's monitor ends by the host's demonitor instead.
    expect(await s.call(srv, 'delegate')).toEqual({ delegated: 0 });
    expect(hostMonitors(s)).toBe(0);
    await until('the delegated call’s monitor to end', async () => (await s.node('a').processInfo(srv))?.monitoredBy.length === 0);
    // Death mid-call: every waiting call rejects with the reason.
    const waiting = Array.from({ length: 5 }, () => s.call(srv, 'hang', 20_000).catch((e: unknown) => e));
    await until('the calls to reach the server', async () => (await s.node('a').processInfo(srv))?.monitoredBy.length === 5);
    const crash = s.call(srv, 'crash', 20_000).catch((e: unknown) => e);
    for (const e of [...(await Promise.all(waiting)), await crash]) {
      expect(e).toBeInstanceOf(NoProcess);
      expect((e as Error).message).toMatch(/ended before replying/);
    }
    expect(hostMonitors(s)).toBe(0);
  });
});

describe('the node side of a host call', () => {
  let k: LocalKernel;
  afterEach(() => k?.kernel.orderlyStop(1_000));
  const ref = (n: number) => `${CALL_REF}${n}.secret>`;

  async function server(): Promise<Pid> {
    k = localKernel();
    k.load('s', SERVER);
    return k.kernel.startBehaviour('server', 's', []) as Pid;
  }

  it('a Call from the host monitors and delivers; the reply ends the monitor and goes as a Reply', async () => {
    const srv = await server();
    k.kernel.deliver([[CALL, srv, HOST, ref(1), 'inc']] as never, 'host');
    await waitFor(() => envelopes(k).length > 0, 'the reply');
    expect(envelopes(k)).toEqual([[REPLY, HOST, ref(1), 1]]);
    expect(info(k, srv)!.monitoredBy).toEqual([]);
    // To a callee that is not there: DOWN noproc, nothing delivered.
    k.kernel.deliver([[CALL, 'nobody', HOST, ref(2), 'inc']] as never, 'host');
    await waitFor(() => envelopes(k).length > 1, 'the DOWN');
    expect(envelopes(k).slice(1)).toEqual([[DOWN, HOST, 'nobody', ref(2), 'noproc']]);
  });

  it('a Call from another node is refused (only a host sends one): no monitor, no request', async () => {
    const srv = await server();
    k.kernel.deliver([[CALL, srv, HOST, ref(1), 'inc']] as never, 'b');
    // Then one from the host, applied after it: once its reply is out, the first was dealt with.
    k.kernel.deliver([[CALL, srv, HOST, ref(2), 'get']] as never, 'host');
    await waitFor(() => envelopes(k).length > 0, 'the reply to the host’s call');
    expect(envelopes(k)).toEqual([[REPLY, HOST, ref(2), 0]]);
    expect(info(k, srv)!.monitoredBy).toEqual([]);
    expect(k.kernel.getState(srv)).toBe(0);
    expect(k.events.some((e) => e.type === 'capability_denied' && /a call signal from node 'b'/.test(e.what))).toBe(true);
  });

  it('a Call for a process that moved away goes on to where it is as the monitor and the message it stands for', async () => {
    k = localKernel('a');
    const moved = '<a.77>' as Pid;
    k.kernel.restoreForwards([[moved, 'b']]);
    // From another node it is still refused, not forwarded.
    k.kernel.deliver([[CALL, moved, HOST, ref(1), 'forged']] as never, 'c');
    k.kernel.deliver([[CALL, moved, HOST, ref(2), 'req']] as never, 'host');
    await waitFor(() => envelopes(k).length > 1, 'the forwards');
    expect(k.outbound.every((o) => o.node === 'b')).toBe(true);
    expect(envelopes(k)).toEqual([
      [MONITOR, moved, HOST, ref(2)],
      [MESSAGE, moved, { $call: 'req', from: { pid: HOST, ref: ref(2) } }],
    ]);
    expect(k.events.some((e) => e.type === 'capability_denied' && /a call signal from node 'c'/.test(e.what))).toBe(true);
  });

  it('a delegated reply is a plain message and leaves the monitor for the demonitor; a monitor that is not a call’s never ends by a reply', async () => {
    const srv = await server();
    k.kernel.deliver([[CALL, srv, HOST, ref(1), 'delegate']] as never, 'host');
    await waitFor(() => envelopes(k).length > 0, 'the reply');
    expect(envelopes(k)).toEqual([[MESSAGE, HOST, { $reply: ref(1), value: { delegated: 0 } }]]);
    expect(info(k, srv)!.monitoredBy).toEqual([HOST]);
    k.kernel.deliver([[DEMONITOR, srv, HOST, ref(1)]] as never, 'host');
    expect(info(k, srv)!.monitoredBy).toEqual([]);
    // An inbox's monitor (not a call's ref) with a reply-shaped message sent by the watched process.
    const inboxRef = '#Ref<host.0.7.secret>';
    k.kernel.deliver([[MONITOR, srv, HOST, inboxRef]] as never, 'host');
    k.kernel.deliver([[CALL, srv, HOST, ref(3), 'delegate']] as never, 'host');
    await waitFor(() => envelopes(k).length > 1, 'the second reply');
    expect(info(k, srv)!.monitoredBy).toEqual([HOST, HOST]);
  });
});

describe('an isolate node', () => {
  it('answers host calls; a smuggled Call is stopped at the boundary, a forged Reply cannot end an inbox monitor, an oversized one is dropped', async () => {
    const smuggler = `
      import { smuggle } from 'subvert';
      import { send } from 'subnode';
      export function go(reply: string, node: string, victim: string, owner: string, ref: string) {
        smuggle('<host.999>', node, [[${CALL}, victim, owner, ref, 'forged']]);
        send(reply, { smuggled: true });
      }
      export function fakeReply(reply: string, to: string, ref: string) {
        smuggle('<host.999>', 'host', [[${REPLY}, to, ref, 'forged']]);
        send(reply, { smuggled: true });
      }
      export function bigReply(reply: string, node: string, to: string) {
        smuggle('<host.999>', node, [[${REPLY}, to, 'r', 'x'.repeat(5_000)], [${REPLY}, to, 'after', 'small']]);
        send(reply, { smuggled: true });
      }
    `;
    system = await System.start({
      nodes: [
        { name: 'i', kind: 'isolate', capabilities: { sendTo: ['ok', 'small'] }, modules: { s: SERVER, smuggler, subvert } },
        { name: 'ok', modules: { s: SERVER } },
        { name: 'small', limits: { maxMessageBytes: 1_000 }, modules: { sink } },
      ],
    });
    const s = system;
    const events = record(s);
    const inbox = s.inbox();
    const mine = await s.node('i').startServer('s', []);
    for (let i = 0; i < 20; i++) expect(await s.call(mine, 'inc')).toBe(i + 1);
    expect(hostMonitors(s)).toBe(0);
    expect((await s.node('i').processInfo(mine))?.monitoredBy).toEqual([]);
    const victim = await s.node('ok').startServer('s', []);
    await s.node('i').spawn('smuggler', 'go', [inbox.pid, 'ok', victim, inbox.pid, `${CALL_REF}1.guess>`]);
    expect(await inbox.receive({ smuggled: true }, 3_000)).toBeTruthy();
    await until('the denial', async () => denials(events, 'i').some((d) => /a call signal, which only a host sends/.test(d)));
    expect((await s.node('ok').processInfo(victim))?.monitoredBy).toEqual([]);
    expect(await s.call(victim, 'inc')).toBe(1);
    // A Reply with an inbox's monitor ref (from the watched process's own node) is only a message:
    // the monitor stays, and its DOWN still comes.
    const watched = await s.node('i').startServer('s', []);
    const monitorRef = inbox.monitor(watched);
    await until('the monitor to reach the node', async () => (await s.node('i').processInfo(watched))?.monitoredBy.length === 1);
    await s.node('i').spawn('smuggler', 'fakeReply', [inbox.pid, inbox.pid, monitorRef]);
    expect(await inbox.receive({ smuggled: true }, 3_000)).toBeTruthy();
    expect(await inbox.receive({ $reply: monitorRef }, 3_000)).toEqual({ $reply: monitorRef, value: 'forged' });
    await s.node('i').exit(watched, 'kill');
    expect(await inbox.receive({ type: 'DOWN', ref: monitorRef }, 3_000)).toMatchObject({ pid: watched, reason: 'killed' });
    // A Reply carries a message: a node's maxMessageBytes holds for it on delivery too.
    const sunk = await s.node('small').spawn('sink', 'forward', [inbox.pid]);
    await s.node('i').spawn('smuggler', 'bigReply', [inbox.pid, 'small', sunk]);
    expect(await inbox.receive({ smuggled: true }, 3_000)).toBeTruthy();
    await until('the drop on delivery', async () => denials(events, 'small').some((d) => /a message from 'i' over this node's size limit/.test(d)));
    // The small Reply smuggled after it arrives; the big one did not come before it.
    expect(await inbox.receive((m: any) => m && typeof m === 'object' && 'sunk' in m, 3_000)).toEqual({ sunk: { $reply: 'after', value: 'small' } });
  });
});
