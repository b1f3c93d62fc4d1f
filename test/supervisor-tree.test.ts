/**
 * Trees, code change and the module-code API of supervisors, against OTP's supervisor_SUITE
 * (tree, count_children, do_not_save_child_specs_for_temporary_children, child_unlink,
 * hanging_restart_loop, code_change, code_change_simple), plus the System face: node specs
 * whose `start` is a tree, recreated on a node restart, and the NodeHandle calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Refused } from '../src/errors.js';
import type { Pid } from '../src/kernel/pid.js';
import { System } from '../src/index.js';
import { alive, call, child, counts, downReason, settled, startSup, supKernel, terminate, watch, which } from './helpers/sup-tools.js';
import { HOST, sent, waitFor } from './helpers/kernel-tools.js';
import { js } from './helpers/code-tools.js';

const flags = (strategy = 'one_for_one', intensity = 2, period = 3600_000) => ({ strategy, intensity, period });

describe('trees and bookkeeping', () => {
  it('tree: a dynamic grandchild restarts alone; a failing one restarts the tree without its dynamic children', async () => {
    const k = supKernel();
    const top = startSup(k, { ...flags('one_for_all', 4), children: [] });
    const sup1 = (
      await call(k, top, 'start_child', {
        id: 'supchild1',
        start: { supervisor: 'sup', args: [{ ...flags('one_for_one', 4), children: [child('child1'), child('child2')] }] },
      })
    ).ok;
    const sup2 = (await call(k, top, 'start_child', { id: 'supchild2', start: { supervisor: 'sup', args: [{ ...flags('one_for_one', 4), children: [] }] } }))
      .ok;
    expect(await counts(k, top)).toEqual([2, 2, 2, 0]);
    const [{ pid: cp2 }, { pid: cp1 }] = await which(k, sup1);
    expect(await counts(k, sup1)).toEqual([2, 2, 0, 2]);
    expect(await counts(k, sup2)).toEqual([0, 0, 0, 0]);
    const cp3 = (await call(k, sup2, 'start_child', child('child3', 'permanent', 1000, ['error']))).ok;
    const cp4 = (await call(k, sup2, 'start_child', child('child4'))).ok;
    await terminate(k, sup2, cp4, 'abnormal');
    expect((await which(k, sup1)).map((c) => c.pid)).toEqual([cp2, cp1]);
    const [{ pid: newCp4 }, { pid: same3 }] = await which(k, sup2);
    expect(same3).toBe(cp3);
    expect(newCp4).not.toBe(cp4);
    // child3 cannot restart: sup2 gives up with shutdown, and the one_for_all top restarts both.
    await watch(k, sup2);
    await terminate(k, sup2, cp3, 'abnormal');
    expect(await downReason(k, sup2)).toBe('shutdown');
    await settled(k, top);
    const [{ id: i2, pid: newSup2 }, { id: i1, pid: newSup1 }] = await which(k, top);
    expect([i2, i1]).toEqual(['supchild2', 'supchild1']);
    expect(await counts(k, top)).toEqual([2, 2, 2, 0]);
    expect((await which(k, newSup1)).map((c) => c.id)).toEqual(['child2', 'child1']);
    expect(await which(k, newSup2)).toEqual([]);
    // The tree, as processInfo shows it.
    expect(k.kernel.processInfo(top as Pid)?.supervisor).toEqual({
      strategy: 'one_for_all',
      intensity: 4,
      period: 3600_000,
      children: [
        { id: 'supchild2', pid: newSup2, type: 'supervisor', modules: ['sup'] },
        { id: 'supchild1', pid: newSup1, type: 'supervisor', modules: ['sup'] },
      ],
    });
  });

  it('count_children: 2000 temporary dynamic children counted, then all gone', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('simple_one_for_one'), children: [child('child', 'temporary')] });
    for (let i = 0; i < 1000; i++) await call(k, sup, 'start_child', []);
    expect((await which(k, sup)).length).toBe(1000);
    expect(await counts(k, sup)).toEqual([1, 1000, 0, 1000]);
    for (let i = 0; i < 1000; i++) await call(k, sup, 'start_child', []);
    const all = await which(k, sup);
    expect(all.length).toBe(2000);
    expect(await counts(k, sup)).toEqual([1, 2000, 0, 2000]);
    for (const c of all) k.kernel.exit(c.pid, 'kill');
    await settled(k, sup);
    expect(await counts(k, sup)).toEqual([1, 0, 0, 0]);
  });

  it('do_not_save_child_specs_for_temporary_children: restarted, already_present, or forgotten', async () => {
    for (const strategy of ['one_for_all', 'one_for_one', 'rest_for_one']) {
      for (const how of ['kill', 'normal', 'abnormal', 'supervisor'] as const) {
        const k = supKernel();
        const sup = startSup(k, { ...flags(strategy), children: [] });
        for (const restart of ['permanent', 'transient', 'temporary']) {
          const spec = child(`child_${restart}`, restart);
          const { ok: pid } = await call(k, sup, 'start_child', spec);
          if (how === 'supervisor') expect(await call(k, sup, 'terminate_child', spec.id)).toEqual({ ok: true });
          else await terminate(k, sup, pid, how);
          const again = await call(k, sup, 'start_child', spec);
          if (restart === 'temporary') expect(again.ok).toBeTruthy();
          else if (how === 'supervisor' || (restart === 'transient' && how === 'normal')) {
            expect(again).toEqual({ error: 'already_present' });
            expect((await call(k, sup, 'restart_child', spec.id)).ok).toBeTruthy();
          } else expect(again.error.already_started).toBeTruthy();
        }
      }
    }
  });

  it('child_unlink: a child that unlinked itself is still ended by terminateChild', async () => {
    const k = supKernel();
    k.load(
      'naughty',
      `
      import { receive, unlink, trapExit } from 'subnode';
      export function start(sup: string) { unlink(sup); trapExit(true); return loop(); }
      function loop(): unknown { return receive(() => loop()); }
    `,
    );
    const sup = startSup(k, { ...flags(), children: [] });
    const { ok: pid } = await call(k, sup, 'start_child', { id: 'naughty_child', start: { module: 'naughty', fn: 'start', args: [sup] }, shutdown: 50 });
    await settled(k, sup);
    expect(await call(k, sup, 'terminate_child', 'naughty_child')).toEqual({ ok: true });
    expect(alive(k, pid)).toBe(false);
  });

  it('hanging_restart_loop: a child stuck restarting can be terminated; restartChild and deleteChild say restarting', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('one_for_one', 1_000_000, 60_000), children: [] });
    const { ok: pid } = await call(k, sup, 'start_child', child('child1', 'permanent', 'brutal_kill', ['error']));
    k.kernel.exit(pid, 'die');
    await waitFor(() => k.kernel.processInfo(sup as Pid)?.supervisor?.children[0]?.pid === 'restarting', 'child1 to be restarting');
    expect(await call(k, sup, 'start_child', child('child1'))).toEqual({ error: 'already_present' });
    expect(await call(k, sup, 'restart_child', 'child1')).toEqual({ error: 'restarting' });
    expect(await call(k, sup, 'delete_child', 'child1')).toEqual({ error: 'restarting' });
    expect(await counts(k, sup)).toEqual([1, 0, 0, 1]);
    expect(await call(k, sup, 'terminate_child', 'child1')).toEqual({ ok: true });
    expect(await which(k, sup)).toEqual([{ id: 'child1', pid: null, type: 'worker', modules: ['child'] }]);
    await watch(k, sup);
    k.kernel.exit(sup as Pid, 'shutdown');
    expect(await downReason(k, sup)).toBe('shutdown');
  });
});

describe('code_change', () => {
  /** sup v2: init reads what to return from its argument's `next` field. */
  const supV2 = `export const vsn = 2; export function init(r: any) { return r.next; }`;

  async function fakeUpgrade(k: ReturnType<typeof supKernel>, sup: string, next: unknown): Promise<void> {
    const state = k.kernel.getState(sup as Pid) as { args: any[] };
    k.kernel.suspend(sup as Pid);
    k.kernel.replaceState(sup as Pid, { ...state, args: [{ next }] });
    try {
      k.kernel.changeCode(sup as Pid, 'sup');
    } finally {
      k.kernel.resume(sup as Pid);
    }
  }

  it('code_change: the new init changes flags and specs; new children are added but not started', async () => {
    const k = supKernel();
    const sup = startSup(k, { strategy: 'one_for_one', intensity: 0, period: 1000, children: [] });
    k.load('sup', supV2);
    await fakeUpgrade(k, sup, { strategy: 'one_for_one', intensity: 1, period: 3000, children: [] });
    expect(k.kernel.getState(sup as Pid)).toMatchObject({ intensity: 1, period: 3000 });
    await expect(fakeUpgrade(k, sup, { children: [{ id: 'child1', restart: 'permanent' }] })).rejects.toThrow(Refused);
    await expect(fakeUpgrade(k, sup, { children: [{ id: 'child1', restart: 'permanent' }] })).rejects.toMatchObject({ details: { reason: 'missing_start' } });
    await fakeUpgrade(k, sup, { children: [child('child1', 'permanent', 2000), child('child2', 'permanent', 'brutal_kill')] });
    expect(await which(k, sup)).toEqual([
      { id: 'child2', pid: null, type: 'worker', modules: ['child'] },
      { id: 'child1', pid: null, type: 'worker', modules: ['child'] },
    ]);
    expect((await call(k, sup, 'restart_child', 'child1')).ok).toBeTruthy();
    expect((await call(k, sup, 'restart_child', 'child2')).ok).toBeTruthy();
    const before = await which(k, sup);
    await fakeUpgrade(k, sup, { children: [child('child1', 'permanent', 1000), child('child3', 'permanent', 'brutal_kill')] });
    // Children are not deleted on upgrade: child2 is still there; child1 keeps running with its new spec.
    const after = await which(k, sup);
    expect(after.map((c) => c.id)).toEqual(['child2', 'child3', 'child1']);
    expect(after[2].pid).toBe(before[1].pid);
    expect((k.kernel.getState(sup as Pid) as any).children[0].spec.shutdown).toBe(1000);
    await fakeUpgrade(k, sup, 'ignore');
    await expect(fakeUpgrade(k, sup, { intensity: 'faulty_intensity', children: [] })).rejects.toMatchObject({
      details: { reason: { supervisor_data: { invalid_intensity: 'faulty_intensity' } } },
    });
    await expect(fakeUpgrade(k, sup, 'faulty_flags')).rejects.toMatchObject({ details: { reason: { supervisor_data: { invalid_type: 'faulty_flags' } } } });
    expect((await which(k, sup)).map((c) => c.id)).toEqual(['child2', 'child3', 'child1']);
  });

  it('code_change_simple: the one spec may change; adding or removing one is refused', async () => {
    const k = supKernel();
    const simple = { strategy: 'simple_one_for_one', intensity: 0, period: 1000 };
    const sup = startSup(k, { ...simple, children: [child('child1', 'permanent', 'brutal_kill')] });
    k.load('sup', supV2);
    await fakeUpgrade(k, sup, { ...simple, children: [child('child1', 'permanent', 1000)] });
    expect((k.kernel.getState(sup as Pid) as any).template.shutdown).toBe(1000);
    await expect(fakeUpgrade(k, sup, { ...simple, children: [child('child1'), child('child2')] })).rejects.toMatchObject({
      details: { reason: { bad_start_spec: ['child1', 'child2'] } },
    });
    await expect(fakeUpgrade(k, sup, { ...simple, children: [] })).rejects.toMatchObject({ details: { reason: { bad_start_spec: [] } } });
  });
});

