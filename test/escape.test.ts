/**
 * The escape suite: hostile module code in an isolate node tries to get out. Every attempt must
 * fail INSIDE the sandbox. After each one, a process on another node still answers and the host's
 * own state (a sentinel on its globalThis, process.env, the built-in prototypes) is untouched.
 *
 * Two kinds of attacker: module code using the public API, and module code that subverts its own
 * kernel (they share the isolate's realm, so it can reach the kernel's outbox and process table)
 * to put arbitrary signals on the wire. Against the second, only the trusted side of the boundary
 * (src/node/isolate.ts) and the host stand.
 *
 * Tests marked BUG fail today: each describes the hole. Tests marked 'Regression' guard holes this
 * suite found that are fixed (517616e: sandbox hardening).
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { System, NotAllowed, Timeout, type Inbox, type Pid, type SystemEvent } from '../src/index.js';
import { sandboxed, sandboxedTalkingTo } from '../policies/capabilities.js';
import { until } from './helpers/wait.js';
import { agent, answers, denials, eventsOf, markHost, nothingWithin, record, sink, sleep, subvert, waitEvent } from './helpers/sandbox-tools.js';

// What a bare isolate's global holds: the ECMAScript built-ins (and `console` when granted).
const STANDARD = new Set([
  'AggregateError',
  'Array',
  'ArrayBuffer',
  'Atomics',
  'BigInt',
  'BigInt64Array',
  'BigUint64Array',
  'Boolean',
  'DataView',
  'Date',
  'Error',
  'EvalError',
  'FinalizationRegistry',
  'Float32Array',
  'Float64Array',
  'Function',
  'Infinity',
  'Int16Array',
  'Int32Array',
  'Int8Array',
  'Intl',
  'JSON',
  'Map',
  'Math',
  'NaN',
  'Number',
  'Object',
  'Promise',
  'Proxy',
  'RangeError',
  'ReferenceError',
  'Reflect',
  'RegExp',
  'Set',
  'SharedArrayBuffer',
  'String',
  'Symbol',
  'SyntaxError',
  'TypeError',
  'URIError',
  'Uint16Array',
  'Uint32Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'WeakMap',
  'WeakRef',
  'WeakSet',
  'WebAssembly',
  'decodeURI',
  'decodeURIComponent',
  'encodeURI',
  'encodeURIComponent',
  'escape',
  'eval',
  'globalThis',
  'isFinite',
  'isNaN',
  'parseFloat',
  'parseInt',
  'undefined',
  'unescape',
  'console',
  'Float16Array',
  'Iterator',
  'SuppressedError',
  'DisposableStack',
  'AsyncDisposableStack',
]);

/**
 * The attacker. `attempt(reply, name, ...args)` runs one attempt and reports
 * `{ attempt, ok }` or `{ attempt, threw: { name, message } }`; other exports are processes.
 */
