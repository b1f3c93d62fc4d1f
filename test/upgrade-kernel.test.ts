/**
 * Upgrade transactions on one node (src/kernel/upgrade.ts, applyUpgrade) run straight on a local
 * kernel — rollback of loads and state conversions, purge steps after the commit, drains, events —
 * and plans over a System whose nodes fail or are down.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import { info, tell, waitDead, waitFor, waitWaiting } from './helpers/kernel-tools.js';
import { ask, callFromHost, eventsOf, js, srvSource, summary } from './helpers/code-tools.js';
import { applyUpgrade, type NodeUpgradeReport, type UpgradeStep } from '../src/kernel/upgrade.js';
import { System, type SystemEvent } from '../src/index.js';
import { counterV1, counterV2 } from './fixtures/counter.js';
import { forever } from '../policies/code.js';
import { until } from './helpers/wait.js';

/** counter v1 under another vsn, so a second load of "the same" code is told apart. */
const counterV1b = counterV1.replace('export const vsn = 1;', "export const vsn = '1b';");

/** v2 whose codeChange converts every state except the one whose count is `extra.failAt`. */
const counterV2Picky = counterV2.replace(
  'if (extra?.fail) {',
  'if (extra?.failAt !== undefined && state.count === extra.failAt) throw new Error(`will not convert ${state.count}`);\n    if (extra?.fail) {',
);

/** Versions without loadedAt: `[version, state, processes]`. */
const versions = (k: LocalKernel, module: string) => summary(k, module);

function sync(result: NodeUpgradeReport | Promise<NodeUpgradeReport>): NodeUpgradeReport {
  if (result instanceof Promise) throw new Error('unexpected asynchronous upgrade');
  return result;
}

/** The steps of a one-module plan: suspend, load, codeChange (from `oldVsn`, default the state's), resume. */
function plan(module: string, source: string, extra?: unknown, oldVsn?: unknown): UpgradeStep[] {
  return [{ op: 'suspend', modules: [module] }, { op: 'load', module, js: js(module, source) }, { op: 'codeChange', module, extra, oldVsn }, { op: 'resume' }];
}

/** Two counter servers (counts 1 and 10) over versions [1 old idle, 2 current ('1b')]. */
async function counters(): Promise<{ k: LocalKernel; s1: string; s2: string }> {
  const k = localKernel();
  k.load('counter', counterV1);
  k.load('counter', counterV1b);
  const s1 = k.kernel.startBehaviour('server', 'counter', [0]);
  const s2 = k.kernel.startBehaviour('server', 'counter', [10]);
  expect(await callFromHost(k, s1, 'inc')).toBe(1);
  return { k, s1, s2 };
}

// ---------------------------------------------------------------------------------------------

