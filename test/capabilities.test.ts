/**
 * Capabilities (Safe Erlang) and limits, each proven both ways: granted works; withheld fails with
 * a clear error inside the node, a `capability_denied` event on the host, and nothing delivered.
 *
 * On isolate nodes this is a security boundary. On thread nodes the same kernel enforces the same
 * rules, but module code there can reach all of Node, so it is NOT a security boundary: there the
 * capabilities catch mistakes, not attackers. Test names say which kind they run on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { System, BadArgument, NotAllowed, type NodeKind, type NodeSpec, type Pid, type SystemOptions } from '../src/index.js';
import { agent, ask, denials, eventsOf, nothingWithin, record, sink, sleep, waitEvent, type Outcome } from './helpers/sandbox-tools.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const KINDS: [string, NodeKind][] = [
  ['isolate node (a security boundary)', 'isolate'],
  ['thread node (kernel-enforced, NOT a security boundary)', 'thread'],
];
const LIMITS = { memoryMb: 48, cpuMsPerSlice: 200 };

/** Node `s` (the subject, of the given kind) and two thread nodes: `ok` (granted) and `no` (withheld). */
async function start(kind: NodeKind, s: Partial<NodeSpec>, options: Omit<SystemOptions, 'nodes'> = {}): Promise<System> {
  system = await System.start({
    ...options,
    nodes: [
      { name: 's', kind, ...s, limits: { ...(kind === 'isolate' ? LIMITS : {}), ...s.limits }, modules: { agent, ...s.modules } },
      { name: 'ok', modules: { agent, sink } },
      { name: 'no', modules: { agent, sink } },
    ],
  });
  return system;
}

const notAllowed = { error: { name: 'NotAllowed', code: 'not_allowed' } };

