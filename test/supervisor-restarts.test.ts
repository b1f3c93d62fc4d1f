/**
 * Restart types and strategies against OTP's supervisor_SUITE (groups normal_termination,
 * shutdown_termination, abnormal_termination, restart_one_for_one, restart_one_for_all,
 * restart_simple_one_for_one, restart_rest_for_one, and the misc cases). Kernel level.
 */
import { describe, expect, it } from 'vitest';
import { alive, call, child, counts, downReason, settled, startSup, supKernel, terminate, watch, which } from './helpers/sup-tools.js';
import type { LocalKernel } from './helpers/local-kernel.js';
import { waitFor } from './helpers/kernel-tools.js';

const flags = (strategy = 'one_for_one', intensity = 2, period = 3600_000) => ({ strategy, intensity, period });

async function withChild(restart: string): Promise<{ k: LocalKernel; sup: string; pid: string }> {
  const k = supKernel();
  const sup = startSup(k, { ...flags(), children: [] });
  const { ok: pid } = await call(k, sup, 'start_child', child('child1', restart));
  return { k, sup, pid };
}

/** The supervisor exits (with `shutdown`: it reached its restart intensity). */
async function supDies(k: LocalKernel, sup: string): Promise<void> {
  expect(await downReason(k, sup)).toBe('shutdown');
}

describe('restart types', () => {
  for (const how of ['normal', 'shutdown', { shutdown: 'some_info' }, 'abnormal'] as const) {
    const label = typeof how === 'string' ? how : 'shutdown_info';
    it(`permanent_${label}: a permanent child is always restarted`, async () => {
      const { k, sup, pid } = await withChild('permanent');
      await terminate(k, sup, pid, how);
      const [c] = await which(k, sup);
      expect(c.id).toBe('child1');
      expect(alive(k, c.pid)).toBe(true);
      expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
    });
    it(`transient_${label}: a transient child is restarted only after an abnormal exit`, async () => {
      const { k, sup, pid } = await withChild('transient');
      await terminate(k, sup, pid, how);
      const [c] = await which(k, sup);
      if (how === 'abnormal') {
        expect(alive(k, c.pid)).toBe(true);
        expect(await counts(k, sup)).toEqual([1, 1, 0, 1]);
      } else {
        expect(c).toEqual({ id: 'child1', pid: null, type: 'worker', modules: ['child'] });
        expect(await counts(k, sup)).toEqual([1, 0, 0, 1]);
        expect((await call(k, sup, 'restart_child', 'child1')).ok).toBeTruthy();
      }
    });
    it(`temporary_${label}: a temporary child is never restarted, and its spec is dropped`, async () => {
      const { k, sup, pid } = await withChild('temporary');
      await terminate(k, sup, pid, how);
      expect(await which(k, sup)).toEqual([]);
      expect(await counts(k, sup)).toEqual([0, 0, 0, 0]);
      expect((await call(k, sup, 'start_child', child('child1', 'temporary'))).ok).toBeTruthy();
    });
  }

  it('temporary_bystander: a temporary child ended by one_for_all / rest_for_one is not restarted', async () => {
    const k = supKernel();
    for (const strategy of ['one_for_all', 'rest_for_one']) {
      const sup = startSup(k, { ...flags(strategy, 2, 300), children: [] }, '');
      const { ok: c1 } = await call(k, sup, 'start_child', child('child1', 'permanent', 100));
      await call(k, sup, 'start_child', child('child2', 'temporary', 100));
      await terminate(k, sup, c1, 'normal');
      expect(alive(k, sup)).toBe(true);
      expect((await which(k, sup)).map((c) => c.id)).toEqual(['child1']);
    }
  });

  it('multiple_restarts: restarts spread over more than the period do not reach the intensity', async () => {
    const k = supKernel();
    const sup = startSup(k, { strategy: 'one_for_one', intensity: 1, period: 50, children: [] });
    let { ok: pid } = await call(k, sup, 'start_child', { ...child('child1'), shutdown: 'brutal_kill' });
    for (let i = 0; i < 4; i++) {
      await terminate(k, sup, pid, 'abnormal');
      pid = (await which(k, sup))[0].pid;
      const since = performance.now();
      await waitFor(() => performance.now() - since > 60, 'the period to pass');
    }
    expect(alive(k, sup)).toBe(true);
    expect(await call(k, sup, 'terminate_child', 'child1')).toEqual({ ok: true });
    expect(await call(k, sup, 'delete_child', 'child1')).toEqual({ ok: true });
  });
});

