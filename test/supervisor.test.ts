/**
 * The supervisor behaviour against OTP's own supervisor_SUITE: each test is named after the case
 * it ports (groups sup_start, sup_start_map, sup_stop, and the child administration cases).
 * Kernel level, on the test thread.
 */
import { describe, expect, it } from 'vitest';
import { Refused } from '../src/errors.js';
import type { Pid } from '../src/kernel/pid.js';
import { alive, call, child, counts, downReason, info, startSup, supKernel, terminate, waitDead, watch, which } from './helpers/sup-tools.js';
import { spawnFn, waitWaiting } from './helpers/kernel-tools.js';

const flags = (strategy = 'one_for_one', intensity = 2, period = 3600_000) => ({ strategy, intensity, period });

function startError(fn: () => unknown): { reason: unknown } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Refused);
    return (error as Refused).details as { reason: unknown };
  }
  throw new Error('expected the start to fail');
}

describe('sup_start', () => {
  it('sup_start_normal: starts, and ends with shutdown from its parent', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    expect(info(k, sup)).toMatchObject({
      trapExit: true,
      behaviour: { kind: 'supervisor', module: 'sup' },
      supervisor: { strategy: 'one_for_one', children: [] },
    });
    await watch(k, sup);
    k.kernel.exit(sup as Pid, 'shutdown');
    expect(await downReason(k, sup)).toBe('shutdown');
  });

  it('sup_start_ignore_init: init returning ignore starts nothing', () => {
    const k = supKernel();
    expect(k.kernel.startSupervisor('sup', ['ignore'])).toBeUndefined();
    expect(k.kernel.processes()).toEqual([]);
  });

  it('sup_start_ignore_child: a child that ignores is kept as a spec without a pid', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    expect(await call(k, sup, 'start_child', { id: 'child1', start: { supervisor: 'sup', args: ['ignore'] } })).toEqual({ ok: null });
    const r2 = await call(k, sup, 'start_child', child('child2'));
    expect(await which(k, sup)).toEqual([
      { id: 'child2', pid: r2.ok, type: 'worker', modules: ['child'] },
      { id: 'child1', pid: null, type: 'supervisor', modules: ['sup'] },
    ]);
    expect(await counts(k, sup)).toEqual([2, 1, 1, 1]);
  });

  it('sup_start_ignore_temporary_child: an ignoring temporary child in init is not saved', async () => {
    const k = supKernel();
    const sup = startSup(k, {
      ...flags(),
      children: [{ id: 'child1', start: { supervisor: 'sup', args: ['ignore'] }, restart: 'temporary', type: 'worker' }, child('child2', 'temporary')],
    });
    const children = await which(k, sup);
    expect(children.map((c) => c.id)).toEqual(['child2']);
    expect(alive(k, children[0].pid)).toBe(true);
    expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
  });

  it('sup_start_ignore_temporary_child_start_child: nor when started with startChild', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    expect(await call(k, sup, 'start_child', { id: 'child1', start: { supervisor: 'sup', args: ['ignore'] }, restart: 'temporary', type: 'worker' })).toEqual({
      ok: null,
    });
    const r2 = await call(k, sup, 'start_child', child('child2', 'temporary'));
    expect(await which(k, sup)).toEqual([{ id: 'child2', pid: r2.ok, type: 'worker', modules: ['child'] }]);
    expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
  });

  it('sup_start_ignore_temporary_child_start_child_simple / _permanent_: an ignored dynamic child is not kept', async () => {
    const k = supKernel();
    for (const restart of ['temporary', 'permanent']) {
      const sup = startSup(k, { ...flags('simple_one_for_one'), children: [{ id: 'child1', start: { supervisor: 'sup' }, restart, type: 'worker' }] }, '');
      expect(await call(k, sup, 'start_child', ['ignore'])).toEqual({ ok: null });
      const r2 = await call(k, sup, 'start_child', [{ ...flags(), children: [] }]);
      expect(await which(k, sup)).toEqual([{ id: null, pid: r2.ok, type: 'worker', modules: ['sup'] }]);
      expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
      await watch(k, sup);
      k.kernel.exit(sup as Pid, 'shutdown');
      expect(await downReason(k, sup)).toBe('shutdown');
    }
  });

  it('sup_start_error_return / sup_start_fail: a bad or failing init fails the start', () => {
    const k = supKernel();
    expect(startError(() => k.kernel.startSupervisor('sup', ['invalid'])).reason).toEqual({ supervisor_data: { invalid_type: 'invalid' } });
    expect((startError(() => k.kernel.startSupervisor('sup', ['fail'])).reason as any).error.message).toBe('badmatch');
    expect(k.kernel.processes()).toEqual([]);
  });
});