const escape = `
  import { receive, on, after, send, self, spawn, next, exit, link, ANY } from 'subnode';
  import * as fsNamespace from 'fs';
  import { smuggle, grabOutbox } from 'subvert';
  import * as me from './escape';
  declare const require: (name: string) => any;

  const describe = (e: any) => ({ name: e && e.name, message: String(e && e.message !== undefined ? e.message : e) });
  // What module-level require() gives for Node's modules: namespaces of (unloaded) node modules, or errors.
  export const required: Record<string, unknown> = {};
  for (const name of ['fs', 'node:fs', 'child_process', 'worker_threads', 'isolated-vm', '../../src/index', 'http']) {
    try {
      const m = require(name);
      let use: unknown;
      try { use = typeof m.readFileSync === 'function' ? 'has readFileSync' : String(m.readFileSync); } catch (e) { use = describe(e); }
      required[name] = { got: typeof m, use };
    } catch (e) { required[name] = { threw: describe(e) }; }
  }

  const attempts: Record<string, (...args: any[]) => unknown> = {
    typeofProcess: () => typeof (globalThis as any).process,
    useProcess: () => (process as any).env,
    requireResults: () => required,
    importedFs: () => (fsNamespace as any).readFileSync('/etc/passwd', 'utf8'),
    hostGlobal: (key: string) => [typeof (globalThis as any)[key], typeof (Function('return this')() as any)[key]],
    extraGlobals: (standard: string[]) => Object.getOwnPropertyNames(globalThis).filter((n) => !standard.includes(n)),
    nodeApis: () => ['process', 'require', 'module', 'Buffer', 'setTimeout', 'setImmediate', 'queueMicrotask', 'fetch', 'performance', 'ivm', '$bridge', '$subnode', '_ivm']
      .filter((n) => (globalThis as any)[n] !== undefined),
    ctorCtorProcess: () => (function (this: any) { return this.constructor.constructor('return process')(); }).call({}),
    thisCtorAtTop: () => (function (this: any) { return this.constructor.constructor('return process')(); })(),
    objectCtorThis: () => {
      const g = ({} as any).constructor.constructor('return this')();
      return { same: g === globalThis, process: typeof g.process, require: typeof g.require, bridge: typeof g.$bridge, subnode: typeof g.$subnode };
    },
    functionThis: () => {
      const g = Function('return this')();
      return { same: g === globalThis, process: typeof g.process, require: typeof g.require };
    },
    indirectEval: () => [(0, eval)('typeof process'), (0, eval)('typeof require'), (0, eval)('this === globalThis')],
    kernelObjects: () => {
      // The API's objects lead to the kernel's classes, which live in this realm too.
      const r: any = receive(() => 0);
      return [r.constructor.constructor('return typeof process')(), r.version.constructor.constructor('return typeof require')()];
    },
    stackFrames: () => {
      const E: any = Error;
      const saved = E.prepareStackTrace;
      const found: string[] = [];
      E.prepareStackTrace = (_e: unknown, frames: any[]) => {
        for (const f of frames) {
          for (const v of [f.getThis && f.getThis(), f.getFunction && f.getFunction()]) {
            if (!v) continue;
            try { found.push(String(v.constructor.constructor('return typeof process')())); } catch (e) { found.push('threw'); }
          }
        }
        return 'x';
      };
      try { void new Error('probe').stack; } finally { E.prepareStackTrace = saved; }
      return found.filter((t) => t !== 'undefined' && t !== 'threw');
    },
    pollute: () => {
      (Object.prototype as any).polluted = 'by the sandbox';
      (Array.prototype as any).polluted = 'by the sandbox';
      (Function.prototype as any).polluted = 'by the sandbox';
      return ({} as any).polluted;
    },
    seePollution: () => [({} as any).polluted, ([] as any).polluted],
    alloc: () => new ArrayBuffer(2 ** 30).byteLength,
    repeat: () => 'x'.repeat(2 ** 30).length,
    recurse: () => { const f = (n: number): number => f(n + 1) + 1; return f(0); },
    sendTo: (to: unknown) => { send(to as string, 'smuggled'); return 'sent'; },
    exitOther: (pid: string) => exit(pid as never, 'kill'),
    linkOther: (pid: string) => link(pid as never),
    fakeServiceReply: (pid: string) => { send(pid as string, { $serviceReply: '#Ref<t.0.1>', ok: 'forged' }); return 'sent'; },
    loadedModule: (name: string) => require(name).anything,
    // the clock, withheld on this node: other ways to it than Date.now and new Date()
    clockViaPrototype: () => typeof (Object.getPrototypeOf(Date) as any).now(),
    clockViaConstructor: () => typeof new ((new Date(0)) as any).constructor().getTime(),
    clockViaIntl: () => new Intl.DateTimeFormat('en', { hour: 'numeric', minute: 'numeric', second: 'numeric', fractionalSecondDigits: 3 } as any).format(),
  };

  export function attempt(reply: string, name: string, ...args: unknown[]) {
    let result: Record<string, unknown>;
    try { result = { ok: attempts[name]!(...args) }; } catch (e) { result = { threw: describe(e) }; }
    send(reply, { attempt: name, ...result });
  }

  /**
   * Waits for 'go', then runs \`fn(...args)\`: the attack starts from a delivered message, not
   * inside the host's spawn call (see the re-entrancy bug in isolate-nodes.test.ts).
   */
  export function gate(fn: string, ...args: unknown[]) { return receive(on('go', () => (me as any)[fn](...args))); }

  /** Steps of a process that die by design: the reason says how. */
  export function die(name: string, ...args: unknown[]) { return receive(on('go', () => attempts[name]!(...args))); }

  export function dynamicImport(reply: string) {
    const out: Record<string, unknown> = {};
    const settle = (key: string, p: Promise<unknown>) => p.then(
      (m: any) => { try { out[key] = { resolved: typeof m.readFileSync }; } catch (e) { out[key] = { usedThrew: describe(e) }; } },
      (e) => { out[key] = { rejected: describe(e) }; });
    let raw: Promise<unknown>;
    try { raw = Function('return import("fs")')(); } catch (e) { raw = Promise.reject(e); }
    Promise.all([settle('typescript', import('fs') as Promise<unknown>), settle('raw', raw)]).then(() => send(reply, { dynamicImport: out }));
  }

  export function proxyOut(to: string) {
    const target = { visible: 1 };
    const p = new Proxy(target, { get(t: any, k) { return k === 'visible' ? 'trap ran' : t[k]; }, ownKeys: () => ['visible'],
      getOwnPropertyDescriptor: () => ({ value: 'trap ran', enumerable: true, configurable: true, writable: true }) });
    send(to, { proxy: p });
    return 'sent';
  }
  export function getterOut(to: string) {
    const o = { get lazy() { return 'computed in the sandbox'; } };
    send(to, o);
    return 'sent';
  }
  export function endlessGetterOut(to: string) {
    send(to, { get lazy(): string { for (;;) {} } });
    return 'sent';
  }
  export function protoKeysOut(to: string) {
    send(to, JSON.parse('{"__proto__": {"polluted": "via __proto__"}, "constructor": {"prototype": {"polluted": "via constructor"}}, "plain": 1}'));
    return 'sent';
  }
  export function sharedOut(to: string, reply: string, how = 'sab') {
    let view: Int32Array;
    let message: unknown;
    try {
      if (how === 'sab') {
        const sab = new SharedArrayBuffer(8);
        view = new Int32Array(sab);
        message = { sab, view };
      } else {
        // Shared memory without the SharedArrayBuffer global: a shared WebAssembly memory.
        const mem = new (WebAssembly as any).Memory({ initial: 1, maximum: 1, shared: true });
        view = new Int32Array(mem.buffer);
        message = how === 'wasmMemory' ? { mem } : { buffer: mem.buffer };
      }
    } catch (e) { send(reply, { refused: describe(e) }); return 'no shared memory here'; }
    view[0] = 7;
    try { send(to, message); } catch (e) { send(reply, { refused: describe(e) }); }
    // Reports what it sees in its own buffer after the receiver wrote to its copy.
    return receive(on('check', () => { send(reply, { seen: view[0] }); }), after(5_000, () => 'timeout'));
  }
  export function waitForever(reply: string) {
    send(reply, 'waiting');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    send(reply, 'woke');
  }
  export function tick(n: number): unknown { return receive(after(1, () => (n > 0 ? tick(n - 1) : 'done'))); }
  export function flood(reply: string, count: number, rounds: number) {
    let i = 0;
    const batch = (): unknown => {
      for (let j = 0; j < 2000 && i < count; j++, i++) spawn(tick, rounds);
      if (i < count) return next(batch);
      send(reply, { spawned: i });
      return 'ok';
    };
    return batch();
  }

  // ---- a subverted kernel: envelopes put on the wire as they are ----
  export function smuggleTo(probe: string, node: string, envelopes: unknown[], reply: string) {
    smuggle(probe, node, envelopes);
    send(reply, { smuggled: envelopes.length });
  }
  /** A message to the host's service process claiming to come from another node's process. */
  export function forgeServiceRequest(reply: string, request: Record<string, unknown>) {
    send('<host.0>', request);
    send(reply, { forged: true });
  }
  /** Replies to whatever system.call() the host may have in flight: inbox pids and refs are counters. */
  export function sprayReplies(reply: string, inboxes: number, refs: number) {
    for (let i = 1; i <= inboxes; i++) for (let r = 1; r <= refs; r++) send('<host.' + i + '>', { $reply: '#Ref<host.call.' + r + '>', value: 'forged by the sandbox' });
    send(reply, { sprayed: inboxes * refs });
  }
  /**
   * Takes over a global name held by another node's process: through the kernel's own objects,
   * makes a process of this node look like the holder, ends it (the kernel then reports the name
   * unregistered), and registers the name for itself.
   */
  export function hijackGlobal(name: string, reply: string) {
    const holder = whereisGlobalName(name);
    const r: any = receive(() => 0);
    const me: any = [...r.version.processes].find((p: any) => p.pid === self());
    me.globalName = name;
    me.pid = holder;
    spawn(() => receive(after(50, () => { try { registerGlobalName(name); send(reply, { registered: self() }); } catch (e) { send(reply, { refused: describe(e) }); } return grabbed(reply); })));
    exit('normal-looking');
  }
  function grabbed(reply: string): unknown { return receive((m: unknown) => { send(reply, { intercepted: m }); return grabbed(reply); }); }
  import { whereisGlobal as whereisGlobalName, registerGlobal as registerGlobalName } from 'subnode';
`;

