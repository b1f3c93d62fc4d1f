import { afterEach, describe, expect, it } from 'vitest';
import { System, Refused, Timeout, BadArgument, LoadError, type Pid, type UpgradePlan } from '../src/index.js';
import { counterV1, counterV2, counterV1Down } from './fixtures/counter.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

async function start(nodes = ['a']): Promise<{ system: System; pids: Record<string, Pid[]> }> {
  system = await System.start({ nodes: nodes.map((name) => ({ name, modules: { counter: counterV1 } })) });
  const pids: Record<string, Pid[]> = {};
  for (const n of nodes) {
    pids[n] = [];
    for (let i = 0; i < 3; i++) pids[n]!.push(await system.node(n).startServer('counter', [i * 10]));
  }
  return { system, pids };
}

describe('server behaviour and the system protocol', () => {
  it('suspend / changeCode / resume converts the state; messages sent meanwhile wait', async () => {
    const { system, pids } = await start();
    const a = system.node('a');
    const pid = pids.a![1]!;
    expect(await system.call(pid, 'inc')).toBe(11);
    await a.suspend(pid);
    const pending = system.call(pid, 'inc'); // queued while suspended
    await a.load('counter', counterV2);
    expect(await a.getState(pid)).toEqual({ count: 11 });
    expect(await a.changeCode(pid, 'counter', { extra: { seed: [7] } })).toEqual({ from: 1, to: 2 });
    expect(await a.getState(pid)).toEqual({ total: 11, history: [7] });
    await a.resume(pid);
    expect(await pending).toBe(12);
    expect(await system.call(pid, 'history')).toEqual([7, 11]);
    expect(await system.call(pid, 'vsn')).toBe(2);
  });

  it('a codeChange that throws, returns nothing or runs too long leaves the old state, and says why', async () => {
    const { system, pids } = await start();
    const a = system.node('a');
    const pid = pids.a![0]!;
    await a.suspend(pid);
    await a.load('counter', counterV2);
    await expect(a.changeCode(pid, 'counter', { extra: { fail: true } })).rejects.toThrow(/conversion refused by extra.fail/);
    await expect(a.changeCode(pid, 'counter', { extra: { fail: true } })).rejects.toBeInstanceOf(Refused);
    await expect(a.changeCode(pid, 'counter', { extra: { slowMs: 60 }, timeoutMs: 20 })).rejects.toBeInstanceOf(Timeout);
    expect(await a.getState(pid)).toEqual({ count: 0 });
    await expect(a.changeCode(pids.a![1]!, 'counter')).rejects.toBeInstanceOf(Refused); // not suspended
    await expect(a.changeCode(pid, 'other')).rejects.toBeInstanceOf(BadArgument);
  });

  it('downgrades with { down: vsn }', async () => {
    const { system, pids } = await start();
    const a = system.node('a');
    const pid = pids.a![2]!;
    await a.suspend(pid);
    await a.load('counter', counterV2);
    await a.changeCode(pid, 'counter');
    await a.resume(pid);
    expect(await system.call(pid, 'inc')).toBe(21);
    await a.suspend(pid);
    await a.load('counter', counterV1Down, { purge: 'kill' });
    expect(await a.changeCode(pid, 'counter', { oldVsn: { down: 2 } })).toEqual({ from: { down: 2 }, to: 1 });
    await a.resume(pid);
    expect(await system.call(pid, 'get')).toBe(21);
    expect(await system.call(pid, 'vsn')).toBe(1);
  });
});

