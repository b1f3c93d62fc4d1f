/**
 * Dense isolate nodes (`dense: true`): many isolate nodes served by one thread. The guarantees
 * that change with sharing a thread, each tested for behaviour: a runaway step in one node is cut
 * at its CPU limit while another node of the same thread answers; a node over its memory limit is
 * disposed alone; a crash of the shared thread ends all its nodes, each restarted per its policy.
 * Also: nodes of one thread talk to each other (no port), an operator kill ends one node alone,
 * capabilities hold between nodes of one thread, and the spec is checked strictly. (The isolate
 * suites run in both modes: test/isolate-nodes.test.ts, test/migration.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BadArgument, System } from '../src/index.js';
import { agent, answers, ask, eventsOf, record, waitEvent } from './helpers/sandbox-tools.js';
import { counterV1 } from './fixtures/counter.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const bomb = `
  import { receive, on, send, self } from 'subnode';
  import * as me from './bomb';
  export function gate(fn: string, ...args: unknown[]) { return receive(on('go', () => (me as any)[fn](...args))); }
  export function grow(): unknown { const keep: unknown[] = []; for (;;) keep.push(new Array(1e5).fill(keep.length)); }
  export function spin(to?: string) { if (to) send(to, { spinning: self() }); for (;;) {} }
`;

const dense = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  kind: 'isolate' as const,
  dense: true,
  limits: { memoryMb: 32, cpuMsPerSlice: 200 },
  modules: { agent, bomb },
  ...extra,
});

describe('dense isolate nodes: the guarantees of sharing a thread (one dense thread)', () => {
  it('a runaway step in one node is cut at its CPU limit; another node of the same thread answers meanwhile', async () => {
    system = await System.start({ denseThreads: 1, nodes: [dense('bad'), dense('good', { modules: { agent, counter: counterV1 } })] });
    const events = record(system);
    const inbox = system.inbox();
    const good = await system.node('good').spawn('agent', 'start', []);
    const server = await system.node('good').startServer('counter', [0]);
    const spinner = await system.node('bad').spawn('bomb', 'gate', ['spin', inbox.pid]);
    const cut = waitEvent(system, (e) => e.type === 'cpu_limit' && e.node === 'bad', 10_000, 'cpu_limit');
    system.send(spinner, 'go');
    expect(await inbox.receive({ spinning: spinner }, 5_000)).toBeTruthy();
    // The other node of the thread answers while (and after) the step runs: each answer waits at most a slice.
    const calls = [1, 2, 3].map(() => system!.call(server, 'inc', 5_000));
    for (let i = 0; i < 3; i++) expect(await answers(system, inbox, good, 5_000)).toBe(true);
    expect(await Promise.all(calls)).toEqual([1, 2, 3]);
    expect(await cut).toEqual({ type: 'cpu_limit', node: 'bad', pid: spinner, limitMs: 200 });
    expect(await system.node('bad').processInfo(spinner)).toBeUndefined();
    // Both nodes go on, neither restarted.
    const other = await system.node('bad').spawn('agent', 'start', []);
    expect(await answers(system, inbox, other)).toBe(true);
    expect(eventsOf(events, 'node_down')).toEqual([]);
    expect(system.nodes().map((n) => [n.name, n.status, n.creation])).toEqual([
      ['bad', 'running', 0],
      ['good', 'running', 0],
    ]);
  });

  it('a node over its memory limit is disposed alone: it restarts, the other node of the thread goes on', async () => {
    // A CPU limit long enough for the heap to fill first.
    const bad = dense('bad', { limits: { memoryMb: 32, cpuMsPerSlice: 1_000 }, start: [{ module: 'agent', fn: 'start', name: 'keeper' }] });
    system = await System.start({ denseThreads: 1, nodes: [bad, dense('good')] });
    const events = record(system);
    const inbox = system.inbox();
    const good = await system.node('good').spawn('agent', 'start', []);
    const grower = await system.node('bad').spawn('bomb', 'gate', ['grow']);
    const restarted = waitEvent(system, (e) => e.type === 'node_restarted' && e.node === 'bad', 20_000, 'node_restarted');
    system.send(grower, 'go');
    await restarted;
    const down = eventsOf(events, 'node_down');
    expect(down.map((e) => e.node)).toEqual(['bad']);
    expect(down[0]!.reason).toMatch(/memory/i);
    // The restarted node has its modules and start processes back; the other never noticed.
    expect(await answers(system, inbox, (await system.node('bad').whereis('keeper'))!)).toBe(true);
    expect(await answers(system, inbox, good)).toBe(true);
    expect(system.node('good').summary()).toMatchObject({ status: 'running', creation: 0 });
  });

  it('a crash of the shared thread ends all its nodes: each reported down and restarted per its policy', async () => {
    system = await System.start({
      denseThreads: 1,
      nodes: [
        dense('crasher', { faults: { crash: ['processes'] } }),
        dense('perm', { start: [{ module: 'agent', fn: 'start', name: 'keeper' }] }),
        dense('temp', { restart: 'temporary' }),
        { name: 't', modules: { agent } },
      ],
    });
    const events = record(system);
    const inbox = system.inbox();
    const onT = await system.node('t').spawn('agent', 'start', []);
    const back = ['crasher', 'perm'].map((node) => waitEvent(system!, (e) => e.type === 'node_restarted' && e.node === node, 20_000, `${node} restarted`));
    const tempStopped = waitEvent(system, (e) => e.type === 'node_stopped' && e.node === 'temp', 20_000, 'temp stopped');
    await expect(system.node('crasher').processes()).rejects.toThrow();
    await Promise.all([...back, tempStopped]);
    expect(
      eventsOf(events, 'node_down')
        .map((e) => e.node)
        .sort(),
    ).toEqual(['crasher', 'perm', 'temp']);
    for (const e of eventsOf(events, 'node_down')) expect(e.reason).toMatch(/dense thread|injected crash/);
    expect(await answers(system, inbox, (await system.node('perm').whereis('keeper'))!)).toBe(true);
    expect(system.node('temp').status).toBe('stopped');
    // The thread node was not touched.
    expect(await answers(system, inbox, onT)).toBe(true);
    expect(system.node('t').summary()).toMatchObject({ status: 'running', creation: 0 });
  });

  it('an operator kill ends one node alone; the others of its thread go on', async () => {
    system = await System.start({ denseThreads: 1, nodes: [dense('a'), dense('b')] });
    const events = record(system);
    const inbox = system.inbox();
    const onB = await system.node('b').spawn('agent', 'start', []);
    const restarted = waitEvent(system, (e) => e.type === 'node_restarted' && e.node === 'a', 10_000, 'node_restarted');
    system.node('a').kill();
    await restarted;
    expect(eventsOf(events, 'node_down').map((e) => e.node)).toEqual(['a']);
    expect(await answers(system, inbox, onB)).toBe(true);
    expect(system.node('b').summary()).toMatchObject({ creation: 0 });
    expect(await answers(system, inbox, await system.node('a').spawn('agent', 'start', []))).toBe(true);
  });
});

describe('dense isolate nodes: between nodes of one thread', () => {
  it('messages (in order), links and monitors between two nodes of one thread, without a port', async () => {
    system = await System.start({ denseThreads: 1, nodes: [dense('a'), dense('b')] });
    const inbox = system.inbox();
    const onA = await system.node('a').spawn('agent', 'start', [inbox.pid]);
    const onB = await system.node('b').spawn('agent', 'start', [inbox.pid]);
    const replies = system.inbox();
    for (let i = 0; i < 200; i++) system.send(onA, { op: 'send', to: onB, msg: { seq: i }, reply: replies.pid });
    for (let i = 0; i < 200; i++) expect(await inbox.receive({ seq: i })).toEqual({ seq: i });
    const trapper = await system.node('b').spawn('agent', 'start', [inbox.pid, true]);
    expect(await ask(system, inbox, trapper, { op: 'link', pid: onA })).toEqual({ ok: true });
    const { ok: ref } = (await ask(system, inbox, onB, { op: 'monitor', pid: onA })) as { ok: string };
    system.send(onA, { op: 'crash', why: 'on purpose' });
    expect(await inbox.receive({ type: 'EXIT' })).toMatchObject({ from: onA, reason: { error: { message: 'on purpose' } } });
    expect(await inbox.receive({ type: 'DOWN', ref })).toMatchObject({ pid: onA });
  });

  it('capabilities hold between nodes of one thread: a node may not address one its sendTo leaves out', async () => {
    system = await System.start({ denseThreads: 1, nodes: [dense('a', { capabilities: { sendTo: [] } }), dense('b')] });
    const events = record(system);
    const inbox = system.inbox();
    const onA = await system.node('a').spawn('agent', 'start', []);
    const onB = await system.node('b').spawn('agent', 'start', [inbox.pid]);
    expect(await ask(system, inbox, onA, { op: 'send', to: onB, msg: 'sneak' })).toMatchObject({ error: { name: 'NotAllowed' } });
    expect(eventsOf(events, 'capability_denied', 'a').length).toBeGreaterThan(0);
    expect(await answers(system, inbox, onB)).toBe(true);
  });
});

describe('dense isolate node specs', () => {
  it('dense is for isolate nodes, a boolean, and takes no resourceLimits', async () => {
    system = await System.start({});
    await expect(system.addNode({ name: 'x', dense: true })).rejects.toThrow(BadArgument);
    await expect(system.addNode({ name: 'x', kind: 'thread', dense: true })).rejects.toThrow(/dense is for isolate nodes/);
    await expect(system.addNode({ name: 'x', kind: 'isolate', dense: 'yes' as never })).rejects.toThrow(/dense must be true or false/);
    await expect(system.addNode({ name: 'x', kind: 'isolate', dense: true, resourceLimits: { maxOldGenerationSizeMb: 64 } })).rejects.toThrow(/resourceLimits/);
    await expect(System.start({ denseThreads: 0 })).rejects.toThrow(/denseThreads/);
    expect(system.nodes()).toEqual([]);
  });
});