/** The host function a sandbox may call in the `__proto__` test: describes what it received. */
const hostFunctions = {
  inspect: (arg: Record<string, unknown>) => ({
    protoIsObject: Object.getPrototypeOf(arg) === Object.prototype,
    ownKeys: Object.keys(arg).sort(),
    hostPolluted: ({} as Record<string, unknown>).polluted ?? null,
  }),
};

let system: System;
let events: SystemEvent[];
let inbox: Inbox;
/** A process on the thread node: "another node still answers". */
let witness: Pid;
/** A process in the sandbox that is not part of the attack: "the sandbox's own node still answers". */
let bystander: Pid;
let host: ReturnType<typeof markHost>;

beforeAll(() => {
  host = markHost();
});

beforeEach(async () => {
  system = await System.start({
    hostFunctions,
    nodes: [
      // talks to no node; may load only these modules
      {
        name: 'sb',
        kind: 'isolate',
        ...sandboxed,
        capabilities: { ...sandboxed.capabilities, modules: ['agent', 'escape', 'subvert'] },
        modules: { agent, subvert, escape },
      },
      // may talk to 't' and call one host function
      {
        name: 'sb2',
        kind: 'isolate',
        ...sandboxedTalkingTo('t'),
        capabilities: { ...sandboxedTalkingTo('t').capabilities, services: { console: true, clock: false, random: false, functions: ['inspect'] } },
        modules: { agent, subvert, escape },
      },
      { name: 't', modules: { agent, sink } },
    ],
  });
  events = record(system);
  inbox = system.inbox();
  witness = await system.node('t').spawn('agent', 'start', []);
  bystander = await system.node('sb').spawn('agent', 'start', []);
});