describe.each(KINDS)('sendTo on a %s', (_label, kind) => {
  it('granted: send, link, monitor and exit reach the node', async () => {
    const system = await start(kind, { capabilities: { sendTo: ['ok'] } });
    const events = record(system);
    const inbox = system.inbox();
    const me = await system.node('s').spawn('agent', 'start', [inbox.pid]);
    const target = await system.node('ok').spawn('sink', 'forward', [inbox.pid]);
    await system.node('ok').spawn('sink', 'forward', [inbox.pid], { name: 'okSink' });
    expect(await ask(system, inbox, me, { op: 'send', to: target, msg: 'by pid' })).toEqual({ ok: true });
    expect(await inbox.receive({ sunk: 'by pid' })).toBeTruthy();
    expect(await ask(system, inbox, me, { op: 'send', to: { name: 'okSink', node: 'ok' }, msg: 'by name' })).toEqual({ ok: true });
    expect(await inbox.receive({ sunk: 'by name' })).toBeTruthy();
    const victim = await system.node('ok').spawn('agent', 'start', []);
    expect(await ask(system, inbox, me, { op: 'link', pid: victim })).toEqual({ ok: true });
    expect((await ask(system, inbox, me, { op: 'monitor', pid: victim })).ok).toMatch(/^#Ref<s\./);
    expect(await ask(system, inbox, me, { op: 'exit', pid: victim, reason: 'kill' })).toEqual({ ok: true });
    await sleep(50);
    expect(await system.node('ok').processInfo(victim)).toBeUndefined();
    expect(denials(events, 's')).toEqual([]);
  });

  it('withheld: send, link, monitor and exit to another node fail with NotAllowed inside, a capability_denied event, nothing delivered', async () => {
    const system = await start(kind, { capabilities: { sendTo: ['ok'] } });
    const events = record(system);
    const inbox = system.inbox();
    const me = await system.node('s').spawn('agent', 'start', [inbox.pid]);
    const target = await system.node('no').spawn('sink', 'forward', [inbox.pid]);
    await system.node('no').spawn('sink', 'forward', [inbox.pid], { name: 'noSink' });
    system.register('noGlobal', target);
    await sleep(30);
    for (const to of [target, { name: 'noSink', node: 'no' }, { global: 'noGlobal' }]) {
      expect(await ask(system, inbox, me, { op: 'send', to, msg: 'smuggled' })).toMatchObject(notAllowed);
    }
    expect(await ask(system, inbox, me, { op: 'link', pid: target })).toMatchObject(notAllowed);
    expect(await ask(system, inbox, me, { op: 'monitor', pid: target })).toMatchObject(notAllowed);
    const outcome = await ask(system, inbox, me, { op: 'exit', pid: target, reason: 'kill' });
    expect(outcome).toMatchObject(notAllowed);
    expect(outcome.error!.message).toBe("node 's' may not send an exit signal to node 'no'");
    expect(denials(events, 's')).toEqual([
      "send to node 'no'",
      "send to node 'no'",
      "send to node 'no'",
      "link to node 'no'",
      "monitor node 'no'",
      "send an exit signal to node 'no'",
    ]);
    expect(eventsOf(events, 'capability_denied', 's').every((e) => e.pid === me)).toBe(true);
    // nothing reached node 'no': no message, no link, the target lives
    expect(await nothingWithin(inbox, 200, { sunk: 'smuggled' })).toBeUndefined();
    expect(await system.node('no').processInfo(target)).toMatchObject({ status: 'waiting', links: [] });
    // and the process that was refused goes on
    expect(await ask(system, inbox, me, { op: 'send', to: inbox.pid, msg: 'host is always reachable' })).toEqual({ ok: true });
  });

  it('withheld and not caught: the process ends with { error: NotAllowed }', async () => {
    const rude = `
      import { send } from 'subnode';
      export function go(to: string) { send(to, 'hello'); return 'unreachable'; }
    `;
    const system = await start(kind, { capabilities: { sendTo: [] }, modules: { rude } });
    const inbox = system.inbox();
    const target = await system.node('no').spawn('sink', 'forward', [inbox.pid]);
    const exited = waitEvent(system, (e) => e.type === 'process_exit' && e.node === 's');
    await system.node('s').spawn('rude', 'go', [target]);
    expect(await exited).toMatchObject({ reason: { error: { name: 'NotAllowed', message: "node 's' may not send to node 'no'" } } });
    expect(await nothingWithin(inbox)).toBeUndefined();
  });
});

describe.each(KINDS)('the module allow-list on a %s', (_label, kind) => {
  it('loads allowed modules; refuses others with NotAllowed on the host and a capability_denied event', async () => {
    const system = await start(kind, { capabilities: { modules: ['agent', 'allowed'] } });
    const events = record(system);
    const s = system.node('s');
    expect(await s.load('allowed', 'export const x = 1;')).toMatchObject({ module: 'allowed', version: 1 });
    const error = await s.load('secret', 'export const x = 1;').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotAllowed);
    expect((error as Error).message).toBe("node 's' may not load module 'secret'");
    expect(denials(events, 's')).toEqual(["load module 'secret'"]);
    expect((await s.modules()).map((m) => m.name).sort()).toEqual(['agent', 'allowed']);
    // an upgrade plan that brings a module the node may not load fails on that node, changing nothing
    const report = await system.upgrade({ nodes: ['s'], modules: [{ module: 'secret', source: { code: 'export const x = 2;' }, change: 'load' }] });
    expect(report.ok).toBe(false);
    expect((await s.modules()).map((m) => m.name).sort()).toEqual(['agent', 'allowed']);
  });
});