describe('restart_one_for_one', () => {
  it('one_for_one: only the dead child restarts; past the intensity the supervisor exits', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags(), children: [] });
    const { ok: c1 } = await call(k, sup, 'start_child', child('child1'));
    const { ok: c2 } = await call(k, sup, 'start_child', child('child2'));
    await terminate(k, sup, c1, 'abnormal');
    const children = await which(k, sup);
    expect(children.length).toBe(2);
    expect(children.find((c) => c.id === 'child2').pid).toBe(c2);
    expect(await counts(k, sup)).toEqual([2, 2, 0, 2]);
    await watch(k, sup);
    await terminate(k, sup, c2, 'abnormal');
    const [c4] = await which(k, sup);
    await terminate(k, sup, c4.pid, 'abnormal');
    await supDies(k, sup);
  });

  it('one_for_one_escalation: a child whose restart keeps failing takes the supervisor down', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('one_for_one', 4), children: [] });
    const { ok: c1 } = await call(k, sup, 'start_child', child('child1', 'permanent', 1000, ['error']));
    const { ok: c2 } = await call(k, sup, 'start_child', child('child2'));
    await watch(k, sup);
    await watch(k, c2);
    await terminate(k, sup, c1, 'abnormal');
    await supDies(k, sup);
    expect(await downReason(k, c2)).toBe('shutdown');
  });
});

describe('restart_one_for_all', () => {
  it('one_for_all: every child restarts; past the intensity the supervisor exits', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('one_for_all'), children: [] });
    const { ok: c1 } = await call(k, sup, 'start_child', child('child1'));
    const { ok: c2 } = await call(k, sup, 'start_child', child('child2'));
    await watch(k, c2);
    await terminate(k, sup, c1, 'abnormal');
    expect(await downReason(k, c2)).toBe('shutdown');
    const children = await which(k, sup);
    expect(children.length).toBe(2);
    for (const c of children) expect([c1, c2]).not.toContain(c.pid);
    expect(await counts(k, sup)).toEqual([2, 2, 0, 2]);
    await watch(k, sup);
    await terminate(k, sup, (await which(k, sup))[0].pid, 'abnormal');
    await terminate(k, sup, (await which(k, sup))[0].pid, 'abnormal');
    await supDies(k, sup);
  });

  it('one_for_all_escalation: a restart that fails takes every child and the supervisor down', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('one_for_all', 4), children: [] });
    const { ok: c1 } = await call(k, sup, 'start_child', child('child1'));
    const { ok: c2 } = await call(k, sup, 'start_child', child('child2', 'permanent', 1000, ['error']));
    await watch(k, c2);
    await watch(k, sup);
    await terminate(k, sup, c1, 'abnormal');
    expect(await downReason(k, c2)).toBe('shutdown');
    await supDies(k, sup);
  });

  it('one_for_all_other_child_fails_restart: a restarted child is ended again when another fails to start', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('one_for_all', 3), children: [child('child1'), child('child2', 'permanent', 1000, ['error'])] });
    const [, { pid: c1 }] = await which(k, sup);
    await terminate(k, sup, c1, 'abnormal');
    // child2 fails to restart every time: each try ends the restarted child1, until the intensity is spent.
    await waitFor(() => !alive(k, sup), 'the supervisor to give up');
    expect(k.kernel.processes().filter((p) => p.initial === 'server:child')).toEqual([]);
  });
});