afterEach(async () => {
  // The host and the other node are unharmed, whatever the attempt did.
  host.check();
  expect(await answers(system, inbox, witness)).toBe(true);
  expect(system.node('t').summary()).toMatchObject({ status: 'running', creation: 0 });
  await system.stop();
});

async function attempt(name: string, args: unknown[] = [], node = 'sb'): Promise<{ ok?: any; threw?: { name: string; message: string } }> {
  await launch('attempt', [inbox.pid, name, ...args], node);
  return inbox.receive((m: { attempt?: string }) => m?.attempt === name, 5_000);
}

/** Spawns `escape.fn(...args)` behind a gate and opens it (a message): the attack runs in a slice of its own. */
async function launch(fn: string, args: unknown[] = [], node = 'sb'): Promise<Pid> {
  const pid = await system.node(node).spawn('escape', 'gate', [fn, ...args]);
  system.send(pid, 'go');
  return pid;
}

/** Runs `escape.die(name, ...args)` in a process and returns its exit reason. */
async function dies(name: string, args: unknown[] = [], node = 'sb'): Promise<unknown> {
  const pid = await system.node(node).spawn('escape', 'die', [name, ...args]);
  const ref = inbox.monitor(pid);
  system.send(pid, 'go'); // after the monitor, on the same path
  return (await inbox.receive<{ reason: unknown }>({ type: 'DOWN', ref }, 10_000)).reason;
}

const sandboxAnswers = async () => expect(await answers(system, inbox, bystander)).toBe(true);

describe('reaching Node from module code', () => {
  it('process is not defined', async () => {
    expect(await attempt('typeofProcess')).toEqual({ attempt: 'typeofProcess', ok: 'undefined' });
    expect((await attempt('useProcess')).threw).toEqual({ name: 'ReferenceError', message: 'process is not defined' });
    await sandboxAnswers();
  });

  it("require('fs') and friends give only the node's own (empty) module namespaces or errors", async () => {
    const { ok } = await attempt('requireResults');
    expect(ok).toEqual({
      fs: { got: 'object', use: { name: 'UnknownModule', message: "module 'fs' has no current version on node 'sb'" } },
      'node:fs': { threw: { name: 'Error', message: "'node:fs' is not available inside a node: import node modules by name, or 'subnode'" } },
      child_process: { got: 'object', use: { name: 'UnknownModule', message: "module 'child_process' has no current version on node 'sb'" } },
      worker_threads: { got: 'object', use: { name: 'UnknownModule', message: "module 'worker_threads' has no current version on node 'sb'" } },
      'isolated-vm': { got: 'object', use: { name: 'UnknownModule', message: "module 'isolated-vm' has no current version on node 'sb'" } },
      '../../src/index': { got: 'object', use: { name: 'UnknownModule', message: "module 'index' has no current version on node 'sb'" } },
      http: { got: 'object', use: { name: 'UnknownModule', message: "module 'http' has no current version on node 'sb'" } },
    });
    expect((await attempt('importedFs')).threw).toMatchObject({ name: 'UnknownModule' });
    // and the host will not load a module of that name into this node
    await expect(system.node('sb').load('fs', 'export function readFileSync() { return "fake"; }')).rejects.toBeInstanceOf(NotAllowed);
  });

  it("import('fs') fails: as compiled (a namespace of this node) and as a real dynamic import (rejected)", async () => {
    await launch('dynamicImport', [inbox.pid]);
    const { dynamicImport } = await inbox.receive<{ dynamicImport: Record<string, any> }>();
    expect(dynamicImport.typescript).toEqual({ usedThrew: { name: 'UnknownModule', message: "module 'fs' has no current version on node 'sb'" } });
    expect(dynamicImport.raw).toHaveProperty('rejected');
    expect(dynamicImport.raw).not.toHaveProperty('resolved');
    await sandboxAnswers();
  });

  it("the host's globalThis is not the sandbox's: a host sentinel is undefined inside; only ES built-ins are there", async () => {
    expect((await attempt('hostGlobal', [host.key])).ok).toEqual(['undefined', 'undefined']);
    expect((await attempt('extraGlobals', [[...STANDARD]])).ok).toEqual([]);
    expect((await attempt('nodeApis')).ok).toEqual([]);
  });

  it("this.constructor.constructor('return process')() gives no process", async () => {
    expect((await attempt('ctorCtorProcess')).threw).toEqual({ name: 'ReferenceError', message: 'process is not defined' });
    expect((await attempt('thisCtorAtTop')).threw).toMatchObject({ name: 'TypeError' }); // strict mode: `this` is undefined
  });

  it("({}).constructor.constructor('return this')() and Function('return this')() give the isolate's own global", async () => {
    expect((await attempt('objectCtorThis')).ok).toEqual({ same: true, process: 'undefined', require: 'undefined', bridge: 'undefined', subnode: 'undefined' });
    expect((await attempt('functionThis')).ok).toEqual({ same: true, process: 'undefined', require: 'undefined' });
    expect((await attempt('indirectEval')).ok).toEqual(['undefined', 'undefined', true]);
  });

  it("the kernel's objects and stack frames lead only to the isolate's realm", async () => {
    expect((await attempt('kernelObjects')).ok).toEqual(['undefined', 'undefined']);
    expect((await attempt('stackFrames')).ok).toEqual([]);
  });
});