describe.each(KINDS)('module aliasing on a %s', (_label, kind) => {
  const logger = `import { send } from 'subnode'; export function log(to: string, text: string) { send(to, { loud: text }); }`;
  const quiet = `import { send } from 'subnode'; export function log(to: string, text: string) { send(to, { quiet: text }); }`;
  const user = `
    import * as logger from 'logger';
    export function go(to: string) { logger.log(to, 'hello'); }
  `;
  it("code importing 'logger' calls 'quiet_logger' when the node aliases it", async () => {
    const system = await start(kind, { capabilities: { aliases: { logger: 'quiet_logger' } }, modules: { logger, quiet_logger: quiet, user } });
    const inbox = system.inbox();
    await system.node('s').spawn('user', 'go', [inbox.pid]);
    expect(await inbox.receive()).toEqual({ quiet: 'hello' });
    // without the alias, the same code calls 'logger'
    await system.node('ok').load('logger', logger);
    await system.node('ok').load('quiet_logger', quiet);
    await system.node('ok').load('user', user);
    await system.node('ok').spawn('user', 'go', [inbox.pid]);
    expect(await inbox.receive()).toEqual({ loud: 'hello' });
  });
});

describe('services on an isolate node', () => {
  const probe = `
    import { send } from 'subnode';
    function attempt(what: () => unknown): unknown {
      try { const v = what(); return { ok: v instanceof Date ? 'date' : typeof v === 'number' ? 'number' : v }; }
      catch (e: any) { return { error: e.name + ': ' + e.message }; }
    }
    export function go(to: string) {
      send(to, {
        console: typeof console,
        log: attempt(() => { console.log('hello from', 'the sandbox', { n: 1 }); console.warn('careful'); return 'logged'; }),
        now: attempt(() => Date.now()),
        newDate: attempt(() => new Date()),
        callDate: attempt(() => (Date as any)()),
        epoch: attempt(() => new Date(0).getTime()),
        utc: attempt(() => Date.UTC(2020, 0, 1)),
        parse: attempt(() => Date.parse('2020-01-01T00:00:00Z')),
        random: attempt(() => { const r = Math.random(); return r >= 0 && r < 1 ? 'number' : 'bad'; }),
      });
    }
  `;
  const granted = {
    console: 'object',
    log: { ok: 'logged' },
    now: { ok: 'number' },
    newDate: { ok: 'date' },
    callDate: { ok: expect.any(String) },
    epoch: { ok: 'number' },
    utc: { ok: 'number' },
    parse: { ok: 'number' },
    random: { ok: 'number' },
  };

  it('granted: console reports to the host as log events; clock and randomness work', async () => {
    const system = await start('isolate', { capabilities: { services: { console: true, clock: true, random: true, functions: [] } }, modules: { probe } });
    const events = record(system);
    const inbox = system.inbox();
    await system.node('s').spawn('probe', 'go', [inbox.pid]);
    expect(await inbox.receive()).toEqual(granted);
    await sleep(30);
    expect(eventsOf(events, 'log', 's').map((e) => [e.level, e.text])).toEqual([
      ['log', 'hello from the sandbox {"n":1}'],
      ['warn', 'careful'],
    ]);
  });

  it('withheld: no console at all; Date.now, new Date() and Math.random throw; dates from values still work', async () => {
    const system = await start('isolate', { capabilities: { services: { console: false, clock: false, random: false, functions: [] } }, modules: { probe } });
    const events = record(system);
    const inbox = system.inbox();
    await system.node('s').spawn('probe', 'go', [inbox.pid]);
    expect(await inbox.receive()).toEqual({
      console: 'undefined',
      log: { error: expect.stringMatching(/^ReferenceError: console is not defined/) },
      now: { error: 'Error: the clock (Date.now) is not granted to this node' },
      newDate: { error: 'Error: the clock (new Date()) is not granted to this node' },
      callDate: { error: 'Error: the clock (Date) is not granted to this node' },
      epoch: { ok: 'number' },
      utc: { ok: 'number' },
      parse: { ok: 'number' },
      random: { error: 'Error: randomness (Math.random) is not granted to this node' },
    });
    expect(eventsOf(events, 'log', 's')).toEqual([]);
    // Note: withholding a service raises no capability_denied event (the calls throw in the isolate).
  });

  it('thread node (NOT a security boundary): services are not withheld, module code sees all of Node', async () => {
    const system = await start('thread', { capabilities: { services: { console: false, clock: false, random: false, functions: [] } }, modules: { probe } });
    const inbox = system.inbox();
    await system.node('s').spawn('probe', 'go', [inbox.pid]);
    expect(await inbox.receive()).toMatchObject({ console: 'object', now: { ok: 'number' }, random: { ok: 'number' } });
  });
});

