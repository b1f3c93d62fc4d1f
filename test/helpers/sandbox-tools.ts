/**
 * Shared tools for the isolate, capability and escape suites: event recording, waiting for an
 * event, a module whose processes do what their messages say (on any kind of node), a check that
 * the host's own state is untouched, and a snippet with which module code subverts its own kernel
 * (the kernel shares the isolate's realm with module code, so a hostile module can reach the
 * kernel's internals; only the trusted side of the boundary stands in its way).
 */
import { expect } from 'vitest';
import type { Inbox, Pid, System, SystemEvent } from '../../src/index.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every event of the system from now on. */
export function record(system: System): SystemEvent[] {
  const events: SystemEvent[] = [];
  system.on('*', (e) => events.push(e));
  return events;
}

/** The first event (from now on) that satisfies `pred`. */
export function waitEvent<E extends SystemEvent = SystemEvent>(
  system: System,
  pred: (e: SystemEvent) => boolean,
  timeoutMs = 5_000,
  what = 'a matching event',
): Promise<E> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = system.on('*', (e) => {
      let hit = false;
      try {
        hit = pred(e);
      } catch {
        hit = false;
      }
      if (hit) {
        clearTimeout(timer);
        off();
        resolve(e as E);
      }
    });
  });
}

/** Events of one type, typed, optionally of one node. */
export function eventsOf<T extends SystemEvent['type']>(events: SystemEvent[], type: T, node?: string): Extract<SystemEvent, { type: T }>[] {
  return events.filter((e): e is Extract<SystemEvent, { type: T }> => e.type === type && (node === undefined || ('node' in e && e.node === node)));
}

/** `capability_denied` events of a node. */
export function denials(events: SystemEvent[], node: string): string[] {
  return eventsOf(events, 'capability_denied', node).map((e) => e.what);
}

/** The next message, or `undefined` if none comes within `ms` (for "nothing was delivered"). */
export async function nothingWithin(inbox: Inbox, ms = 150, pattern?: unknown): Promise<unknown> {
  try {
    return await inbox.receive(pattern, ms);
  } catch {
    return undefined;
  }
}

export interface Outcome {
  ok?: unknown;
  error?: { name: string; code?: string; message: string };
}

/**
 * A module for any node: `start(observer?)` runs a loop that acts on `{ op, reply, ... }`
 * messages and reports `{ ok }` or `{ error: { name, code, message } }` (a refused operation is
 * caught inside the node and reported). Messages with no op go to the observer, if any.
 * One-shot entry points: `spawnOnce`, `callOnce` (steps: a refusal from the host ends the
 * process with the error), `rawService` (a hand-made request to the host's service process).
 */
export const agent = `
  import { receive, on, after, send, self, link, monitor, exit, trapExit, spawnOn, callHost, register } from 'subnode/process';
  import * as me from './agent';
  /** Waits for 'go', then runs \`fn(...args)\`: lets the host monitor a process before it acts. */
  export function later(fn: string, ...args: unknown[]) { return receive(on('go', () => (me as any)[fn](...args))); }
  function report(reply: string, what: () => unknown): void {
    try { send(reply, { ok: what() }); }
    catch (e: any) { send(reply, { error: { name: e && e.name, code: e && e.code, message: e && e.message } }); }
  }
  export function start(observer?: string, trap = false) { if (trap) trapExit(true); return loop(observer); }
  export function loop(observer?: string): unknown {
    return receive((m: any) => {
      switch (m && m.op) {
        case 'send': report(m.reply, () => { send(m.to, m.msg); return true; }); break;
        case 'link': report(m.reply, () => link(m.pid)); break;
        case 'monitor': report(m.reply, () => monitor(m.pid)); break;
        case 'exit': report(m.reply, () => exit(m.pid, m.reason)); break;
        case 'register': report(m.reply, () => register(m.name)); break;
        case 'whoami': send(m.reply, self()); break;
        case 'echo': send(m.reply, { echo: m.body, from: self() }); break;
        case 'crash': throw new Error(m.why || 'crashed on purpose');
        default: if (observer) send(observer, m);
      }
      return loop(observer);
    });
  }
  export function spawnOnce(reply: string, node: string, module: string, fn: string, args: unknown[]) {
    try { return spawnOn(node, module, fn, args, (pid) => { send(reply, { ok: pid }); }); }
    catch (e: any) { send(reply, { error: { name: e.name, code: e.code, message: e.message } }); return 'refused'; }
  }
  export function callOnce(reply: string, name: string, args: unknown[]) {
    try { return callHost(name, args, (value) => { send(reply, { ok: value }); }); }
    catch (e: any) { send(reply, { error: { name: e.name, code: e.code, message: e.message } }); return 'refused'; }
  }
  /** A service request made by hand (bypassing the kernel's own checks), and its reply. */
  export function rawService(reply: string, request: Record<string, unknown>) {
    const ref = 'raw-' + self();
    send('<host.0>', { ...request, ref, from: self() });
    return receive(on((m: any) => m && m.$serviceReply === ref, (m: any) => { send(reply, m); }), after(3000, () => { send(reply, 'no reply'); }));
  }
`;