describe('restart_simple_one_for_one', () => {
  it('simple_one_for_one: the dead child restarts with its arguments; past the intensity the supervisor exits', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('simple_one_for_one'), children: [child('child')] });
    const { ok: c1 } = await call(k, sup, 'start_child', []);
    const { ok: c2 } = await call(k, sup, 'start_child', []);
    await terminate(k, sup, c1, 'abnormal');
    const children = await which(k, sup);
    expect(children.length).toBe(2);
    expect(children.map((c) => c.pid)).toContain(c2);
    expect(await counts(k, sup)).toEqual([1, 2, 0, 2]);
    await watch(k, sup);
    await terminate(k, sup, c2, 'abnormal');
    await terminate(k, sup, (await which(k, sup))[0].pid, 'abnormal');
    await supDies(k, sup);
  });

  it('simple_one_for_one_shutdown: children are ended together, a stubborn one killed after the timeout', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('simple_one_for_one'), children: [{ id: 'child', start: { module: 'worker', fn: 'stubborn' }, shutdown: 200 }] });
    const pids = [];
    for (let i = 0; i < 3; i++) pids.push((await call(k, sup, 'start_child', [])).ok);
    for (const p of pids) await watch(k, p);
    await watch(k, sup);
    const t0 = performance.now();
    k.kernel.exit(sup as never, 'shutdown');
    for (const p of pids) expect(await downReason(k, p)).toBe('killed');
    expect(await downReason(k, sup)).toBe('shutdown');
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(3 * 200); // together, not one after the other
  });

  it('simple_one_for_one_escalation: a dynamic child whose restart fails takes the supervisor down', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('simple_one_for_one', 4), children: [child('child')] });
    const { ok: c1 } = await call(k, sup, 'start_child', ['error']);
    const { ok: c2 } = await call(k, sup, 'start_child', []);
    await watch(k, c2);
    await watch(k, sup);
    await terminate(k, sup, c1, 'abnormal');
    await supDies(k, sup);
    expect(await downReason(k, c2)).toBe('shutdown');
  });
});

describe('restart_rest_for_one', () => {
  it('rest_for_one: the dead child and those started after it restart', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('rest_for_one'), children: [] });
    const { ok: c1 } = await call(k, sup, 'start_child', child('child1'));
    const { ok: c2 } = await call(k, sup, 'start_child', child('child2'));
    const { ok: c3 } = await call(k, sup, 'start_child', child('child3'));
    expect(await counts(k, sup)).toEqual([3, 3, 0, 3]);
    await watch(k, c3);
    await terminate(k, sup, c2, 'abnormal');
    expect(await downReason(k, c3)).toBe('shutdown');
    const pids = (await which(k, sup)).map((c) => c.pid);
    expect(pids.length).toBe(3);
    expect(pids).toContain(c1);
    expect(pids).not.toContain(c2);
    expect(pids).not.toContain(c3);
    expect(await counts(k, sup)).toEqual([3, 3, 0, 3]);
    await watch(k, sup);
    await terminate(k, sup, (await which(k, sup))[0].pid, 'abnormal'); // child3
    await terminate(k, sup, (await which(k, sup))[1].pid, 'abnormal'); // child2
    await supDies(k, sup);
  });

  it('rest_for_one_escalation: a later child that fails to restart takes the supervisor down', async () => {
    const k = supKernel();
    const sup = startSup(k, { ...flags('rest_for_one', 4), children: [] });
    const { ok: c1 } = await call(k, sup, 'start_child', child('child1'));
    const { ok: c2 } = await call(k, sup, 'start_child', child('child2', 'permanent', 1000, ['error']));
    await watch(k, c2);
    await watch(k, sup);
    await terminate(k, sup, c1, 'abnormal');
    expect(await downReason(k, c2)).toBe('shutdown');
    await supDies(k, sup);
  });

  it('rest_for_one_other_child_fails_restart: the retry restarts the failed child, not the earlier one', async () => {
    const k = supKernel();
    k.load(
      'flaky',
      `
      let starts = 0;
      export function init() { starts++; if (starts === 2) throw new Error('not now'); return {}; }
      export function handleInfo(m: any, s: any) { return m === 'die' ? { stop: 'died', state: s } : { noreply: s }; }
    `,
    );
    const sup = startSup(k, { ...flags('rest_for_one', 3), children: [child('child1'), { id: 'child2', start: { server: 'flaky' } }] });
    const [{ pid: c2 }, { pid: c1 }] = await which(k, sup);
    await terminate(k, sup, c1, 'abnormal');
    await settled(k, sup);
    const [n2, n1] = await which(k, sup);
    expect(n1.id).toBe('child1');
    expect(alive(k, n1.pid)).toBe(true);
    expect(n2.id).toBe('child2');
    expect(alive(k, n2.pid)).toBe(true);
    expect(n2.pid).not.toBe(c2);
    expect((k.kernel.getState(sup as never) as any).restarts.length).toBe(2); // the retry counted
  });
});