describe('applyUpgrade: rollback', () => {
  it('a failing load step (bad source) rolls back nothing yet done and resumes the suspended processes', async () => {
    const { k, s1, s2 } = await counters();
    const before = k.kernel.modules();
    const states = [k.kernel.getState(s1 as never), k.kernel.getState(s2 as never)];
    const steps = plan('counter', counterV2);
    steps[1] = { op: 'load', module: 'counter', js: 'function ( {' };
    const report = sync(applyUpgrade(k.kernel, steps));
    expect(report).toMatchObject({ ok: false, rolledBack: true, loaded: [], upgraded: [], suspended: 2, killed: [] });
    expect(report.error).toMatchObject({ code: 'load_failed', step: 1, op: 'load' });
    expect(k.kernel.modules()).toEqual(before);
    expect([k.kernel.getState(s1 as never), k.kernel.getState(s2 as never)]).toEqual(states);
    expect(info(k, s1)?.status).toBe('waiting');
    expect(info(k, s2)?.status).toBe('waiting');
    expect(await callFromHost(k, s1, 'inc')).toBe(2);
    expect(await callFromHost(k, s2, 'vsn')).toBe('1b');
    expect(eventsOf(k, 'upgrade_step').map((e) => [e.step, e.op, e.module])).toEqual([
      [0, 'suspend', undefined],
      [1, 'load', 'counter'],
    ]);
    expect(eventsOf(k, 'upgrade_rollback')).toEqual([
      { type: 'upgrade_rollback', node: 'a', step: 1, op: 'load', reason: expect.stringContaining('does not compile') },
    ]);
  });

  it('a failing load after a successful one undoes the first load', async () => {
    const k = localKernel();
    k.load('lib', `export const vsn = 1; export function f() { return 1; }`);
    const before = k.kernel.modules();
    const report = sync(
      applyUpgrade(k.kernel, [
        { op: 'load', module: 'lib', js: js('lib', `export const vsn = 2; export function f() { return 2; }`) },
        { op: 'load', module: 'fresh', js: js('fresh', `export const x = 1;`) },
        { op: 'load', module: 'broken', js: 'throw new Error("top level")' },
      ]),
    );
    expect(report).toMatchObject({ ok: false, rolledBack: true, loaded: [], error: { code: 'load_failed', step: 2, op: 'load' } });
    expect(versions(k, 'lib')).toEqual([[1, 'current', 0]]);
    // A module new in the plan is gone again; the broken one never came.
    expect(k.kernel.modules()).toEqual(before);
    // The live namespace is the old version's again.
    k.load('probe', `import { send } from 'subnode'; import * as lib from './lib'; export function go() { send('<host.1>', lib.f()); }`);
    k.kernel.spawn('probe', 'go');
    await waitFor(() => k.outbound.length > 0, 'the probe');
    expect(k.outbound.flatMap((o) => o.envelopes).map((e) => e[2])).toEqual([1]);
  });

  it('a failing codeChange after a successful load restores the version list (with the idle old version the load dropped) and the very state objects', async () => {
    const { k, s1, s2 } = await counters();
    expect(versions(k, 'counter')).toEqual([
      [1, 'old', 0],
      [2, 'current', 2],
    ]); // s1 and s2 run the current version
    const before = k.kernel.modules();
    const states = [k.kernel.getState(s1 as never), k.kernel.getState(s2 as never)];
    const eventsBefore = k.events.length;

    // s1 (count 1) converts, then s2 (count 10) refuses.
    const report = sync(applyUpgrade(k.kernel, plan('counter', counterV2Picky, { failAt: 10 })));
    expect(report).toMatchObject({ ok: false, rolledBack: true, loaded: [], upgraded: [], error: { code: 'refused', step: 2, op: 'codeChange' } });
    expect(report.error!.message).toMatch(/will not convert 10/);

    // The load had dropped version 1 (idle) to make room, and converted s1: all undone.
    const during = k.events.slice(eventsBefore);
    expect(during.filter((e) => e.type === 'module_purged')).toEqual([{ type: 'module_purged', node: 'a', module: 'counter', version: 1 }]);
    // Conversions are reported once per committed transaction: a rolled back one reports none.
    expect(during.filter((e) => e.type === 'code_changed' || e.type === 'upgrade_converted')).toEqual([]);
    expect(k.kernel.modules()).toEqual(before);
    expect(versions(k, 'counter')).toEqual([
      [1, 'old', 0],
      [2, 'current', 2],
    ]);
    expect(k.kernel.getState(s1 as never)).toBe(states[0]);
    expect(k.kernel.getState(s2 as never)).toBe(states[1]);
    expect(states).toEqual([{ count: 1 }, { count: 10 }]);
    expect(info(k, s1)?.behaviour?.vsn).toBe('1b');
    expect(info(k, s2)?.behaviour?.vsn).toBe('1b');
    expect([info(k, s1)?.status, info(k, s2)?.status]).toEqual(['waiting', 'waiting']);
    expect(await callFromHost(k, s1, 'vsn')).toBe('1b');
    expect(await callFromHost(k, s1, 'inc')).toBe(2);

    expect(eventsOf(k, 'upgrade_step').map((e) => [e.step, e.op])).toEqual([
      [0, 'suspend'],
      [1, 'load'],
      [2, 'codeChange'],
    ]);
    expect(eventsOf(k, 'upgrade_rollback')).toEqual([
      { type: 'upgrade_rollback', node: 'a', step: 2, op: 'codeChange', reason: expect.stringMatching(/will not convert 10/) },
    ]);

    // The node is fine for the next transaction.
    const next = sync(applyUpgrade(k.kernel, plan('counter', counterV2Picky, { seed: [] }, 1)));
    expect(next).toMatchObject({ ok: true, loaded: [{ module: 'counter', previous: 2 }] });
    expect(next.upgraded.sort()).toEqual([s1, s2].sort());
    expect(await callFromHost(k, s2, 'get')).toBe(10);
    expect(await callFromHost(k, s2, 'vsn')).toBe(2);
  });

  it('under a retention that collects idle versions, a rollback brings back the collected previous version too', async () => {
    const k = localKernel();
    k.kernel.setPolicy(forever);
    k.load('counter', counterV1);
    const s = k.kernel.startBehaviour('server', 'counter', [3]);
    const before = k.kernel.modules();
    const report = sync(applyUpgrade(k.kernel, plan('counter', counterV2, { fail: true })));
    expect(report).toMatchObject({ ok: false, rolledBack: true });
    expect(k.kernel.modules()).toEqual(before);
    expect(await callFromHost(k, s, 'inc')).toBe(4);
  });

  it('a successful transaction converts, resumes and reports; suspended counts only the processes it suspended', async () => {
    const { k, s1, s2 } = await counters();
    const report = sync(applyUpgrade(k.kernel, plan('counter', counterV2, { seed: [5] }, 1)));
    expect(report).toMatchObject({ ok: true, suspended: 2, loaded: [{ module: 'counter', version: 3, previous: 2 }], killed: [], lingering: { counter: [] } });
    expect(report.upgraded.sort()).toEqual([s1, s2].sort());
    expect(k.kernel.getState(s1 as never)).toEqual({ total: 1, history: [5] });
    expect([info(k, s1)?.status, info(k, s2)?.status]).toEqual(['waiting', 'waiting']);
    expect(eventsOf(k, 'upgrade_step').map((e) => e.op)).toEqual(['suspend', 'load', 'codeChange', 'resume']);
    expect(eventsOf(k, 'upgrade_rollback')).toEqual([]);
    // One event for the transaction's conversions (a macrotask after the commit), none per process.
    await until('the upgrade_converted event', () => eventsOf(k, 'upgrade_converted').length > 0);
    expect(eventsOf(k, 'upgrade_converted')).toEqual([
      { type: 'upgrade_converted', node: 'a', modules: ['counter'], mode: 'phased', count: 2, pids: [`${s1}..${s2}`], chunks: 1 },
    ]);
    expect(eventsOf(k, 'code_changed')).toEqual([]);
  });

  it('a process suspended before the plan is converted too, and stays suspended', async () => {
    // The transaction's promise: no message meets new code with an old state. A server an operator
    // had suspended must get its codeChange like the others (and keep its suspension).
    const { k, s1, s2 } = await counters();
    k.kernel.suspend(s1 as never);
    const report = sync(applyUpgrade(k.kernel, plan('counter', counterV2, { seed: [] }, 1)));
    expect(report.ok).toBe(true);
    expect(info(k, s1)?.status).toBe('suspended');
    expect(info(k, s2)?.status).toBe('waiting');
    expect(k.kernel.getState(s2 as never)).toEqual({ total: 10, history: [] });
    expect(k.kernel.getState(s1 as never)).toEqual({ total: 1, history: [] });
  });
});