describe.each(KINDS)('host functions on a %s', (_label, kind) => {
  const hostFunctions = {
    double: (x: number) => x * 2,
    slowInc: async (x: number) => {
      await sleep(20);
      return x + 1;
    },
    secret: () => 'the host secret',
    boom: () => {
      throw new Error('host says no');
    },
  };

  async function callOnce(system: System, name: string, args: unknown[]): Promise<{ outcome?: Outcome; down?: { reason: any } }> {
    const inbox = system.inbox();
    const pid = await system.node('s').spawn('agent', 'later', ['callOnce', inbox.pid, name, args]);
    const ref = inbox.monitor(pid);
    system.send(pid, 'go'); // after the monitor, on the same path
    const first = await inbox.receive<any>((m: any) => m && ('ok' in m || 'error' in m || (m.type === 'DOWN' && m.ref === ref)), 3_000);
    inbox.close();
    return first.type === 'DOWN' ? { down: first } : { outcome: first };
  }

  it('a granted function works, sync or async; withheld → NotAllowed inside; unknown → UnknownFunction', async () => {
    const system = await start(
      kind,
      { capabilities: { services: { console: true, clock: true, random: true, functions: ['double', 'slowInc', 'missing', 'boom'] } } },
      { hostFunctions },
    );
    const events = record(system);
    expect(await callOnce(system, 'double', [21])).toEqual({ outcome: { ok: 42 } });
    expect(await callOnce(system, 'slowInc', [1])).toEqual({ outcome: { ok: 2 } });
    const denied = await callOnce(system, 'secret', []);
    expect(denied.outcome).toMatchObject(notAllowed);
    expect(denied.outcome!.error!.message).toBe("node 's' may not call host function 'secret'");
    expect(denials(events, 's')).toEqual(["host function 'secret'"]);
    const unknown = await callOnce(system, 'missing', []);
    expect(unknown.down?.reason).toMatchObject({ error: { name: 'UnknownFunction', message: "the host has no function 'missing'" } });
    const thrown = await callOnce(system, 'boom', []);
    expect(thrown.down?.reason).toMatchObject({ error: { name: 'Refused', message: 'Error: host says no' } });
  });

  it("with functions '*', names from Object.prototype are not host functions", async () => {
    const system = await start(kind, { capabilities: { services: { console: true, clock: true, random: true, functions: '*' } } }, { hostFunctions });
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const result = await callOnce(system, name, []);
      expect(result.down?.reason, name).toMatchObject({ error: { name: 'UnknownFunction' } });
    }
    expect(await callOnce(system, 'secret', [])).toEqual({ outcome: { ok: 'the host secret' } });
  });

  it('the host checks again: a service request made by hand, past the kernel, is refused the same way', async () => {
    const system = await start(
      kind,
      { capabilities: { services: { console: true, clock: true, random: true, functions: ['double'] }, spawnRemote: false } },
      { hostFunctions },
    );
    const events = record(system);
    const inbox = system.inbox();
    await system.node('s').spawn('agent', 'rawService', [inbox.pid, { $service: 'host', name: 'secret', args: [] }]);
    expect(await inbox.receive()).toMatchObject({ error: { code: 'not_allowed' } });
    await system.node('s').spawn('agent', 'rawService', [inbox.pid, { $service: 'spawn', node: 'ok', module: 'agent', fn: 'start', args: [] }]);
    expect(await inbox.receive()).toMatchObject({ error: { code: 'not_allowed' } });
    await system.node('s').spawn('agent', 'rawService', [inbox.pid, { $service: 'host', name: 'double', args: [4] }]);
    expect(await inbox.receive()).toMatchObject({ ok: 8 });
    expect(denials(events, 's')).toEqual(["host function 'secret'", "spawn on node 'ok'"]);
    expect((await system.node('ok').processes()).length).toBe(0);
  });
});