describe('module code and the host', () => {
  it('module code starts a linked supervisor and calls it in continuation style', async () => {
    const k = supKernel();
    k.load(
      'app',
      `
      import { supervisor, send, receive, on } from 'subnode';
      export function start(spec: any) {
        const sup = supervisor.startLink('sup', [spec], { name: 'app_sup' })!;
        return supervisor.startChild(sup, { id: 'w', start: { module: 'worker', fn: 'start' } }, (r: any) =>
          supervisor.whichChildren('app_sup', (children) =>
            supervisor.countChildren(sup, (c) => { send('${HOST}', { r, children, c }); return receive(on('stop', () => 'done')); })));
      }
    `,
    );
    const app = k.kernel.spawn('app', 'start', [{ strategy: 'one_for_one', children: [child('c1')] }]);
    await waitFor(() => sent(k).length > 0, 'the app to report');
    const report = sent(k)[0] as any;
    expect(report.r.ok).toMatch(/^<a\./);
    expect(report.children.map((c: any) => c.id)).toEqual(['w', 'c1']);
    expect(report.c).toEqual({ specs: 2, active: 2, supervisors: 0, workers: 2 });
    const sup = k.kernel.whereis('app_sup')!;
    expect(k.kernel.processInfo(sup)?.behaviour?.kind).toBe('supervisor');
    // Its parent ends: the tree ends with it.
    await watch(k, sup);
    k.kernel.exit(app as Pid, 'crash');
    expect(await downReason(k, sup)).toBe('crash');
    await waitFor(() => k.kernel.processes().length === 1, 'the tree to end'); // only the watcher is left
  });
});