describe('sup_start_map', () => {
  it('sup_start_map: defaults of a child spec (permanent, 5000 or infinity, worker)', async () => {
    const k = supKernel();
    const sup = startSup(k, {
      children: [
        { id: 'child1', start: { server: 'child' } },
        { id: 'child2', start: { server: 'child' }, shutdown: 'brutal_kill' },
        { id: 'child3', start: { supervisor: 'sup', args: [{ children: [] }] } },
      ],
    });
    const state = k.kernel.getState(sup as Pid) as any;
    expect(state).toMatchObject({ strategy: 'one_for_one', intensity: 1, period: 5000 });
    expect(state.children.map((c: any) => c.spec)).toEqual([
      {
        id: 'child1',
        start: { kind: 'server', module: 'child', fn: 'init', args: [] },
        restart: 'permanent',
        shutdown: 5000,
        type: 'worker',
        modules: ['child'],
      },
      {
        id: 'child2',
        start: { kind: 'server', module: 'child', fn: 'init', args: [] },
        restart: 'permanent',
        shutdown: 'brutal_kill',
        type: 'worker',
        modules: ['child'],
      },
      {
        id: 'child3',
        start: { kind: 'supervisor', module: 'sup', fn: 'init', args: [{ children: [] }] },
        restart: 'permanent',
        shutdown: 'infinity',
        type: 'supervisor',
        modules: ['sup'],
      },
    ]);
  });

  it('sup_start_map_faulty_specs: missing id or start, unknown fields, not an object', () => {
    const k = supKernel();
    const reason = (children: unknown[]) => startError(() => k.kernel.startSupervisor('sup', [{ children }])).reason;
    expect(reason([{ start: { server: 'child' } }])).toEqual({ start_spec: 'missing_id' });
    expect(reason([{ id: 'child2' }])).toEqual({ start_spec: 'missing_start' });
    // OTP ignores unknown keys in a map spec; here they are errors (a misspelt field is a bug).
    expect(reason([{ id: 'child3', start: { server: 'child' }, silly_flag: true }])).toEqual({ start_spec: { invalid_child_spec_field: 'silly_flag' } });
    expect(reason(['child4'])).toEqual({ start_spec: { invalid_child_spec: 'child4' } });
  });
});

describe('sup_stop', () => {
  it('sup_stop_infinity: children with shutdown infinity end with shutdown', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    const c1 = (await call(k, sup, 'start_child', { id: 'child1', start: { supervisor: 'sup', args: [{ children: [] }] }, shutdown: 'infinity' })).ok;
    const c2 = (await call(k, sup, 'start_child', child('child2', 'permanent', 'infinity'))).ok;
    await watch(k, c1);
    await watch(k, c2);
    k.kernel.exit(sup as Pid, 'shutdown');
    expect(await downReason(k, c1)).toBe('shutdown');
    expect(await downReason(k, c2)).toBe('shutdown');
  });

  it('sup_stop_timeout: a child that ignores shutdown is killed after its timeout', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    const c1 = (await call(k, sup, 'start_child', child('child1', 'permanent', 1000))).ok;
    const c2 = (await call(k, sup, 'start_child', { id: 'child2', start: { module: 'worker', fn: 'stubborn' }, shutdown: 100 })).ok;
    await watch(k, c1);
    await watch(k, c2);
    const t0 = performance.now();
    k.kernel.exit(sup as Pid, 'shutdown');
    expect(await downReason(k, c2)).toBe('killed');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    expect(await downReason(k, c1)).toBe('shutdown');
    await waitDead(k, sup);
  });

  it('sup_stop_brutal_kill: a brutal_kill child is killed', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    const c1 = (await call(k, sup, 'start_child', child('child1'))).ok;
    const c2 = (await call(k, sup, 'start_child', child('child2', 'permanent', 'brutal_kill'))).ok;
    await watch(k, c1);
    await watch(k, c2);
    k.kernel.exit(sup as Pid, 'shutdown');
    expect(await downReason(k, c1)).toBe('shutdown');
    expect(await downReason(k, c2)).toBe('killed');
  });
});

