/**
 * Issue #11, item 6: every process that ends is reported — its links and monitors fire — whatever
 * cut it and whatever its reason holds; and an outbox flush cut by the CPU limit sends no batch twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, type NodeKind, type Pid } from '../src/index.js';
import { until } from './helpers/wait.js';
import { agent, ask, eventsOf, nothingWithin, record, waitEvent } from './helpers/sandbox-tools.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const dying = `
  import { receive, on, send, exit } from 'subnode';
  import * as me from './dying';
  export function gate(fn: string, ...args: unknown[]) { return receive(on('go', () => (me as any)[fn](...args))); }
  /** Throws an error whose message never comes: the CPU limit cuts the kernel while it reads it. */
  export function throwLooping() {
    const e = new Error('never read');
    Object.defineProperty(e, 'message', { get() { for (;;) {} } });
    throw e;
  }
  export function symbolReason() { exit({ why: Symbol('secret'), fn: function helper() { return 1; }, ok: 'kept' }); }
  /** One message to the host and one to \`to\` whose getter loops once armed: the flush is cut after the first batch left. */
  export function cutFlush(reply: string, to: string) {
    let armed = false;
    const evil = { get x() { if (armed) for (;;) {} return 1; } };
    send(reply, 'exactly once');
    send(to, evil);
    armed = true;
    return receive(() => 0);
  }
`;

async function start(kind: NodeKind): Promise<System> {
  system = await System.start({
    nodes: [
      { name: 's', kind, capabilities: { sendTo: ['t'] }, limits: kind === 'isolate' ? { cpuMsPerSlice: 100, memoryMb: 64 } : {}, modules: { dying, agent } },
      { name: 't', modules: { agent } },
    ],
  });
  return system;
}

describe('a death cut by the CPU limit (isolate node)', () => {
  it('a step whose error the kernel cannot read in time still ends its process: DOWN with { cpu_limit }', async () => {
    const system = await start('isolate');
    const inbox = system.inbox();
    const pid = await system.node('s').spawn('dying', 'gate', ['throwLooping']);
    const ref = inbox.monitor(pid);
    system.send(pid, 'go');
    const down = await inbox.receive<{ reason: unknown }>({ type: 'DOWN', ref }, 5_000);
    expect(down.reason).toEqual({ cpu_limit: 100 });
    expect(await system.node('s').processInfo(pid)).toBeUndefined();
    const bystander = await system.node('s').spawn('agent', 'start', []);
    expect(await ask(system, inbox, bystander, { op: 'send', to: inbox.pid, msg: 'still here' })).toEqual({ ok: true });
  });

  it('an outbox flush cut by the CPU limit sends no batch twice', async () => {
    const system = await start('isolate');
    const events = record(system);
    const inbox = system.inbox();
    const sink = await system.node('t').spawn('agent', 'start', []);
    const cut = waitEvent(system, (e) => e.type === 'cpu_limit' && e.node === 's');
    const pid = await system.node('s').spawn('dying', 'gate', ['cutFlush', inbox.pid, sink]);
    system.send(pid, 'go');
    expect(await inbox.receive('exactly once', 5_000)).toBe('exactly once');
    await cut;
    expect(await nothingWithin(inbox, 300, 'exactly once')).toBeUndefined();
    expect(eventsOf(events, 'cpu_limit', 's')).toHaveLength(1);
  });
});

describe.each<[string, NodeKind]>([
  ['isolate', 'isolate'],
  ['thread', 'thread'],
])('an exit reason that cannot be copied (%s node)', (_label, kind) => {
  it('links and monitors elsewhere are told, with the uncopyable parts described', async () => {
    const system = await start(kind);
    const inbox = system.inbox();
    const pid = await system.node('s').spawn('dying', 'gate', ['symbolReason']);
    const ref = inbox.monitor(pid);
    const linked: Pid = await system.node('t').spawn('agent', 'start', [inbox.pid, true]);
    expect(await ask(system, inbox, linked, { op: 'link', pid })).toEqual({ ok: true });
    // link/1 is asynchronous, as in Erlang: the link signal travels t → s while 'go' travels host → s.
    // Wait until s holds the link, or the process may end first and the link be answered `noproc`.
    await until('the link to reach node s', async () => (await system!.node('s').processInfo(pid))?.links.includes(linked) ?? false);
    system.send(pid, 'go');
    const reason = { why: '<uncopyable Symbol(secret)>', fn: '<uncopyable function helper>', ok: 'kept' };
    expect((await inbox.receive<{ reason: unknown }>({ type: 'DOWN', ref }, 5_000)).reason).toEqual(reason);
    expect(await inbox.receive({ type: 'EXIT', from: pid }, 5_000)).toMatchObject({ reason });
  });
});
