/**
 * The host's side of `system.call` (Router + Caller) where the callee is not a node's process, or
 * where a Reply does not come from the node that holds the call's monitor: two Routers wired as a
 * cluster wires them (each registers the other's mailboxes, `host@H`, as a node sink), and fake
 * node sinks that record what the host sends them. No threads: every step is deterministic.
 */
import { describe, expect, it } from 'vitest';
import { NoProcess } from '../src/index.js';
import { Router } from '../src/host/router.js';
import { Caller } from '../src/host/caller.js';
import { Events, type SystemEvent } from '../src/host/events.js';
import { nodeOf, type Pid } from '../src/kernel/pid.js';
import type { Envelope } from '../src/kernel/signals.js';
import type { Dest } from '../src/kernel/types.js';

// Signal numbers (src/kernel/signals.ts).
const MONITOR = 4;
const DEMONITOR = 5;
const CALL = 10;
const REPLY = 11;

function router(hostNode: string): { router: Router; events: SystemEvent[] } {
  const events = new Events();
  const seen: SystemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const r = new Router(
    events,
    () => {},
    (pid) => nodeOf(pid),
  );
  r.hostNode = hostNode;
  return { router: r, events: seen };
}

/** A caller that calls pids where they are (no moves). */
const callerOn = (r: Router): Caller =>
  r.attach((pid) => new Caller(pid, r, { resolve: (dest: Dest) => ({ target: dest as string, node: nodeOf(dest as Pid), home: nodeOf(dest as Pid) }) }));

/** Host A and host B, each a sink for the other's mailboxes, as src/cluster/cluster.ts registers them. */
function twoHosts() {
  const a = router('host@A');
  const b = router('host@B');
  a.router.addNode('host@B', {
    deliver: (batch: Envelope[], from: string) => (b.router.route('host@B', structuredClone(batch), from === 'host' ? 'host@A' : from), true),
  });
  b.router.addNode('host@A', {
    deliver: (batch: Envelope[], from: string) => (a.router.route('host@A', structuredClone(batch), from === 'host' ? 'host@B' : from), true),
  });
  return { a, b };
}

/** A host mailbox that answers every call it gets with `answer(request)`. */
function answering(r: Router, answer: (request: unknown) => unknown) {
  const got: unknown[] = [];
  const box = r.attach((pid: Pid) => ({
    pid,
    deliver: (m: unknown) => {
      got.push(m);
      const call = m as { $call: unknown; from: { pid: Pid; ref: string } };
      r.send(call.from.pid, { $reply: call.from.ref, value: answer(call.$call) }, () => undefined);
    },
  }));
  return { pid: box.pid, got };
}

describe('a system.call to a host mailbox', () => {
  it("reaches another host's mailbox and settles with its reply; one that is not there rejects NoProcess; a Call sent to a host is reported, not ignored", async () => {
    const { a, b } = twoHosts();
    const server = answering(b.router, (request) => ({ echoed: request }));
    const caller = callerOn(a.router);
    expect(await caller.call(server.pid, 'hello', 5_000)).toEqual({ echoed: 'hello' });
    expect(server.got).toMatchObject([{ $call: 'hello' }]);
    // B answers a monitor of a mailbox it does not have with DOWN noproc, as a node does.
    const error = await caller.call('<host@B.99>' as Pid, 'hello', 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoProcess);
    expect((error as Error).message).toMatch(/no process/);
    expect(caller.pending).toBe(0);
    // A kind of signal no host mailbox takes is counted as dropped.
    a.router.route('host@B', [[CALL, server.pid, caller.pid, '#Ref<host.c.1.x>', 'req']]);
    expect(b.events).toContainEqual({ type: 'message_dropped', node: 'host', count: 1, reason: 'not_for_host' });
    expect(server.got).toHaveLength(1);
  });

  it("of this host settles: with the mailbox's reply, NoProcess at once for one that is closed (even without a deadline), and when it closes mid-call", async () => {
    const { router: r } = router('host');
    const caller = callerOn(r);
    const server = answering(r, (request) => (request as number) + 1);
    expect(await caller.call(server.pid, 41, 5_000)).toBe(42);
    // A closed inbox: its DOWN noproc comes while the call is being made, and finds the waiter.
    const inbox = r.inbox();
    inbox.close();
    await expect(caller.call(inbox.pid, 'x', Infinity)).rejects.toBeInstanceOf(NoProcess);
    // An inbox that closes before it answers: NoProcess, as for a process that ends.
    const quiet = r.inbox();
    const call = caller.call(quiet.pid, 'x', Infinity).catch((e: unknown) => e);
    expect(await quiet.receive((m: any) => m && m.$call === 'x', 5_000)).toBeTruthy();
    quiet.close();
    const error = await call;
    expect(error).toBeInstanceOf(NoProcess);
    expect((error as Error).message).toMatch(/ended before replying/);
    expect(caller.pending).toBe(0);
    expect((r as unknown as { monitors: Map<string, unknown> }).monitors.size).toBe(0);
  });
});

describe('a Reply ends the call’s monitor only from the node that holds it', () => {
  async function setUp() {
    const { router: r } = router('host');
    const toX: Envelope[] = [];
    r.addNode('x', { deliver: (batch) => (toX.push(...batch), true) });
    const caller = callerOn(r);
    const call = caller.call<unknown>('<x.1>' as Pid, 'req', 5_000);
    r.sendPending();
    const sent = toX.find((e) => e[0] === CALL)!;
    expect(sent).toBeDefined();
    return { r, toX, caller, call, ref: sent[3] as string };
  }

  it('from that node: no demonitor follows', async () => {
    const { r, toX, caller, call, ref } = await setUp();
    r.route('host', [[REPLY, caller.pid, ref, 42]], 'x');
    expect(await call).toBe(42);
    r.sendPending();
    expect(toX.filter((e) => e[0] === DEMONITOR)).toEqual([]);
  });

  it('from another node (a Reply a node made up): the call settles, and the demonitor still goes to the monitor’s node', async () => {
    const { r, toX, caller, call, ref } = await setUp();
    r.route('host', [[REPLY, caller.pid, ref, 42]], 'z');
    expect(await call).toBe(42);
    r.sendPending();
    expect(toX.filter((e) => e[0] === DEMONITOR)).toEqual([[DEMONITOR, '<x.1>', caller.pid, ref]]);
    expect(toX.filter((e) => e[0] === MONITOR)).toEqual([]);
  });
});
