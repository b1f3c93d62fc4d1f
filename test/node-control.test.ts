/**
 * The host's control of one node: operations reach it in the order issued, a node that stops
 * answering is ended and restarted (nothing waits on it forever), one node can be restarted,
 * killed or stopped by itself, and a failed node can be recovered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitEvent } from './helpers/events.js';
import { until } from './helpers/wait.js';
import { BadArgument, NoProcess, NodeDown, NotCloneable, System, Timeout, type SystemEvent } from '../src/index.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const echo = `
  import { receive, on, send } from 'subnode/process';
  export const vsn = 'VSN';
  export function start() { return loop(); }
  export function loop(): unknown { return receive(on({ ask: String }, (m: { ask: string }) => { send(m.ask, vsn); return loop(); })); }
  export function init() { for (;;) {} }
`;

const server = `
  export function init() { return 0; }
  export function handleCall(req: string, _from: unknown, n: number) { return { reply: req === 'inc' ? n + 1 : n, state: req === 'inc' ? n + 1 : n }; }
`;

describe('order', () => {
  it('loads issued together reach the node in the order issued, though the first takes longer to compile', async () => {
    system = await System.start({ nodes: [{ name: 'a' }] });
    const a = system.node('a');
    const filler = Array.from({ length: 400 }, (_, i) => `export function f${i}(x: number): number { return x + ${i}; }`).join('\n');
    const first = a.load('m', echo.replace('VSN', 'one') + filler);
    const second = a.load('m', echo.replace('VSN', 'two'));
    const [r1, r2] = await Promise.all([first, second]);
    expect([r1.version, r2.version]).toEqual([1, 2]);
    const pid = await a.spawn('m', 'start');
    const inbox = system.inbox();
    system.send(pid, { ask: inbox.pid });
    expect(await inbox.receive()).toBe('two');
  });

  it('spawn arguments that cannot be copied fail with NotCloneable, and later requests still go through', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { m: echo } }] });
    const a = system.node('a');
    await expect(a.spawn('m', 'start', [() => 1])).rejects.toBeInstanceOf(NotCloneable);
    expect(await a.spawn('m', 'start')).toMatch(/^<a\./);
  });
});

describe('a node that stops answering', () => {
  it('a thread node whose step never returns is reported unresponsive, ended and restarted; calls to it fail instead of hanging', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', unresponsiveMs: 300, modules: { m: echo } },
        { name: 'b', modules: { m: echo } },
      ],
    });
    const events: SystemEvent[] = [];
    system.on('*', (e) => events.push(e));
    const unresponsive = waitEvent(system, 'node_unresponsive', (e) => e.node === 'a');
    const restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'a');
    // A control operation in flight when the node hangs (a server whose init never returns) fails, not hangs.
    const during = system
      .node('a')
      .startServer('m', [])
      .then(
        () => 'answered',
        (e: unknown) => e,
      );
    expect(await unresponsive).toMatchObject({ node: 'a', creation: 0 });
    expect(await during).toBeInstanceOf(NodeDown);
    await restarted;
    expect(system.node('a').summary()).toMatchObject({ status: 'running', creation: 1 });
    expect(events.find((e) => e.type === 'node_down')).toMatchObject({ node: 'a', reason: expect.stringMatching(/unresponsive.*300 ms/) });
    // The other node never noticed.
    expect(system.node('b').summary()).toMatchObject({ status: 'running', creation: 0 });
    expect(await system.node('b').processes()).toEqual([]);
  });

  it('an isolate node: a state getter that loops while the state is read out is cut by the CPU limit; the node goes on', async () => {
    const trap = `
      export function init() { return { get value() { for (;;) {} } }; }
      export function handleCall(_req: unknown, _from: unknown, s: unknown) { return { reply: 'ok', state: s }; }
    `;
    system = await System.start({ nodes: [{ name: 'i', kind: 'isolate', limits: { cpuMsPerSlice: 200 }, modules: { trap } }] });
    const pid = await system.node('i').startServer('trap');
    expect(await system.call(pid, 'ping')).toBe('ok');
    await expect(system.node('i').getState(pid)).rejects.toBeInstanceOf(Timeout);
    expect(await system.call(pid, 'ping')).toBe('ok');
    expect(system.node('i').summary()).toMatchObject({ status: 'running', creation: 0 });
  });
});

describe('one node at a time', () => {
  it('restart: a new incarnation with the modules it had; the other nodes go on', async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { m: echo } },
        { name: 'b', modules: { s: server } },
      ],
    });
    await system.node('a').load('m', echo.replace('VSN', 'hotfix'));
    const b = await system.node('b').startServer('s');
    expect(await system.call(b, 'inc')).toBe(1);
    await system.node('a').restart();
    expect(system.node('a').summary()).toMatchObject({ status: 'running', creation: 1 });
    const pid = await system.node('a').spawn('m', 'start');
    const inbox = system.inbox();
    system.send(pid, { ask: inbox.pid });
    expect(await inbox.receive()).toBe('hotfix');
    expect(await system.call(b, 'inc')).toBe(2);
  });

  it('stop, then restart: a stopped node refuses work with NodeDown until restarted', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { m: echo } }] });
    const stopped = waitEvent(system, 'node_stopped', (e) => e.node === 'a');
    await system.node('a').stop();
    await stopped;
    await expect(system.node('a').processes()).rejects.toBeInstanceOf(NodeDown);
    await system.node('a').restart();
    expect(await system.node('a').spawn('m', 'start')).toMatch(/^<a\.1\./);
  });

  it('kill counts as a crash: restarted per policy, and a failed node is recovered by restart', async () => {
    system = await System.start({ nodes: [{ name: 'a', intensity: 1, period: 60_000, modules: { m: echo } }] });
    const a = system.node('a');
    let restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'a');
    a.kill();
    await restarted;
    const failed = waitEvent(system, 'node_failed', (e) => e.node === 'a');
    a.kill('second crash');
    expect(await failed).toMatchObject({ reason: expect.stringMatching(/more than 1 restarts.*second crash/) });
    expect(a.summary().status).toBe('failed');
    await expect(a.spawn('m', 'start')).rejects.toBeInstanceOf(NodeDown);
    restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'a');
    await a.restart();
    await restarted;
    expect(a.summary()).toMatchObject({ status: 'running', creation: 2 });
    expect(await a.spawn('m', 'start')).toMatch(/^<a\.\d+\.2>$/);
  });
});

/** Holds every call but 'release', which answers all held ones with 'late'. */
const holder = `
  import { server } from 'subnode';
  export function init() { return []; }
  export function handleCall(req: string, from: unknown, held: unknown[]) {
    if (req === 'hold') return { noreply: [...held, from] };
    for (const f of held) server.reply(f as never, 'late');
    return { reply: 'released', state: [] };
  }
`;

