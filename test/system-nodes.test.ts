import { afterEach, describe, expect, it } from 'vitest';
import { System, NodeDown, UnknownNode, LoadError, UnknownModule, UnknownFunction, NotCloneable, BadArgument, type SystemEvent } from '../src/index.js';
import { until } from './helpers/wait.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

function collect(s: System): SystemEvent[] {
  const events: SystemEvent[] = [];
  s.on('*', (e) => events.push(e));
  return events;
}

function waitFor(s: System, type: SystemEvent['type'], node: string, timeoutMs = 10_000): Promise<SystemEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} for ${node}`));
    }, timeoutMs);
    const off = s.on('*', (e) => {
      if (e.type === type && 'node' in e && e.node === node) {
        clearTimeout(timer);
        off();
        resolve(e);
      }
    });
  });
}

const echo = `
  import { receive, send } from 'subnode';
  export function loop(): unknown {
    return receive((m: { from: string; body: unknown }) => { send(m.from, m.body); return loop(); });
  }
`;

const bomb = `
  import { receive } from 'subnode';
  export function loop(): unknown {
    return receive((m: { kind: string }) => {
      if (m.kind === 'throw') setTimeout(() => { throw new Error('boom from a timer'); });
      if (m.kind === 'exit') (globalThis as any).process.exit(3);
      if (m.kind === 'oom') { const keep: unknown[] = []; for (;;) keep.push(new Array(1e5).fill(keep.length)); }
      return loop();
    });
  }