describe('services withheld stay withheld', () => {
  // Regression: lockdown() used to put a guard in place of Date that inherited from the real Date
  // (Object.setPrototypeOf(Guarded, NativeDate)), Date.prototype.constructor was still the real
  // Date, and Intl.DateTimeFormat#format() with no argument formatted the current time.
  it.each([
    ['Object.getPrototypeOf(Date).now()', 'clockViaPrototype'],
    ['new (new Date(0).constructor)()', 'clockViaConstructor'],
    ['new Intl.DateTimeFormat().format()', 'clockViaIntl'],
  ])('the clock cannot be read through %s', async (_how, name) => {
    const outcome = await attempt(name);
    expect(outcome.ok, `read the clock: ${JSON.stringify(outcome.ok)}`).toBeUndefined();
    expect(outcome.threw?.message).toMatch(/not granted/);
  });
});

describe('prototype pollution', () => {
  it("Object.prototype.polluted set inside shows on neither the host's {} nor another isolate node's", async () => {
    expect((await attempt('pollute')).ok).toBe('by the sandbox');
    expect((await attempt('seePollution')).ok).toEqual(['by the sandbox', 'by the sandbox']); // its own realm, yes
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect((await attempt('seePollution', [], 'sb2')).ok).toEqual([undefined, undefined]);
    await sandboxAnswers();
  });

  it('__proto__ and constructor keys in messages arriving on the host stay plain data', async () => {
    await launch('protoKeysOut', [inbox.pid]);
    const got = await inbox.receive<Record<string, unknown>>();
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got).sort()).toEqual(['__proto__', 'constructor', 'plain']);
    expect(Object.getOwnPropertyDescriptor(got, '__proto__')?.value).toEqual({ polluted: 'via __proto__' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // and as a host function's argument
    await system.node('sb2').spawn('agent', 'callOnce', [inbox.pid, 'inspect', [JSON.parse('{"__proto__": {"polluted": "yes"}, "a": 1}')]]);
    expect(await inbox.receive()).toEqual({ ok: { protoIsObject: true, ownKeys: ['__proto__', 'a'], hostPolluted: null } });
  });
});

describe('shared memory', () => {
  // Regression: a SharedArrayBuffer sent out of the sandbox kept its memory shared, with the host
  // and with other nodes (isolated-vm and postMessage both share SABs). Now the sandbox has no
  // SharedArrayBuffer and the boundary refuses messages holding one.
  // BUG (the wasmMemory cases): a shared WebAssembly.Memory object itself (not its buffer) passes
  // holdsSharedMemory() at the boundary, and arrives on the host or another node still backed by
  // the sandbox's memory: writes on either side show on the other.
  it.each([
    ['a SharedArrayBuffer', 'sab', 'the host'],
    ['a SharedArrayBuffer', 'sab', 'another node'],
    ['the buffer of a shared WebAssembly.Memory', 'wasmBuffer', 'the host'],
    ['the buffer of a shared WebAssembly.Memory', 'wasmBuffer', 'another node'],
    ['a shared WebAssembly.Memory', 'wasmMemory', 'the host'],
    ['a shared WebAssembly.Memory', 'wasmMemory', 'another node'],
  ])('%s (%s) sent to %s is refused or copied, never shared', async (_what, how, where) => {
    const to = where === 'the host' ? inbox.pid : await system.node('t').spawn('sink', 'forward', [inbox.pid]);
    const sender = await launch('sharedOut', [to, inbox.pid, how], 'sb2');
    const first = (await nothingWithin(inbox, 1_000)) as any;
    if (first === undefined || 'refused' in first) return; // refused, in the sandbox or at the boundary: fine
    const got = where === 'the host' ? first : first.sunk;
    const view = how === 'sab' ? got.view : new Int32Array(how === 'wasmMemory' ? got.mem.buffer : got.buffer);
    expect(view[0]).toBe(7);
    view[0] = 99; // the receiver writes to what it got
    system.send(sender, 'check');
    expect(await inbox.receive<{ seen: number }>((m: any) => m && 'seen' in m)).toEqual({ seen: 7 });
  });

  it('Atomics.wait forever is unavailable or cut by the CPU limit; the node goes on', async () => {
    const exited = waitEvent<Extract<SystemEvent, { type: 'process_exit' }>>(system, (e) => e.type === 'process_exit' && e.node === 'sb', 5_000);
    await launch('waitForever', [inbox.pid]);
    expect(await inbox.receive()).toBe('waiting');
    const { reason } = await exited;
    if (!(reason && typeof reason === 'object' && 'cpu_limit' in reason))
      expect(reason).toMatchObject({ error: { name: 'ReferenceError', message: 'Atomics is not defined' } });
    expect(await nothingWithin(inbox, 100)).toBeUndefined();
    await sandboxAnswers();
  });
});