describe.each(KINDS)('spawnRemote on a %s', (_label, kind) => {
  async function spawnOnce(system: System, node: string): Promise<Outcome> {
    const inbox = system.inbox();
    await system.node('s').spawn('agent', 'spawnOnce', [inbox.pid, node, 'agent', 'start', []]);
    const outcome = await inbox.receive<Outcome>();
    inbox.close();
    return outcome;
  }

  it('true: spawnOn works on any node', async () => {
    const system = await start(kind, { capabilities: { spawnRemote: true } });
    const { ok: pid } = await spawnOnce(system, 'no');
    expect(pid).toMatch(/^<no\.\d+>$/);
    expect(await system.node('no').processInfo(pid as Pid)).toMatchObject({ initial: 'agent.start' });
  });

  it('false: spawnOn fails with NotAllowed inside, a capability_denied event, nothing spawned', async () => {
    const system = await start(kind, { capabilities: { spawnRemote: false } });
    const events = record(system);
    expect(await spawnOnce(system, 'ok')).toMatchObject(notAllowed);
    expect(denials(events, 's')).toEqual(["spawn on node 'ok'"]);
    expect(await system.node('ok').processes()).toEqual([]);
  });

  it('a list of nodes: allowed there, refused elsewhere', async () => {
    const system = await start(kind, { capabilities: { spawnRemote: ['ok'] } });
    const events = record(system);
    expect((await spawnOnce(system, 'ok')).ok).toMatch(/^<ok\./);
    expect(await spawnOnce(system, 'no')).toMatchObject(notAllowed);
    expect(denials(events, 's')).toEqual(["spawn on node 'no'"]);
    expect(await system.node('no').processes()).toEqual([]);
  });
});

describe.each(KINDS)('limits on a %s', (_label, kind) => {
  const mailbox = `
    import { receive, on, after, send, ANY } from 'subnode';
    export function hold(reply: string): unknown { return receive(on('go', () => count(reply, 0))); }
    function count(reply: string, n: number): unknown {
      return receive(on(ANY, () => count(reply, n + 1)), after(100, () => { send(reply, { counted: n }); return hold(reply); }));
    }
  `;

  it("mailbox max with overflow 'drop': messages beyond max are dropped and reported; the process keeps working", async () => {
    const system = await start(kind, { limits: { mailbox: { max: 5, overflow: 'drop' } }, modules: { mailbox } });
    const events = record(system);
    const inbox = system.inbox();
    const pid = await system.node('s').spawn('mailbox', 'hold', [inbox.pid]);
    for (let i = 0; i < 12; i++) system.send(pid, i);
    await sleep(50);
    expect((await system.node('s').processInfo(pid))?.mailbox).toBe(5);
    system.send(pid, 'go');
    expect(await inbox.receive()).toEqual({ counted: 5 });
    expect(eventsOf(events, 'mailbox_overflow', 's')).toEqual([{ type: 'mailbox_overflow', node: 's', pid, action: 'dropped', dropped: 1 }]);
    // it works on: room again, messages counted
    for (let i = 0; i < 3; i++) system.send(pid, i);
    system.send(pid, 'go');
    expect(await inbox.receive()).toEqual({ counted: 3 });
  });

  it("mailbox max with overflow 'kill': the receiver dies with { mailbox_overflow: max }", async () => {
    const system = await start(kind, { limits: { mailbox: { max: 3, overflow: 'kill' } }, modules: { mailbox } });
    const events = record(system);
    const inbox = system.inbox();
    const pid = await system.node('s').spawn('mailbox', 'hold', [inbox.pid]);
    const ref = inbox.monitor(pid);
    await sleep(30);
    for (let i = 0; i < 4; i++) system.send(pid, i);
    expect(await inbox.receive({ type: 'DOWN', ref })).toMatchObject({ pid, reason: { mailbox_overflow: 3 } });
    expect(eventsOf(events, 'mailbox_overflow', 's')).toEqual([{ type: 'mailbox_overflow', node: 's', pid, action: 'killed', dropped: 0 }]);
    expect(eventsOf(events, 'process_exit', 's')).toEqual([expect.objectContaining({ pid, reason: { mailbox_overflow: 3 } })]);
  });

  it('maxMessageBytes: a too-large send throws TooLarge inside the sender (to another node or locally); a small one passes', async () => {
    const system = await start(kind, { capabilities: { sendTo: ['ok'] }, limits: { maxMessageBytes: 1024 } });
    const inbox = system.inbox();
    const me = await system.node('s').spawn('agent', 'start', []);
    const local = await system.node('s').spawn('agent', 'start', [inbox.pid]);
    const remote = await system.node('ok').spawn('sink', 'forward', [inbox.pid]);
    const big = 'x'.repeat(2_000);
    for (const to of [inbox.pid, remote, local]) {
      const outcome = await ask(system, inbox, me, { op: 'send', to, msg: { big } });
      expect(outcome).toMatchObject({ error: { name: 'TooLarge', code: 'too_large', message: "message is larger than this node's limit of 1024 bytes" } });
    }
    expect(await ask(system, inbox, me, { op: 'send', to: remote, msg: { small: 'x'.repeat(100) } })).toEqual({ ok: true });
    expect(await inbox.receive()).toEqual({ sunk: { small: 'x'.repeat(100) } });
    expect(await nothingWithin(inbox, 150)).toBeUndefined();
  });
});

