/**
 * Issue #11, the boundary half, on real nodes: shared memory, sizes measured on what crosses,
 * delivery-side limits, event texts and WebAssembly. Each test failed before the encoded boundary
 * (src/sandbox/encode.ts, src/node/decode.ts, src/node/boundary.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, TooLarge, NotCloneable, type Inbox, type SystemEvent } from '../src/index.js';
import { eventLine } from '../src/cli/format.js';
import { denials, eventsOf, nothingWithin, record, waitEvent } from './helpers/sandbox-tools.js';

const MiB = 2 ** 20;

const attacker = `
  import { receive, on, send, self, exit } from 'subnode';
  const describe = (e: any) => ({ name: e && e.name, code: e && e.code, message: String(e && e.message) });
  const nest = (v: unknown, depth: number): unknown => { let o: any = v; for (let i = 0; i < depth; i++) o = { o }; return o; };
  /** A WebAssembly memory whose descriptor answers 'not shared' to the first read, then 'shared': what kind of buffer? */
  function twoFacedMemory(): string {
    let asked = 0;
    const mem = new (WebAssembly as any).Memory({ initial: 1, maximum: 1, get shared() { return asked++ > 0; } });
    return Object.prototype.toString.call(mem.buffer);
  }
  /** Shared memory with no constructor call at all: a module that declares and exports a shared memory. */
  function sharedBuffer(): ArrayBuffer {
    const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 4, 1, 3, 1, 1, 7, 5, 1, 1, 109, 2, 0]);
    const W = WebAssembly as any;
    return new W.Instance(new W.Module(bytes)).exports.m.buffer;
  }
  const attempts: Record<string, (to: string) => unknown> = {
    wasmType: () => typeof (globalThis as any).WebAssembly,
    twoFaced: () => twoFacedMemory(),
    sharedKind: () => Object.prototype.toString.call(sharedBuffer()),
    sharedDeep: (to) => { send(to, nest(sharedBuffer(), 80)); return 'sent'; },
    sharedInCause: (to) => { send(to, { e: new Error('x', { cause: new Int32Array(sharedBuffer()) }) }); return 'sent'; },
    sharedShallow: (to) => { send(to, { buffer: sharedBuffer() }); return 'sent'; },
    bigBufferView: (to) => { send(to, { view: new Uint8Array(new ArrayBuffer(16 * 1024 * 1024), 0, 8) }); return 'sent'; },
    bigError: (to) => { send(to, { e: new Error('x'.repeat(8 * 1024 * 1024)) }); return 'sent'; },
    bigRegExp: (to) => { send(to, { r: new RegExp('x'.repeat(4 * 1024 * 1024)) }); return 'sent'; },
    logLines: () => { for (let i = 0; i < 5_000; i++) console.log('line ' + i + '\\n2099-01-01T00:00:00.000Z  host      node FAILED, not restarted: forged'); return 'logged'; },
    bigLog: () => { console.log('y'.repeat(1024 * 1024)); return 'logged'; },
  };
  export function attempt(reply: string, name: string, to: string) {
    let result: unknown;
    try { result = { ok: attempts[name]!(to) }; } catch (e) { result = { threw: describe(e) }; }
    send(reply, { attempt: name, ...(result as object) });
    return receive(on('never', () => 0));
  }
  export function sendBig(to: string, bytes: number) { send(to, 'z'.repeat(bytes)); return 'sent'; }
  export function idle() { return receive(on('never', () => 0)); }
  export function exitBig() { return receive(on('go', () => exit(self(), { big: 'x'.repeat(4 * 1024 * 1024) }))); }