describe('resource attacks', () => {
  it('a timers flood (20,000 processes looping on after(1)) leaves the host responsive', async () => {
    await system.stop();
    system = await System.start({
      nodes: [
        { name: 'sb', kind: 'isolate', ...sandboxed, limits: { ...sandboxed.limits, memoryMb: 128 }, modules: { agent, subvert, escape } },
        { name: 't', modules: { agent } },
      ],
    });
    inbox = system.inbox();
    witness = await system.node('t').spawn('agent', 'start', []);
    bystander = await system.node('sb').spawn('agent', 'start', []);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await launch('flood', [inbox.pid, 20_000, 100]);
    expect(await inbox.receive(undefined, 10_000)).toEqual({ spawned: 20_000 });
    let worst = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      expect(await answers(system, inbox, witness)).toBe(true);
      worst = Math.max(worst, performance.now() - t0);
      await sleep(30);
    }
    delay.disable();
    expect(worst).toBeLessThan(250);
    expect(delay.max / 1e6).toBeLessThan(250);
    // the flooded node itself still answers, if slowly
    expect(await answers(system, inbox, bystander, 10_000)).toBe(true);
  });

  it.each(['alloc', 'repeat'])('a huge allocation (%s, 1 GiB) kills the process or restarts the node; the host survives', async (how) => {
    const restarted = waitEvent(system, (e) => e.type === 'node_restarted' && e.node === 'sb', 10_000).catch(() => undefined);
    const outcome = await Promise.race([dies(how), restarted.then(() => 'node restarted')]);
    if (outcome !== 'node restarted') expect(outcome).toMatchObject({ error: { name: 'RangeError' } });
    else expect(eventsOf(events, 'node_down', 'sb')[0]?.reason).toMatch(/memory/);
    const pid = outcome === 'node restarted' ? await system.node('sb').spawn('agent', 'start', []) : bystander;
    expect(await answers(system, inbox, pid)).toBe(true);
  });

  it('deep recursion: the process dies with RangeError, the node lives', async () => {
    expect(await dies('recurse')).toMatchObject({ error: { name: 'RangeError', message: 'Maximum call stack size exceeded' } });
    await sandboxAnswers();
    expect(system.node('sb').summary().creation).toBe(0);
  });
});

