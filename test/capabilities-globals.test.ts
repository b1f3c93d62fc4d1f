/**
 * Issue #11, item 4: global names under capabilities. A name draws every other node's messages,
 * so which names a node may register is a capability (isolate default: none), how many it may hold
 * is a limit; the kernel checks both (a clear error), the host checks both again (a node that
 * skips its kernel's check gets nothing), and name changes reach the nodes in batches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, NoProcess, type NodeSpec } from '../src/index.js';
import { sandboxedTalkingTo } from '../policies/capabilities.js';
import { agent, denials, record, waitEvent } from './helpers/sandbox-tools.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const names = `
  import { receive, send, registerGlobal, spawn, self } from 'subnode';
  const describe = (e: any) => ({ name: e && e.name, message: e && e.message });
  export function take(reply: string, name: string) {
    try { registerGlobal(name); send(reply, { registered: name }); } catch (e) { send(reply, { refused: describe(e) }); }
    return receive((m: unknown) => { send(reply, { got: m }); return 'done'; });
  }
  /** Spawns \`count\` processes, each registering a name; reports how many got one. */
  export function many(reply: string, prefix: string, count: number) {
    const me = self();
    for (let i = 0; i < count; i++) spawn(() => { let ok = true; try { registerGlobal(prefix + i); } catch { ok = false; } send(me, ok); return receive(() => 0); });
    return tally(reply, count, 0, 0);
  }
  function tally(reply: string, left: number, ok: number, refused: number): unknown {
    if (left === 0) { send(reply, { ok, refused }); return 'done'; }
    return receive((m: boolean) => tally(reply, left - 1, ok + (m ? 1 : 0), refused + (m ? 0 : 1)));
  }
  /** What a subverted kernel could do: report registrations its kernel never checked (thread node: straight to the host). */
  export function forge(reply: string, node: string, prefix: string, count: number) {
    const port = (globalThis as any).process.getBuiltinModule('node:worker_threads').parentPort;
    for (let i = 0; i < count; i++) port.postMessage({ t: 'event', event: { type: 'global_register', node, name: prefix + i, pid: self() } });
    send(reply, { forged: count });
    return receive(() => 0);
  }
`;

async function start(s: Partial<NodeSpec>): Promise<System> {
  system = await System.start({
    nodes: [
      { name: 's', modules: { names, agent }, ...s },
      { name: 'ok', modules: { agent } },
    ],
  });
  return system;
}

describe('registerGlobal on an isolate node', () => {
  it('by default none: NotAllowed inside, capability_denied, and a send elsewhere to that name reaches nobody', async () => {
    const system = await start({ kind: 'isolate', ...sandboxedTalkingTo('ok') });
    const events = record(system);
    const inbox = system.inbox();
    await system.node('s').spawn('names', 'take', [inbox.pid, 'payments']);
    expect(await inbox.receive()).toEqual({ refused: { name: 'NotAllowed', message: "node 's' may not register the global name 'payments'" } });
    expect(denials(events, 's')).toEqual(["register the global name 'payments'"]);
    expect(system.whereis('payments')).toBeUndefined();
    expect(() => system.send({ global: 'payments' }, 'card numbers')).toThrow(NoProcess);
  });

  it('a granted list: those names only; a limit: that many at once (Refused beyond it)', async () => {
    const system = await start({ kind: 'isolate', capabilities: { globalNames: ['svc', 'a0', 'a1', 'a2', 'a3'] }, limits: { globalNames: 3 } });
    const inbox = system.inbox();
    await system.node('s').spawn('names', 'take', [inbox.pid, 'svc']);
    expect(await inbox.receive()).toEqual({ registered: 'svc' });
    await system.node('s').spawn('names', 'take', [inbox.pid, 'other']);
    expect(await inbox.receive()).toMatchObject({ refused: { name: 'NotAllowed' } });
    await system.node('s').spawn('names', 'many', [inbox.pid, 'a', 4]);
    expect(await inbox.receive()).toEqual({ ok: 2, refused: 2 });
    expect(['svc', 'a0', 'a1', 'a2', 'a3'].filter((n) => system.whereis(n)).length).toBe(3);
  });
});

describe('registerGlobal on a thread node (kernel-enforced, NOT a security boundary)', () => {
  it('defaults to any name; the host re-checks what a node reports, whatever its kernel did', async () => {
    let system = await start({ capabilities: { globalNames: ['svc'] }, limits: { globalNames: 5 } });
    const events = record(system);
    const inbox = system.inbox();
    const refused = waitEvent(system, (e) => e.type === 'capability_denied' && e.what.includes('(refused by the host)'));
    await system.node('s').spawn('names', 'forge', [inbox.pid, 's', 'payments', 1]);
    await refused;
    expect(system.whereis('payments0')).toBeUndefined();
    // names it may register, past its limit: the host keeps 5
    await system.stop();
    system = await start({ limits: { globalNames: 5 } });
    const sys = system;
    const inbox2 = system.inbox();
    const flood = record(system);
    const last = waitEvent(system, (e) => e.type === 'global_register' && e.name === 'f4');
    await system.node('s').spawn('names', 'forge', [inbox2.pid, 's', 'f', 200]);
    await last;
    await inbox2.receive({ forged: 200 }); // after the 200 events: one port, in order
    expect(Array.from({ length: 200 }, (_, i) => sys.whereis(`f${i}`)).filter(Boolean)).toHaveLength(5);
    expect(denials(flood, 's').length).toBeLessThanOrEqual(21);
    expect(denials(events, 's')).toEqual(["register the global name 'payments0' (refused by the host)"]);
  });

  it('a node registering many names costs every other node one setGlobals call per tick, not one per name', async () => {
    const system = await start({});
    const inbox = system.inbox();
    const calls: string[] = [];
    let names = 0;
    const peer = system.node('ok').supervision;
    const tell = peer.tell.bind(peer);
    peer.tell = ((op: string, ...args: unknown[]) => {
      calls.push(op);
      if (op === 'setGlobals') names += (args[0] as unknown[]).length;
      return (tell as any)(op, ...args);
    }) as typeof peer.tell;
    const last = waitEvent(system, (e) => e.type === 'global_register' && e.name === 'n499', 10_000);
    await system.node('s').spawn('names', 'many', [inbox.pid, 'n', 500]);
    expect(await inbox.receive(undefined, 10_000)).toEqual({ ok: 500, refused: 0 });
    await last;
    await new Promise((resolve) => setImmediate(resolve));
    expect(system.whereis('n499')).toBeDefined();
    // However the events spread over ticks: every name reached the peer, many per call.
    expect(names).toBeGreaterThanOrEqual(500);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.length).toBeLessThan(100);
    expect(new Set(calls)).toEqual(new Set(['setGlobals']));
  });
});