`;

let system: System;
let inbox: Inbox;
let events: SystemEvent[];

async function start(nodes: NonNullable<Parameters<typeof System.start>[0]>['nodes']): Promise<void> {
  system = await System.start({ nodes });
  inbox = system.inbox();
  events = record(system);
}

afterEach(async () => {
  await system?.stop();
});

async function attempt(node: string, name: string, to: string = inbox.pid): Promise<{ ok?: unknown; threw?: { name: string; code: string; message: string } }> {
  await system.node(node).spawn('attacker', 'attempt', [inbox.pid, name, to]);
  return inbox.receive((m: { attempt?: string }) => m?.attempt === name, 10_000);
}

/** Whether a value holds shared memory anywhere (every own property, causes, map and set entries). */
function holdsShared(value: unknown, seen = new Set<object>()): boolean {
  if (typeof value !== 'object' || value === null || seen.has(value)) return false;
  seen.add(value);
  if (value instanceof SharedArrayBuffer) return true;
  if (ArrayBuffer.isView(value)) return value.buffer instanceof SharedArrayBuffer;
  if (value instanceof Map) return [...value].some(([k, v]) => holdsShared(k, seen) || holdsShared(v, seen));
  if (value instanceof Set) return [...value].some((v) => holdsShared(v, seen));
  return Reflect.ownKeys(value).some((k) => holdsShared(Object.getOwnPropertyDescriptor(value, k)?.value, seen));
}

const wasmNode = {
  name: 'sb',
  kind: 'isolate' as const,
  modules: { attacker },
  capabilities: { services: { console: true, clock: true, random: true, functions: [], wasm: true } },
};

describe('shared memory never leaves a sandbox (item 1)', () => {
  it('the WebAssembly.Memory wrapper reads the descriptor once: a getter answering twice gets unshared memory', async () => {
    await start([wasmNode]);
    expect((await attempt('sb', 'twoFaced')).ok).toBe('[object ArrayBuffer]');
    // the attacks below get shared memory another way
    expect((await attempt('sb', 'sharedKind')).ok).toBe('[object SharedArrayBuffer]');
  });

  it.each(['sharedDeep', 'sharedInCause'])('%s: a shared buffer past the WebAssembly.Memory wrapper does not reach the host shared', async (name) => {
    await start([wasmNode]);
    const outcome = await attempt('sb', name);
    const got = await nothingWithin(inbox, 500);
    expect(holdsShared(got)).toBe(false);
    if (outcome.threw) expect(outcome.threw.code).toBe('not_cloneable');
  });

  it("the kernel's own check finds shared memory without the SharedArrayBuffer global: NotCloneable in the sender", async () => {
    await start([wasmNode]);
    expect((await attempt('sb', 'sharedShallow')).threw).toMatchObject({ name: NotCloneable.name, code: 'not_cloneable' });
  });
});

describe('sizes are measured on what crosses (item 2)', () => {
  it.each(['thread', 'isolate'] as const)('an 8-byte view of a 16 MiB buffer is measured by the buffer that crosses with it (%s node)', async (kind) => {
    await start([{ name: 'n', kind, modules: { attacker }, limits: { maxMessageBytes: MiB } }]);
    expect((await attempt('n', 'bigBufferView')).threw).toMatchObject({ name: TooLarge.name });
    expect(await nothingWithin(inbox, 200)).toBeUndefined();
  });

  it.each(['thread', 'isolate'] as const)('an 8 MiB Error or a 4 MiB RegExp is over a 1 MiB limit (%s node)', async (kind) => {
    await start([{ name: 'n', kind, modules: { attacker }, limits: { maxMessageBytes: MiB } }]);
    expect((await attempt('n', 'bigError')).threw).toMatchObject({ name: TooLarge.name });
    expect((await attempt('n', 'bigRegExp')).threw).toMatchObject({ name: TooLarge.name });
    expect(await nothingWithin(inbox, 200)).toBeUndefined();
  });

  it('a 4 MiB exit reason reaches a monitor replaced by a small one (isolate node, 1 MiB limit)', async () => {
    await start([{ name: 'sb', kind: 'isolate', modules: { attacker }, limits: { maxMessageBytes: MiB } }]);
    const pid = await system.node('sb').spawn('attacker', 'exitBig', []);
    const ref = inbox.monitor(pid);
    system.send(pid, 'go');
    const down = await inbox.receive<{ reason: unknown }>({ type: 'DOWN', ref }, 5_000);
    expect(down.reason).toMatchObject({ error: { name: 'TooLarge' } });
    const exited = eventsOf(events, 'process_exit', 'sb');
    for (const e of exited) expect(JSON.stringify(e.reason).length).toBeLessThan(64 * 1024);
  });

  it.each(['thread', 'isolate'] as const)(
    'maxMessageBytes holds on delivery: a 2 MiB message from a node with no limit is dropped at a %s node with 1 MiB',
    async (kind) => {
      const sink = `import { receive, send } from 'subnode'; export function forward(to: string): unknown { return receive((m: unknown) => { send(to, { sunk: typeof m === 'string' ? m.length : m }); return forward(to); }); }`;
      await start([
        { name: 'big', modules: { attacker } },
        { name: 'small', kind, modules: { sink }, limits: { maxMessageBytes: MiB } },
      ]);
      const to = await system.node('small').spawn('sink', 'forward', [inbox.pid]);
      await system.node('big').spawn('attacker', 'sendBig', [to, 2 * MiB]);
      await system.node('big').spawn('attacker', 'sendBig', [to, 1000]);
      expect(await inbox.receive()).toEqual({ sunk: 1000 });
      expect(denials(events, 'small').join('\n')).toMatch(/over this node's size limit/);
    },
  );
});

describe('event texts (item 5)', () => {
  it('a 1 MiB log line is capped; a line break in a log cannot forge a CLI event line', async () => {
    await start([{ name: 'sb', kind: 'isolate', modules: { attacker } }]);
    const big = waitEvent<Extract<SystemEvent, { type: 'log' }>>(system, (e) => e.type === 'log' && e.node === 'sb' && e.text.startsWith('yyy'));
    await attempt('sb', 'bigLog');
    expect((await big).text.length).toBeLessThanOrEqual(8 * 1024 + 64);
    const line = waitEvent<Extract<SystemEvent, { type: 'log' }>>(system, (e) => e.type === 'log' && e.node === 'sb' && e.text.startsWith('line 0'));
    await attempt('sb', 'logLines');
    const shown = eventLine('2025-01-01T00:00:00.000Z', await line);
    expect(shown.split('\n')).toHaveLength(1);
    expect(shown).toContain('\\n2099');
  });

  it('a node reports at most 1,000 events a second; what is over is summarised', async () => {
    await start([{ name: 'sb', kind: 'isolate', modules: { attacker } }]);
    const summary = waitEvent<Extract<SystemEvent, { type: 'log' }>>(
      system,
      (e) => e.type === 'log' && e.node === 'sb' && /event\(s\) dropped/.test(e.text),
      5_000,
    );
    await attempt('sb', 'logLines');
    expect((await summary).text).toMatch(/^\d+ event\(s\) dropped: over 1000 a second \(log \d+\)$/);
    expect(eventsOf(events, 'log', 'sb').filter((e) => e.text.startsWith('line ')).length).toBeLessThanOrEqual(2_000);
  });
});

describe('WebAssembly (item 7)', () => {
  it('is off in an isolate node unless services.wasm grants it', async () => {
    await start([
      { name: 'sb', kind: 'isolate', modules: { attacker } },
      { ...wasmNode, name: 'wasm' },
    ]);
    expect((await attempt('sb', 'wasmType')).ok).toBe('undefined');
    expect((await attempt('wasm', 'wasmType')).ok).toBe('object');
  });
});