describe('addressing what it may not', () => {
  it('sending to a node it may not address: NotAllowed inside, capability_denied, nothing delivered', async () => {
    const target = await system.node('t').spawn('sink', 'forward', [inbox.pid]);
    for (const to of [target, { name: 'anything', node: 't' }]) {
      expect((await attempt('sendTo', [to])).threw).toEqual({ name: 'NotAllowed', message: "node 'sb' may not send to node 't'" });
    }
    expect(denials(events, 'sb')).toEqual(["send to node 't'", "send to node 't'"]);
    expect(await nothingWithin(inbox, 150, { sunk: 'smuggled' })).toBeUndefined();
  });

  it("forging through the API: exit('<t.N>', 'kill') and link to another node's pid are refused", async () => {
    expect((await attempt('exitOther', [witness])).threw).toMatchObject({ name: 'NotAllowed' });
    expect((await attempt('linkOther', [witness])).threw).toMatchObject({ name: 'NotAllowed' });
    expect((await attempt('fakeServiceReply', [witness])).threw).toMatchObject({ name: 'NotAllowed' });
    expect(await system.node('t').processInfo(witness)).toMatchObject({ status: 'waiting', links: [] });
  });

  it('a subverted kernel: signals to a node not granted are stopped at the boundary', async () => {
    const target = await system.node('t').spawn('sink', 'forward', [inbox.pid]);
    await launch('smuggleTo', [
      '<host.999>',
      't',
      [
        [0, target, 'smuggled'],
        [3, witness, '<sb.1>', 'kill', 0],
      ],
      inbox.pid,
    ]);
    expect(await inbox.receive()).toEqual({ smuggled: 2 });
    await until('the boundary to report', () => denials(events, 'sb').length >= 1);
    expect(denials(events, 'sb')).toEqual(["2 signal(s) to node 't' (stopped at the isolate boundary)"]);
    expect(await nothingWithin(inbox, 150, { sunk: 'smuggled' })).toBeUndefined();
    await sandboxAnswers();
  });

  it("a subverted kernel: signals claiming to come from another node's process are stopped at the boundary", async () => {
    const target = await system.node('t').spawn('agent', 'start', [inbox.pid]);
    const forged = [
      [3, target, witness, 'kill', 0], // exit(target, kill) "from" the witness
      [3, target, witness, 'boom', 1], // a link's exit "from" the witness
      [1, target, witness], // a link "from" the witness
      [6, target, witness, '#Ref<t.0.1>', 'gone'], // a DOWN "about" the witness
      [3, target, 'not a pid', 'kill', 0],
    ];
    await launch('smuggleTo', ['<host.999>', 't', forged, inbox.pid], 'sb2');
    expect(await inbox.receive()).toEqual({ smuggled: 5 });
    await until('the boundary to report', () => denials(events, 'sb2').length >= 5);
    expect(denials(events, 'sb2')).toEqual([
      `a signal claiming to come from ${witness} (stopped at the isolate boundary)`,
      `a signal claiming to come from ${witness} (stopped at the isolate boundary)`,
      `a signal claiming to come from ${witness} (stopped at the isolate boundary)`,
      `a signal claiming to come from ${witness} (stopped at the isolate boundary)`,
      'a signal claiming to come from not a pid (stopped at the isolate boundary)',
    ]);
    expect(await system.node('t').processInfo(target)).toMatchObject({ status: 'waiting', links: [] });
    expect(await nothingWithin(inbox, 100)).toBeUndefined();
  });

  it('a subverted kernel: malformed and oversized signals are stopped at the boundary', async () => {
    const big = 'x'.repeat(70 * 1024); // over the sandboxed 64 KiB
    await launch('smuggleTo', [
      '<host.999>',
      'host',
      [
        [99, inbox.pid, 'x'],
        ['not', 'a', 'signal'],
        [0, 42, 'x'],
        [0, inbox.pid, { big }],
      ],
      inbox.pid,
    ]);
    expect(await inbox.receive((m: any) => m && 'smuggled' in m)).toEqual({ smuggled: 4 });
    await until('the boundary to report', () => denials(events, 'sb').length >= 4);
    expect(denials(events, 'sb')).toEqual([
      'a malformed signal (stopped at the isolate boundary)',
      'a malformed signal (stopped at the isolate boundary)',
      'a malformed signal (stopped at the isolate boundary)',
      'a message over the size limit (stopped at the isolate boundary)',
    ]);
    expect(await nothingWithin(inbox, 100, (m: any) => m && typeof m === 'object' && 'big' in m)).toBeUndefined();
  });

  it("a { $service } request forging another node's pid is refused at the boundary; nothing is spawned or called", async () => {
    const before = (await system.node('t').processes()).length;
    await launch('forgeServiceRequest', [inbox.pid, { $service: 'spawn', ref: 'r1', from: witness, node: 't', module: 'agent', fn: 'start', args: [] }]);
    await launch('forgeServiceRequest', [inbox.pid, { $service: 'host', ref: 'r2', from: witness, name: 'inspect', args: [{}] }]);
    await launch('forgeServiceRequest', [inbox.pid, { $service: 'spawn', ref: 'r3', from: 'garbage', node: 't', module: 'agent', fn: 'start', args: [] }]);
    for (let i = 0; i < 3; i++) await inbox.receive({ forged: true });
    await until('the boundary to report', () => denials(events, 'sb').length >= 3);
    expect(denials(events, 'sb')).toEqual([
      'a service request for another node (stopped at the isolate boundary)',
      'a service request for another node (stopped at the isolate boundary)',
      'a service request for another node (stopped at the isolate boundary)',
    ]);
    expect((await system.node('t').processes()).length).toBe(before);
  });

  it("a crafted $serviceReply reaches no other node's process; sent to the host's service it is answered with an error", async () => {
    expect((await attempt('fakeServiceReply', [witness])).threw).toMatchObject({ name: 'NotAllowed' });
    await system.node('sb').spawn('agent', 'rawService', [inbox.pid, { $serviceReply: '#Ref<t.0.1>', ok: 'forged' }]);
    expect(await inbox.receive()).toMatchObject({ error: { code: 'bad_argument' } });
  });

  it('loading a module it may not load: refused on the host; inside, the name is an empty namespace', async () => {
    const error = await system
      .node('sb')
      .load('evil', 'export const x = 1;')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotAllowed);
    expect(denials(events, 'sb')).toEqual(["load module 'evil'"]);
    expect((await attempt('loadedModule', ['evil'])).threw).toEqual({ name: 'UnknownModule', message: "module 'evil' has no current version on node 'sb'" });
    expect((await system.node('sb').modules()).map((m) => m.name).sort()).toEqual(['agent', 'escape', 'subvert']);
  });
});