`;

describe('thread node supervision', () => {
  for (const kind of ['throw', 'exit', 'oom'] as const) {
    it(`restarts a permanent node after ${kind}, reloading its modules and start processes`, async () => {
      system = await System.start({
        nodes: [
          { name: 'a', resourceLimits: { maxOldGenerationSizeMb: 32 }, modules: { bomb, echo }, start: [{ module: 'echo', fn: 'loop', name: 'echo' }] },
          { name: 'b', modules: { echo } },
        ],
      });
      const events = collect(system);
      const inbox = system.inbox();
      const bPid = await system.node('b').spawn('echo', 'loop');
      // a process on b monitors nothing; an inbox monitors a's bomb process
      const bombPid = await system.node('a').spawn('bomb', 'loop');
      inbox.monitor(bombPid);
      const restarted = waitFor(system, 'node_restarted', 'a');
      system.send(bombPid, { kind });
      await restarted;
      const down = events.find((e) => e.type === 'node_down');
      expect(down).toMatchObject({ node: 'a', creation: 0 });
      if (kind === 'oom') expect((down as { reason: string }).reason).toMatch(/memory/i);
      expect(await inbox.receive({ type: 'DOWN' })).toMatchObject({ pid: bombPid, reason: 'noconnection' });
      // The restarted node has its modules back and its named process, with pids of creation 1.
      const pid = await system.node('a').whereis('echo');
      expect(pid).toMatch(/^<a\.\d+\.1>$/);
      system.send(pid!, { from: inbox.pid, body: 'after restart' });
      expect(await inbox.receive()).toBe('after restart');
      // Messages to the dead incarnation's pids are dropped; the other node is unharmed.
      system.send(bombPid, { kind: 'noop' });
      system.send(bPid, { from: inbox.pid, body: 'b alive' });
      expect(await inbox.receive()).toBe('b alive');
      expect(system.node('a').summary()).toMatchObject({ status: 'running', creation: 1 });
    });
  }

  it('gives up on a node that crashes more often than its intensity allows', async () => {
    system = await System.start({ nodes: [{ name: 'a', intensity: 1, period: 10_000, modules: { bomb } }] });
    const failed = waitFor(system, 'node_failed', 'a');
    let pid = await system.node('a').spawn('bomb', 'loop');
    const restarted = waitFor(system, 'node_restarted', 'a');
    system.send(pid, { kind: 'exit' });
    await restarted;
    pid = await system.node('a').spawn('bomb', 'loop');
    system.send(pid, { kind: 'exit' });
    await failed;
    expect(system.node('a').status).toBe('failed');
    await expect(system.node('a').processes()).rejects.toBeInstanceOf(NodeDown);
  });

  it('does not restart temporary nodes, nor transient nodes that exit normally', async () => {
    const quit = `export function quit() { (globalThis as any).process.exit(0); }`;
    system = await System.start({
      nodes: [
        { name: 't', restart: 'temporary', modules: { quit } },
        { name: 'tr', restart: 'transient', modules: { quit } },
      ],
    });
    const stopped = [waitFor(system, 'node_stopped', 't'), waitFor(system, 'node_stopped', 'tr')];
    // The process ends its node right after being spawned: the spawn's answer may be lost with
    // the thread, in which case the call fails with NodeDown. Either way the node stops.
    const spawned = (node: string) =>
      system!
        .node(node)
        .spawn('quit', 'quit')
        .catch((e: unknown) => expect(e).toBeInstanceOf(NodeDown));
    await spawned('t');
    await spawned('tr');
    await Promise.all(stopped);
    expect(system.nodes().map((n) => n.status)).toEqual(['stopped', 'stopped']);
  });

  it('fails a control call in flight when its node dies, instead of hanging', async () => {
    system = await System.start({ nodes: [{ name: 'a', restart: 'temporary' }] });
    // The module's top level ends the thread while the load call waits for its answer.
    await expect(system.node('a').load('suicide', '(globalThis as any).process.exit(1);')).rejects.toBeInstanceOf(NodeDown);
    await expect(system.node('a').modules()).rejects.toBeInstanceOf(NodeDown);
  });
});

describe('CPU limit of a thread node', () => {
  it('ends a thread whose step runs over the limit, and restarts the node per policy', async () => {
    const spin = `
      import { receive, send } from 'subnode/process';
      export function loop(): unknown {
        return receive((m: { op?: string; from: string }) => { if (m.op === 'spin') for (;;) {} send(m.from, 'pong'); return loop(); });
      }
    `;
    system = await System.start({
      nodes: [
        { name: 'a', limits: { cpuMsPerSlice: 150 }, modules: { spin }, start: [{ module: 'spin', fn: 'loop', name: 'spinner' }] },
        { name: 'b', modules: { echo } },
      ],
    });
    const inbox = system.inbox();
    const pid = (await system.node('a').whereis('spinner'))!;
    system.send(pid, { from: inbox.pid });
    expect(await inbox.receive()).toBe('pong');
    const down = waitFor(system, 'node_down', 'a');
    const restarted = waitFor(system, 'node_restarted', 'a');
    const t0 = Date.now();
    system.send(pid, { op: 'spin', from: inbox.pid });
    expect(await down).toMatchObject({ reason: expect.stringMatching(/cpu limit.*150 ms/) });
    expect(Date.now() - t0).toBeLessThan(5_000);
    await restarted;
    const again = (await system.node('a').whereis('spinner'))!;
    system.send(again, { from: inbox.pid });
    expect(await inbox.receive()).toBe('pong');
    // the other node never noticed
    const b = await system.node('b').spawn('echo', 'loop');
    system.send(b, { from: inbox.pid, body: 'b fine' });
    expect(await inbox.receive()).toBe('b fine');
  });
});

describe('bad input gets a typed error and loses nothing', () => {
  it('rejects bad module source, unknown modules, functions and nodes; keeps what runs', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { echo } }] });
    const a = system.node('a');
    const inbox = system.inbox();
    const pid = await a.spawn('echo', 'loop');
    await expect(a.load('echo', 'export function loop( {')).rejects.toBeInstanceOf(LoadError);
    await expect(a.load('echo', 'throw new TypeError("at load")')).rejects.toThrow(/TypeError: at load/);
    await expect(a.load('echo', 'null.x;')).rejects.toBeInstanceOf(LoadError);
    await expect(a.load('bad name!', echo)).rejects.toBeInstanceOf(BadArgument);
    await expect(a.load('echo', { path: '/nonexistent/echo.ts' })).rejects.toBeInstanceOf(LoadError);
    await expect(a.spawn('nope', 'loop')).rejects.toBeInstanceOf(UnknownModule);
    await expect(a.spawn('echo', 'nope')).rejects.toBeInstanceOf(UnknownFunction);
    expect(() => system!.node('zz')).toThrow(UnknownNode);
    expect(() => system!.send('<zz.1>' as never, 1)).toThrow(UnknownNode);
    expect(() => system!.send(pid, { f: () => 1 })).toThrow(NotCloneable);
    const mods = await a.modules();
    expect(mods).toEqual([expect.objectContaining({ name: 'echo', versions: [expect.objectContaining({ version: 1, state: 'current', processes: 1 })] })]);
    system.send(pid, { from: inbox.pid, body: 'still here' });
    expect(await inbox.receive()).toBe('still here');
  });

  it('rejects bad node specs', async () => {
    await expect(System.start({ nodes: [{ name: 'no.dots' }] })).rejects.toBeInstanceOf(BadArgument);
    await expect(System.start({ nodes: [{ name: 'a', restart: 'sometimes' as never }] })).rejects.toBeInstanceOf(BadArgument);
    await expect(System.start({ nodes: [{ name: 'a' }, { name: 'a' }] })).rejects.toBeInstanceOf(BadArgument);
  });

  it('a process sending an uncloneable message to another node dies with NotCloneable, the nodes live on', async () => {
    const sender = `
      import { send } from 'subnode';
      export function go(to: string) { send(to, { fn: () => 1 }); }
    `;
    system = await System.start({
      nodes: [
        { name: 'a', modules: { sender } },
        { name: 'b', modules: { echo } },
      ],
    });
    const events = collect(system);
    const target = await system.node('b').spawn('echo', 'loop');
    await system.node('a').spawn('sender', 'go', [target]);
    const exit = await until('the sender to exit', () => events.find((e) => e.type === 'process_exit'), 10_000);
    expect(exit).toMatchObject({ node: 'a', reason: { error: { name: 'NotCloneable' } } });
  });
});