describe('calls from the host', () => {
  it('a call nobody answers fails with Timeout at its own deadline, not before; a reply after it is dropped, and no monitor is left', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { h: holder } }] });
    const s = system;
    const pid = await s.node('a').startServer('h');
    const settled = new Set<string>();
    const watch = <T>(name: string, call: Promise<T>) => call.finally(() => settled.add(name));
    const long = watch('long', s.call(pid, 'hold', 60_000));
    // Beyond what one Node timer can wait: it must neither fire at once nor be refused.
    const huge = watch('huge', s.call(pid, 'hold', 2 ** 31 + 1_000));
    const t0 = performance.now();
    const short = watch('short', s.call(pid, 'hold', 150));
    await expect(short).rejects.toBeInstanceOf(Timeout);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(149);
    expect([...settled]).toEqual(['short']);
    expect(await s.call(pid, 'release')).toBe('released');
    expect(await Promise.all([long, huge])).toEqual(['late', 'late']);
    await until('the callee to be monitored by no one', async () => (await s.node('a').processInfo(pid))?.monitoredBy.length === 0);
    expect(await s.call(pid, 'hold', 50).catch((e: unknown) => e)).toBeInstanceOf(Timeout);
    expect(await s.call(pid, 'release')).toBe('released');
  });

  it('a call to a name nobody holds fails with NoProcess at once; bad timeouts are refused', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { s: server } }] });
    const t0 = Date.now();
    await expect(system.call({ name: 'nobody', node: 'a' }, 'get', 20_000)).rejects.toBeInstanceOf(NoProcess);
    await expect(system.call({ global: 'nobody' }, 'get', 20_000)).rejects.toBeInstanceOf(NoProcess);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const pid = await system.node('a').startServer('s', [], { name: 'counter' });
    await expect(system.call(pid, 'get', 0)).rejects.toBeInstanceOf(BadArgument);
    await expect(system.call(pid, 'get', -1)).rejects.toBeInstanceOf(BadArgument);
    expect(await system.call({ name: 'counter', node: 'a' }, 'inc')).toBe(1);
  });
});

describe('what a restart brings back', () => {
  it('the same version numbers and the old version Erlang keeps; deleted modules stay deleted', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { m: echo.replace('VSN', 'v1') } }] });
    const a = system.node('a');
    await a.load('m', echo.replace('VSN', 'v2'));
    await a.load('m', echo.replace('VSN', 'v3'));
    await a.load('gone', 'export const x = 1;');
    await a.deleteModule('gone');
    const shape = async () => (await a.modules()).map((m) => [m.name, m.versions.map((v) => [v.version, v.vsn, v.state])]);
    const before = await shape();
    expect(before).toEqual([
      [
        'm',
        [
          [2, 'v2', 'old'],
          [3, 'v3', 'current'],
        ],
      ],
      ['gone', [[1, 1, 'old']]],
    ]);
    const restarted = waitEvent(system, 'node_restarted', (e) => e.node === 'a');
    a.kill('crash');
    await restarted;
    expect(await shape()).toEqual(before);
    expect((await a.load('m', echo.replace('VSN', 'v4'))).version).toBe(4);
    await a.restart();
    expect((await shape()).find(([name]) => name === 'm')).toEqual([
      'm',
      [
        [3, 'v3', 'old'],
        [4, 'v4', 'current'],
      ],
    ]);
  });
});