describe('applyUpgrade: purge steps after the commit', () => {
  async function lingering(): Promise<{ k: LocalKernel; pids: string[] }> {
    const k = localKernel();
    k.load('srv', srvSource(1));
    const pids = [k.kernel.spawn('srv', 'start', [0]) as string, k.kernel.spawn('srv', 'start', [0]) as string];
    for (const p of pids) await waitWaiting(k, p);
    return { k, pids };
  }

  it("mode 'kill' reports the killed pids; nothing lingers afterwards", async () => {
    const { k, pids } = await lingering();
    const report = sync(
      applyUpgrade(k.kernel, [
        { op: 'load', module: 'srv', js: js('srv', srvSource(2)) },
        { op: 'purge', module: 'srv', mode: 'kill' },
      ]),
    );
    expect(report).toEqual({
      ok: true,
      loaded: [{ module: 'srv', version: 2, previous: 1 }],
      upgraded: [],
      suspended: 0,
      lingering: { srv: [] },
      killed: pids,
    });
    for (const p of pids) expect(info(k, p)).toBeUndefined();
    expect(versions(k, 'srv')).toEqual([[2, 'current', 0]]);
    // Purge steps are not announced as transaction steps.
    expect(eventsOf(k, 'upgrade_step').map((e) => e.op)).toEqual(['load']);
  });

  it("mode 'soft' kills nothing and reports who lingers", async () => {
    const { k, pids } = await lingering();
    const report = sync(
      applyUpgrade(k.kernel, [
        { op: 'load', module: 'srv', js: js('srv', srvSource(2)) },
        { op: 'purge', module: 'srv', mode: 'soft' },
      ]),
    );
    expect(report).toMatchObject({ ok: true, killed: [], lingering: { srv: pids } });
    expect(await ask(k, pids[0]!)).toMatchObject({ vsn: 1 });
  });

  it('a drain purge makes applyUpgrade return a Promise; who leaves in time survives, the rest is killed', async () => {
    const { k, pids } = await lingering();
    const [leaver, stayer] = pids;
    const result = applyUpgrade(k.kernel, [
      { op: 'load', module: 'srv', js: js('srv', srvSource(2)) },
      { op: 'purge', module: 'srv', mode: { drain: 150, then: 'kill' } },
    ]);
    expect(result).toBeInstanceOf(Promise);
    // The transaction itself is committed already.
    expect(versions(k, 'srv')).toEqual([
      [1, 'old', 2],
      [2, 'current', 0],
    ]);
    tell(k, leaver!, 'upgrade');
    const report = await result;
    expect(report).toMatchObject({ ok: true, loaded: [{ module: 'srv', version: 2, previous: 1 }], killed: [stayer], lingering: { srv: [] } });
    await waitDead(k, stayer!);
    expect(await ask(k, leaver!)).toMatchObject({ vsn: 2 });
    expect(eventsOf(k, 'drain_started')).toHaveLength(1);
  });

  it('purges run in order after a drain; a refusing drain leaves its processes reported as lingering', async () => {
    const { k, pids } = await lingering();
    k.load('other', srvSource(1, 'other'));
    const other = k.kernel.spawn('other', 'start', [0]);
    await waitWaiting(k, other);
    const report = await applyUpgrade(k.kernel, [
      { op: 'load', module: 'srv', js: js('srv', srvSource(2)) },
      { op: 'load', module: 'other', js: js('other', srvSource(2, 'other')) },
      { op: 'purge', module: 'srv', mode: { drain: 50, then: 'refuse' } },
      { op: 'purge', module: 'other', mode: 'kill' },
    ]);
    expect(report).toMatchObject({ ok: true, killed: [other], lingering: { srv: pids, other: [] } });
    expect(await ask(k, pids[1]!)).toMatchObject({ vsn: 1 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('plans over a System', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  const bomb = `
    import { receive } from 'subnode';
    export function loop(): unknown {
      return receive((m: string) => { if (m === 'exit') (globalThis as any).process.exit(3); return loop(); });
    }
  `;

  function stopped(s: System, node: string): Promise<void> {
    return new Promise((resolve) => {
      const off = s.on('*', (e: SystemEvent) => {
        if (e.type === 'node_stopped' && e.node === node) {
          off();
          resolve();
        }
      });
    });
  }

  it("a node that is down is reported 'failed' with node_down; the rest is skipped unless continueOnError", async () => {
    system = await System.start({
      nodes: [
        { name: 'a', modules: { counter: counterV1 } },
        { name: 'b', restart: 'temporary', modules: { counter: counterV1, bomb } },
        { name: 'c', modules: { counter: counterV1 } },
      ],
    });
    const down = stopped(system, 'b');
    system.send(await system.node('b').spawn('bomb', 'loop'), 'exit');
    await down;
    expect(system.node('b').status).toBe('stopped');

    const first = await system.upgrade({ nodes: ['a', 'b', 'c'], modules: [{ module: 'counter', source: { code: counterV2 }, change: 'load' }] });
    expect(first.ok).toBe(false);
    expect(first.nodes.map((n) => [n.node, n.status])).toEqual([
      ['a', 'upgraded'],
      ['b', 'failed'],
      ['c', 'skipped'],
    ]);
    expect(first.nodes[1]).toMatchObject({ status: 'failed', error: { code: 'node_down' } });
    expect((await system.node('c').modules())[0]!.versions.map((v) => [v.version, v.state])).toEqual([[1, 'current']]);
    // a: loaded, and the plan's soft purge dropped the idle version 1.
    expect((await system.node('a').modules())[0]!.versions.map((v) => [v.version, v.state])).toEqual([[2, 'current']]);

    const second = await system.upgrade({
      nodes: ['a', 'b', 'c'],
      continueOnError: true,
      modules: [{ module: 'counter', source: { code: counterV2 }, change: 'load' }],
    });
    expect(second.ok).toBe(false);
    expect(second.nodes.map((n) => [n.node, n.status])).toEqual([
      ['a', 'upgraded'],
      ['b', 'failed'],
      ['c', 'upgraded'],
    ]);
    expect((await system.node('c').modules())[0]!.versions.map((v) => [v.version, v.state])).toEqual([[2, 'current']]);
    expect(second.nodes[0]).toMatchObject({ loaded: [{ module: 'counter', version: 3, previous: 2 }] });
    // '*' covers b too: not running, it is reported skipped with the reason (never silently left out), and the plan is not ok.
    const third = await system.upgrade({ modules: [{ module: 'counter', source: { code: counterV2 }, change: 'load' }] });
    expect(third.nodes.map((n) => [n.node, n.status])).toEqual([
      ['a', 'upgraded'],
      ['b', 'skipped'],
      ['c', 'upgraded'],
    ]);
    expect(third).toMatchObject({ ok: false, nodes: [{}, { reason: "node 'b' is stopped" }, {}] });
  });

  it('a canary failure leaves every other node untouched, even with continueOnError', async () => {
    system = await System.start({ nodes: ['a', 'b', 'c'].map((name) => ({ name, modules: { counter: counterV1 } })) });
    const servers: Record<string, string> = {};
    for (const n of ['a', 'b', 'c']) {
      servers[n] = await system.node(n).startServer('counter', [1]);
      await system.call(servers[n]!, 'inc');
    }
    const modulesBefore = await Promise.all(['a', 'b', 'c'].map((n) => system!.node(n).modules()));
    const events: SystemEvent[] = [];
    system.on('*', (e) => events.push(e));

    const report = await system.upgrade({
      canary: 'b',
      continueOnError: true,
      modules: [{ module: 'counter', source: { code: counterV2 }, extra: { fail: true } }],
    });
    expect(report.ok).toBe(false);
    expect(report.nodes.map((n) => [n.node, n.status])).toEqual([
      ['b', 'rolled_back'],
      ['a', 'skipped'],
      ['c', 'skipped'],
    ]);
    expect(await Promise.all(['a', 'b', 'c'].map((n) => system!.node(n).modules()))).toEqual(modulesBefore);
    for (const n of ['a', 'b', 'c']) {
      expect(await system.call(servers[n]!, 'vsn')).toBe(1);
      expect(await system.node(n).getState(servers[n]! as never)).toEqual({ count: 2 });
    }
    // Only the canary saw any upgrade step.
    expect(new Set(events.filter((e) => e.type === 'upgrade_step').map((e) => (e as { node: string }).node))).toEqual(new Set(['b']));
    expect(events.filter((e) => e.type === 'upgrade_node').map((e) => [(e as { node: string }).node, (e as { phase: string }).phase])).toEqual([
      ['b', 'start'],
      ['b', 'rolled_back'],
      ['a', 'skipped'],
      ['c', 'skipped'],
    ]);
  });
});