describe('bad limits and capabilities in a node spec', () => {
  const bad: [string, Partial<NodeSpec>][] = [
    ['memoryMb < 0', { limits: { memoryMb: -1 } }],
    ['cpuMsPerSlice 0', { limits: { cpuMsPerSlice: 0 } }],
    ['cpuMsPerSlice NaN', { limits: { cpuMsPerSlice: Number.NaN } }],
    ['maxMessageBytes Infinity', { limits: { maxMessageBytes: Infinity } }],
    ['mailbox max as text', { limits: { mailbox: { max: '10' as never, overflow: 'drop' } } }],
    ['mailbox overflow unknown', { limits: { mailbox: { max: 10, overflow: 'explode' as never } } }],
    ['limits not an object', { limits: 5 as never }],
    ['sendTo a string', { capabilities: { sendTo: 'b' as never } }],
    ['modules with a number', { capabilities: { modules: ['a', 1] as never } }],
    ['services.clock not boolean', { capabilities: { services: { clock: 'yes' } as never } }],
    ['services.functions a string', { capabilities: { services: { console: true, clock: true, random: true, functions: 'double' as never } } }],
    ['aliases to a number', { capabilities: { aliases: { logger: 1 } as never } }],
    ['spawnRemote a string', { capabilities: { spawnRemote: 'b' as never } }],
    ['capabilities not an object', { capabilities: 'all' as never }],
    ['kind unknown', { kind: 'vm' as never }],
  ];
  it.each(bad)('%s → BadArgument from System.start', async (_what, spec) => {
    const error = await System.start({ nodes: [{ name: 'n', ...spec }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadArgument);
  });

  it('good specs start, and a preset spreads into a spec', async () => {
    const { sandboxed } = await import('../policies/capabilities.js');
    system = await System.start({ nodes: [{ name: 'n', kind: 'isolate', ...sandboxed, modules: { agent } }] });
    expect(system.node('n').capabilities).toMatchObject({
      sendTo: [],
      spawnRemote: false,
      services: { clock: false, random: false, console: true, functions: [] },
    });
    expect(system.node('n').limits).toEqual({ ...sandboxed.limits, globalNames: 100, hostCalls: { inFlight: 16, perSecond: 200 }, durableStates: 100 });
  });
});