describe('messages that are not plain data', () => {
  it('a getter-laden message runs its getters in the sandbox only; the host gets plain data', async () => {
    await launch('getterOut', [inbox.pid]);
    const got = await inbox.receive<Record<string, unknown>>();
    expect(Object.getOwnPropertyDescriptor(got, 'lazy')).toEqual({ value: 'computed in the sandbox', writable: true, enumerable: true, configurable: true });
    await sandboxAnswers();
  });

  it('a getter that never returns is cut by the CPU limit inside the sandbox; the host does not hang', async () => {
    const exited = waitEvent(system, (e) => e.type === 'process_exit' && e.node === 'sb', 5_000);
    await launch('endlessGetterOut', [inbox.pid]);
    expect(await exited).toMatchObject({ reason: { cpu_limit: 200 } });
    await sandboxAnswers();
  });

  // Regression: the kernel accepts the Proxy (its traps answer like a plain object), the batch
  // failed to clone at the bridge, and the kernel never cleared its outbox: that batch was retried
  // and failed at every slice, so nothing the node sent to that destination arrived again.
  it('a Proxy sent out is refused or copied, and the node goes on sending', async () => {
    await launch('proxyOut', [inbox.pid]);
    const got = await nothingWithin(inbox, 500);
    if (got !== undefined) {
      // copied: plain data, no trap left
      expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
      expect(Object.getPrototypeOf((got as { proxy: object }).proxy)).toBe(Object.prototype);
    }
    // Whatever happened to the Proxy, the node's other processes can still talk to the host.
    expect(await answers(system, inbox, bystander, 1_500)).toBe(true);
  });
});

describe('forging what the host trusts', () => {
  // Regression: the router took a DOWN for any inbox monitor whose ref matched, whoever sent it,
  // and host monitor refs were counters (#Ref<host.0.N>): a subverted kernel could fire the
  // host's monitors of other nodes' processes (making system.call fail with NoProcess, say).
  it("a subverted kernel cannot fire the host's monitor of another node's process", async () => {
    const ref = inbox.monitor(witness);
    await sleep(30);
    await launch('smuggleTo', ['<host.999>', 'host', [[6, inbox.pid, '<sb.1>', ref, 'forged']], inbox.pid]);
    expect(await inbox.receive((m: any) => m && 'smuggled' in m)).toEqual({ smuggled: 1 });
    expect(await nothingWithin(inbox, 300, { type: 'DOWN', ref })).toBeUndefined();
    // naming the watched process as the sender instead: stopped at the boundary
    await launch('smuggleTo', ['<host.999>', 'host', [[6, inbox.pid, witness, ref, 'forged']], inbox.pid]);
    expect(await inbox.receive((m: any) => m && 'smuggled' in m)).toEqual({ smuggled: 1 });
    expect(await nothingWithin(inbox, 300, { type: 'DOWN', ref })).toBeUndefined();
    expect(denials(events, 'sb')).toContain(`a signal claiming to come from ${witness} (stopped at the isolate boundary)`);
  });

  // Regression: system.call() waits for `{ $reply: ref }` in a fresh inbox, and both the inbox pid
  // (<host.N>) and the ref (#Ref<host.call.N>) were counters. Any sandbox may send to the host,
  // so it could answer another node's server call for it, with no subversion at all.
  it("a sandbox cannot answer the host's call to another node's server", async () => {
    const silent = `
      export function init() { return 0; }
      export function handleCall(_r: unknown, _f: unknown, s: number) { return { noreply: s }; }
    `;
    await system.node('t').load('silent', silent);
    const server = await system.node('t').startServer('silent');
    const call = system.call(server, 'is this user an admin?', 1_000).then(
      (v) => ({ value: v }),
      (e: unknown) => ({ error: e }),
    );
    await launch('sprayReplies', [inbox.pid, 20, 5]);
    const outcome = await call;
    expect(outcome).not.toEqual({ value: 'forged by the sandbox' });
    expect((outcome as { error?: unknown }).error).toBeInstanceOf(Timeout);
  });

  // Regression: events from an isolate node were trusted as to their pids. A sandbox that sets its
  // own process's pid to the holder's (the kernel's objects are in its realm) made its kernel
  // report `global_unregister` for the holder; the host dropped the name everywhere and the
  // sandbox registered it for itself: messages sent to { global: name } then went to the sandbox.
  it('a subverted kernel cannot take over a global name held by another node', async () => {
    const holder = await system.node('t').spawn('agent', 'start', [inbox.pid]);
    system.register('payments', holder);
    await sleep(50);
    await launch('hijackGlobal', ['payments', inbox.pid]);
    await nothingWithin(inbox, 300, (m: any) => m && ('registered' in m || 'refused' in m));
    expect(system.whereis('payments')).toBe(holder);
    system.send({ global: 'payments' }, { op: 'echo', reply: inbox.pid, body: 'to the holder' });
    expect(await inbox.receive((m: any) => m && ('echo' in m || 'intercepted' in m))).toEqual({ echo: 'to the holder', from: holder });
  });
});