/** A process that forwards every message it gets to `to` (a sink for "was anything delivered?"). */
export const sink = `
  import { receive, send } from 'subnode';
  export function forward(to: string): unknown { return receive((m: unknown) => { send(to, { sunk: m }); return forward(to); }); }
`;

/** Asks an agent process for an echo: proves it (and its node) still answer. */
export async function answers(system: System, inbox: Inbox, pid: Pid, timeoutMs = 3_000): Promise<boolean> {
  const body = `ping-${Math.random()}`;
  system.send(pid, { op: 'echo', reply: inbox.pid, body });
  const got = await inbox.receive<{ echo: string }>((m: { echo?: string }) => m?.echo === body, timeoutMs);
  return got.echo === body;
}

/** An agent op: sends it and returns what the agent reports. */
export async function ask(system: System, inbox: Inbox, pid: Pid, op: Record<string, unknown>, timeoutMs = 3_000): Promise<Outcome> {
  system.send(pid, { ...op, reply: inbox.pid });
  return inbox.receive<Outcome>((m: Outcome) => !!m && typeof m === 'object' && ('ok' in m || 'error' in m), timeoutMs);
}

const SENTINEL_KEY = '__subnodeHostSentinel';

/**
 * Marks the host: a sentinel on its globalThis, a copy of process.env, the own keys of the
 * built-in prototypes. `check()` asserts all are as they were.
 */
export function markHost(): { sentinel: string; key: string; check(): void } {
  const g = globalThis as Record<string, unknown>;
  const sentinel = `host-only-${process.pid}-${Date.now()}`;
  g[SENTINEL_KEY] = sentinel;
  const env = { ...process.env };
  const protoKeys = (o: object) => Reflect.ownKeys(o).map(String).sort();
  const objectKeys = protoKeys(Object.prototype);
  const arrayKeys = protoKeys(Array.prototype);
  const functionKeys = protoKeys(Function.prototype);
  return {
    sentinel,
    key: SENTINEL_KEY,
    check() {
      expect(g[SENTINEL_KEY]).toBe(sentinel);
      expect(process.env).toEqual(env);
      expect(protoKeys(Object.prototype)).toEqual(objectKeys);
      expect(protoKeys(Array.prototype)).toEqual(arrayKeys);
      expect(protoKeys(Function.prototype)).toEqual(functionKeys);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(typeof process.exit).toBe('function');
    },
  };
}

/**
 * Module-code snippet: `grabOutbox(hostPid)` returns the kernel's outbox (node → batch of signal
 * envelopes, flushed to the boundary at the end of the slice), found by hooking Map.prototype.get
 * during one legitimate send to the host. With it, module code can put any envelope on the wire:
 * what a subverted kernel could do. Only isolate-node.ts's checks stand between it and the host.
 */
export const subvert = `
  import { send as sendFromKernel } from 'subnode';
  export function grabOutbox(probeTo: string): Map<string, unknown[]> {
    const proto: any = Map.prototype;
    const get = proto.get;
    let box: any;
    proto.get = function (this: any, key: unknown) { if (key === 'host' && !box) box = this; return get.call(this, key); };
    try { sendFromKernel(probeTo, { probe: true }); } finally { proto.get = get; }
    if (!box) throw new Error('outbox not found');
    return box;
  }
  /** Puts envelopes on the wire to \`node\` as they are, bypassing every kernel check. */
  export function smuggle(probeTo: string, node: string, envelopes: unknown[]): void {
    const box = grabOutbox(probeTo);
    const batch = box.get(node);
    if (batch) batch.push(...envelopes); else box.set(node, envelopes);
  }
`;