describe('child administration', () => {
  it('child_adm: startChild, terminateChild, restartChild, deleteChild, whichChildren, countChildren', async () => {
    const k = supKernel();
    const spec = child('child1');
    const sup = startSup(k, { ...flags(), children: [spec] });
    const [{ pid: cpid }] = await which(k, sup);
    expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
    expect(await call(k, sup, 'start_child', spec)).toEqual({ error: { already_started: cpid } });
    expect(await call(k, sup, 'terminate_child', 'hej')).toEqual({ error: 'not_found' });
    await watch(k, cpid);
    expect(await call(k, sup, 'terminate_child', 'child1')).toEqual({ ok: true });
    expect(await downReason(k, cpid)).toBe('shutdown');
    expect(await which(k, sup)).toEqual([{ id: 'child1', pid: null, type: 'worker', modules: ['child'] }]);
    expect(await counts(k, sup)).toEqual([1, 0, 0, 1]);
    expect(await call(k, sup, 'terminate_child', 'child1')).toEqual({ ok: true });
    expect(await call(k, sup, 'start_child', spec)).toEqual({ error: 'already_present' });
    const cpid2 = (await call(k, sup, 'restart_child', 'child1')).ok;
    expect(alive(k, cpid2)).toBe(true);
    expect(await call(k, sup, 'restart_child', 'child1')).toEqual({ error: 'running' });
    expect(await call(k, sup, 'restart_child', 'child2')).toEqual({ error: 'not_found' });
    expect(await call(k, sup, 'delete_child', 'child1')).toEqual({ error: 'running' });
    expect(await call(k, sup, 'delete_child', 'hej')).toEqual({ error: 'not_found' });
    expect(await call(k, sup, 'terminate_child', 'child1')).toEqual({ ok: true });
    expect(await call(k, sup, 'delete_child', 'child1')).toEqual({ ok: true });
    expect(await call(k, sup, 'restart_child', 'child1')).toEqual({ error: 'not_found' });
    expect(await which(k, sup)).toEqual([]);
    expect(await counts(k, sup)).toEqual([0, 0, 0, 0]);
    const cpid3 = (await call(k, sup, 'start_child', spec)).ok;
    expect(await which(k, sup)).toEqual([{ id: 'child1', pid: cpid3, type: 'worker', modules: ['child'] }]);
    // Terminate by pid is not allowed when not simple_one_for_one.
    expect(await call(k, sup, 'terminate_child', cpid3)).toEqual({ error: 'not_found' });
    expect(alive(k, cpid3)).toBe(true);
    expect(() => k.kernel.supervisorCall('<a.999>' as Pid, { $sup: 'which_children' })).toThrow(/no process/);
  });

  it('child_adm_simple: dynamic children by pid; id-based calls are errors', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('simple_one_for_one'), children: [child('child')] });
    expect(await which(k, sup)).toEqual([]);
    expect(await counts(k, sup)).toEqual([1, 0, 0, 0]);
    const c1 = (await call(k, sup, 'start_child', [])).ok;
    expect(await which(k, sup)).toEqual([{ id: null, pid: c1, type: 'worker', modules: ['child'] }]);
    const c2 = (await call(k, sup, 'start_child', [])).ok;
    expect((await which(k, sup)).map((c) => c.pid).sort()).toEqual([c1, c2].sort());
    expect(await counts(k, sup)).toEqual([1, 2, 0, 2]);
    expect(await call(k, sup, 'terminate_child', 'child1')).toEqual({ error: 'simple_one_for_one' });
    expect(await call(k, sup, 'terminate_child', c1)).toEqual({ ok: true });
    expect(alive(k, c1)).toBe(false);
    expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
    expect(await call(k, sup, 'terminate_child', c1)).toEqual({ ok: true }); // a dead pid: ok
    const stranger = spawnFn(k, (api) => api.receive(() => 'x'));
    await waitWaiting(k, stranger);
    expect(await call(k, sup, 'terminate_child', stranger)).toEqual({ error: 'not_found' });
    expect(alive(k, stranger)).toBe(true);
    expect(await call(k, sup, 'restart_child', 'child1')).toEqual({ error: 'simple_one_for_one' });
    expect(await call(k, sup, 'delete_child', 'child1')).toEqual({ error: 'simple_one_for_one' });
  });

  it('child_specs: invalid specs are rejected with OTP reasons', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    const start = { module: 'm', fn: 'f', args: ['a'] };
    expect(await call(k, sup, 'start_child', 'hej')).toEqual({ error: { invalid_child_spec: 'hej' } });
    expect(await call(k, sup, 'start_child', { id: 'child', start: 'mfa' })).toEqual({ error: { invalid_mfa: 'mfa' } });
    expect(await call(k, sup, 'start_child', { id: 'child', start, restart: 'prmanent' })).toEqual({ error: { invalid_restart_type: 'prmanent' } });
    expect(await call(k, sup, 'start_child', { id: 'child', start, shutdown: -10 })).toEqual({ error: { invalid_shutdown: -10 } });
    expect(await call(k, sup, 'start_child', { id: 'child', start, type: 'wrker' })).toEqual({ error: { invalid_child_type: 'wrker' } });
    expect(await call(k, sup, 'start_child', { id: 'child', start, modules: 'dy' })).toEqual({ error: { invalid_modules: 'dy' } });
    expect(await counts(k, sup)).toEqual([0, 0, 0, 0]);
    const bad = (children: unknown[], strategy = 'one_for_one') => startError(() => k.kernel.startSupervisor('sup', [{ ...flags(strategy), children }])).reason;
    expect(bad([{ id: 'child', start: 'mfa' }])).toEqual({ start_spec: { invalid_mfa: 'mfa' } });
    expect(bad([{ id: 'child', start, restart: 'prmanent' }], 'simple_one_for_one')).toEqual({ start_spec: { invalid_restart_type: 'prmanent' } });
    expect(
      bad([
        { id: 'c', start },
        { id: 'c', start },
      ]),
    ).toEqual({ start_spec: { duplicate_child_name: 'c' } });
    // simple_one_for_one needs exactly one child.
    expect(bad([], 'simple_one_for_one')).toEqual({ bad_start_spec: [] });
    expect(
      bad(
        [
          { id: 'c1', start },
          { id: 'c2', start },
        ],
        'simple_one_for_one',
      ),
    ).toEqual({ bad_start_spec: ['c1', 'c2'] });
  });

  it('sup_flags: bad strategy, intensity and period are rejected', () => {
    const k = supKernel();
    const bad = (f: object) => startError(() => k.kernel.startSupervisor('sup', [{ ...f, children: [] }])).reason;
    expect(bad({ strategy: 'none_for_one' })).toEqual({ supervisor_data: { invalid_strategy: 'none_for_one' } });
    expect(bad({ intensity: Infinity })).toEqual({ supervisor_data: { invalid_intensity: Infinity } });
    expect(bad({ period: 0 })).toEqual({ supervisor_data: { invalid_period: 0 } });
    expect(bad({ period: Infinity })).toEqual({ supervisor_data: { invalid_period: Infinity } });
    expect(bad({ silly_flag: true })).toEqual({ supervisor_data: { unknown_flag: 'silly_flag' } });
  });

  it('extra_return: terminate and restart by id, then delete; errors for unknown ids', async () => {
    const k = supKernel();
    const spec = child('child1');
    const sup = startSup(k, { ...flags(), children: [spec] });
    const [{ pid }] = await which(k, sup);
    expect(await call(k, sup, 'delete_child', 'hej')).toEqual({ error: 'not_found' });
    expect(await call(k, sup, 'restart_child', 'hej')).toEqual({ error: 'not_found' });
    await terminate(k, sup, pid, 'kill');
    // A permanent child killed from outside is restarted.
    const [{ pid: again }] = await which(k, sup);
    expect(again).not.toBe(pid);
    expect(alive(k, again)).toBe(true);
  });
});