describe('System: supervision trees in node specs', () => {
  let system: System | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('start entries can be trees, recreated when the node restarts; NodeHandle calls and processInfo show them', async () => {
    system = await System.start({
      nodes: [
        {
          name: 'a',
          modules: {
            sup: 'export function init(r: any) { return r; }',
            child: `export function init() { return {}; } export function handleCall(r: any, f: any, s: any) { return { reply: r, state: s }; }`,
          },
          start: [{ supervisor: 'sup', args: [{ strategy: 'one_for_one', children: [{ id: 'c1', start: { server: 'child' } }] }], name: 'top' }],
        },
      ],
    });
    const node = system.node('a');
    const top = (await node.whereis('top'))!;
    expect((await node.processInfo(top))?.behaviour?.kind).toBe('supervisor');
    const [c1] = await node.whichChildren(top);
    expect(c1).toMatchObject({ id: 'c1', type: 'worker' });
    const started = await node.startChild(top, { id: 'c2', start: { server: 'child' }, restart: 'transient' });
    expect('ok' in started && started.ok).toBeTruthy();
    expect(await node.countChildren(top)).toEqual({ specs: 2, active: 2, supervisors: 0, workers: 2 });
    expect(await node.terminateChild(top, 'c2')).toEqual({ ok: true });
    expect(await node.restartChild(top, 'c2')).toMatchObject({ ok: expect.stringMatching(/^<a\./) });
    expect(await node.terminateChild(top, 'c2')).toEqual({ ok: true });
    expect(await node.deleteChild(top, 'c2')).toEqual({ ok: true });
    const other = await node.startSupervisor('sup', [{ children: [] }]);
    expect((await node.processInfo(other!))?.supervisor).toEqual({ strategy: 'one_for_one', intensity: 1, period: 5000, children: [] });
    await node.restart();
    const top2 = (await node.whereis('top'))!;
    expect(top2).not.toBe(top);
    expect((await node.whichChildren(top2)).map((c) => c.id)).toEqual(['c1']);
  });
});

void js;