describe('upgrade plans', () => {
  it('upgrades selected nodes with state conversion and leaves the others alone', async () => {
    const { system, pids } = await start(['a', 'b', 'legacy']);
    for (const pid of pids.a!) await system.call(pid, 'inc');
    const report = await system.upgrade({
      nodes: { except: ['legacy'] },
      canary: 'b',
      modules: [{ module: 'counter', source: { code: counterV2 }, extra: { seed: [] } }],
    });
    expect(report.ok).toBe(true);
    expect(report.nodes.map((n) => [n.node, n.status])).toEqual([
      ['b', 'upgraded'],
      ['a', 'upgraded'],
    ]);
    const a = report.nodes[1]!;
    if (a.status !== 'upgraded') throw new Error('unreachable');
    expect(a.upgraded.sort()).toEqual([...pids.a!].sort());
    expect(a.loaded).toEqual([{ module: 'counter', version: 2, vsn: 2, previous: 1 }]);
    expect(await system.call(pids.a![0]!, 'history')).toEqual([]);
    expect(await system.call(pids.a![0]!, 'get')).toBe(1);
    expect(await system.call(pids.legacy![0]!, 'vsn')).toBe(1);
    expect((await system.node('legacy').modules())[0]!.versions.map((v) => v.version)).toEqual([1]);
  });

  it('rolls back a node whose codeChange fails: old version current, states exactly as before', async () => {
    const { system, pids } = await start(['a', 'b']);
    for (const pid of pids.a!) await system.call(pid, 'inc');
    const before = await Promise.all(pids.a!.map((p) => system.node('a').getState(p)));
    const modsBefore = await system.node('a').modules();
    const report = await system.upgrade({ nodes: ['a', 'b'], modules: [{ module: 'counter', source: { code: counterV2 }, extra: { fail: true } }] });
    expect(report.ok).toBe(false);
    expect(report.nodes.map((n) => n.status)).toEqual(['rolled_back', 'skipped']);
    const failed = report.nodes[0]!;
    if (failed.status !== 'rolled_back') throw new Error('unreachable');
    expect(failed.error).toMatchObject({ op: 'codeChange', code: 'refused' });
    expect(await Promise.all(pids.a!.map((p) => system.node('a').getState(p)))).toEqual(before);
    const modsAfter = await system.node('a').modules();
    expect(modsAfter.map((m) => ({ ...m, versions: m.versions.map((v) => ({ ...v, loadedAt: 0 })) }))).toEqual(
      modsBefore.map((m) => ({ ...m, versions: m.versions.map((v) => ({ ...v, loadedAt: 0 })) })),
    );
    // processes run again, on v1
    expect(await system.call(pids.a![0]!, 'vsn')).toBe(1);
    expect(await system.call(pids.a![0]!, 'inc')).toBe(2);
    expect(await system.call(pids.b![0]!, 'vsn')).toBe(1);
  });

  it('rejects bad plans before touching any node', async () => {
    const { system } = await start(['a']);
    await expect(system.upgrade({ modules: [] })).rejects.toBeInstanceOf(BadArgument);
    await expect(system.upgrade({ modules: [{ module: 'x', source: { code: 'export const a = ;' } }] })).rejects.toBeInstanceOf(LoadError);
    await expect(
      system.upgrade({
        modules: [
          { module: 'x', source: { code: '' }, dependsOn: ['y'] },
          { module: 'y', source: { code: '' }, dependsOn: ['x'] },
        ],
      }),
    ).rejects.toThrow(/cycle/);
    await expect(system.upgrade({ nodes: ['nope'], modules: [{ module: 'x', source: { code: '' } }] })).rejects.toThrow(/nope/);
    // The plan's shape, checked before anything is compiled: each problem named by its field.
    const problems = async (plan: unknown) => {
      const error = await system.upgrade(plan as UpgradePlan).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BadArgument);
      return (error as BadArgument & { details: { problems: string[] } }).details.problems;
    };
    // A plain string used to be compiled as source text; now it is refused, naming what to write.
    expect(await problems({ modules: [{ module: 'x', source: 'export const a = 1;' }] })).toEqual([
      expect.stringMatching(
        /^modules\[0\]\.source: must be \{ "path": file \} or \{ "code": source text \}; a plain string is not taken as source text any more/,
      ),
    ]);
    expect(await problems({ modules: [{ module: 'x', source: { code: '' } }], canray: 'a', node: ['a'] })).toEqual([
      "canray: unknown field (did you mean 'canary'?)",
      "node: unknown field (did you mean 'nodes'?)",
    ]);
    expect(await problems({ modules: [{ module: 'x', source: { code: '' }, dependsOn: ['counter'] }] })).toEqual([
      "modules[0].dependsOn[0]: 'counter' is not a module of this plan (its modules: x); list it in the plan, or drop it if it is already loaded",
    ]);
    expect(
      await problems({
        nodes: ['b'],
        canary: 'a',
        modules: [
          { module: 'x', source: { code: '' } },
          { module: 'x', source: { path: 1 } },
        ],
      }),
    ).toEqual([
      'modules[1].source.path: must be a file path, got 1',
      "modules[1].module: 'x' is already modules[0]; a module appears once in a plan",
      "canary: 'a' is not among the plan's nodes",
    ]);
    expect(await problems({ nodes: { except: ['aa'] }, modules: [{ module: 'x', source: { code: '' } }] })).toEqual([
      "nodes.except[0]: no node named 'aa' (did you mean 'a'?)",
    ]);
    expect((await system.node('a').modules()).map((m) => m.name)).toEqual(['counter']);
  });
});

describe('plans that leave nothing out', () => {
  it('a node that is not running is reported skipped with its reason, and the report is not ok', async () => {
    const { system, pids } = await start(['a', 'b', 'c']);
    await system.node('b').stop();
    const report = await system.upgrade({ modules: [{ module: 'counter', source: { code: counterV2 } }] });
    expect(report.ok).toBe(false);
    expect(report.nodes.map((n) => [n.node, n.status])).toEqual([
      ['a', 'upgraded'],
      ['b', 'skipped'],
      ['c', 'upgraded'],
    ]);
    expect(report.nodes[1]).toMatchObject({ reason: "node 'b' is stopped" });
    expect(await system.call(pids.c![0]!, 'vsn')).toBe(2);
  });

  it("a dry run lists each node's steps and changes nothing; an unknown node in the plan is refused before anything runs", async () => {
    const { system, pids } = await start(['a', 'b']);
    const plan = { modules: [{ module: 'counter', source: { code: counterV2 }, extra: { seed: [1] } }], nodes: ['b', 'a'] };
    const dry = await system.upgrade(plan, { dryRun: true });
    expect(dry).toMatchObject({ ok: true, dryRun: true });
    expect(dry.nodes.map((n) => [n.node, n.status])).toEqual([
      ['b', 'planned'],
      ['a', 'planned'],
    ]);
    expect(dry.nodes[0]).toMatchObject({
      steps: [
        'suspend the processes using counter',
        "load counter (making room with purge 'soft')",
        'codeChange counter with extra {"seed":[1]}',
        'resume them',
        "purge old counter ('soft')",
      ],
    });
    expect(await system.call(pids.a![0]!, 'vsn')).toBe(1);
    expect((await system.node('a').modules()).find((m) => m.name === 'counter')!.versions).toHaveLength(1);
    await expect(system.upgrade({ ...plan, nodes: ['a', 'nope'] })).rejects.toThrow(/nope/);
    await expect(system.upgrade({ ...plan, nodes: ['a', 'nope'] })).rejects.toBeInstanceOf(BadArgument);
    expect(await system.call(pids.a![0]!, 'vsn')).toBe(1);
  });
});
