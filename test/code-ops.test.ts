/**
 * Code operations on one kernel: purge, soft purge, check_process_code, lingering, delete, and the
 * code policies (retention erlang / stack / forever × purge kill / soft / drain).
 */
import { describe, expect, it } from 'vitest';
import { localKernel, type LocalKernel } from './helpers/local-kernel.js';
import {
  HOST,
  errorOf,
  exitEvents,
  forward,
  info,
  quiesce,
  receivedAtLeast,
  sent,
  spawnFn,
  tell,
  waitDead,
  waitFor,
  waitWaiting,
} from './helpers/kernel-tools.js';
import { ask, eventsOf, js, nextSent, srvSource, summary } from './helpers/code-tools.js';
import { BadArgument, NotPurged, Refused, UnknownModule } from '../src/errors.js';
import type { LoadReport, PurgeReport } from '../src/kernel/types.js';
import type { CodePolicy } from '../src/kernel/policy.js';
import { drain, erlang, erlangKill, forever, stack } from '../policies/code.js';

/** Spawns `count` processes of `srv` (current version) and waits until each waits in its receive. */
async function spawnSrv(k: LocalKernel, count = 1, name = 'srv'): Promise<string[]> {
  const pids = Array.from({ length: count }, (_, i) => k.kernel.spawn(name, 'start', [i * 100]) as string);
  for (const pid of pids) await waitWaiting(k, pid);
  return pids;
}

/** Loads `srv` version `vsn` and returns the report (the load must be synchronous). */
function loadSrv(k: LocalKernel, vsn: number, options: Parameters<LocalKernel['kernel']['load']>[2] = {}): LoadReport {
  const report = k.kernel.load('srv', js('srv', srvSource(vsn)), options);
  if (report instanceof Promise) throw new Error('unexpected asynchronous load');
  return report;
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Moves a `srvSource` process to the current version (qualified call) and waits until it has. */
async function upgrade(k: LocalKernel, pid: string, toVersion: number): Promise<void> {
  tell(k, pid, 'upgrade');
  await waitFor(() => info(k, pid)?.versions[0]?.version === toVersion && info(k, pid)?.status === 'waiting', `${pid} in version ${toVersion}`);
}

// ---------------------------------------------------------------------------------------------

describe('purge (code:purge)', () => {
  it('kills the processes in old code with reason killed; links and monitors are told; events say so', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    const [p1, p2] = await spawnSrv(k, 2);
    loadSrv(k, 2);
    const [p3] = await spawnSrv(k, 1);
    const watcher = spawnFn(
      k,
      (api, linked: string, monitored: string) => {
        api.trapExit(true);
        api.link(linked);
        api.monitor(monitored);
        return forward(api);
      },
      p1,
      p2,
    );
    await waitWaiting(k, watcher);
    const eventsBefore = k.events.length;

    const report = k.kernel.purge('srv') as PurgeReport;
    expect(report).toEqual({ module: 'srv', ok: true, purged: [1], killed: [p1, p2], lingering: [] });
    expect(info(k, p1!)).toBeUndefined();
    expect(info(k, p2!)).toBeUndefined();
    expect(await receivedAtLeast(k, 2)).toEqual([
      { type: 'EXIT', from: p1, reason: 'killed' },
      { type: 'DOWN', ref: expect.any(String), pid: p2, reason: 'killed' },
    ]);
    expect(k.events.slice(eventsBefore)).toEqual([
      { type: 'process_purged', node: 'a', pid: p1, module: 'srv', version: 1 },
      { type: 'process_purged', node: 'a', pid: p2, module: 'srv', version: 1 },
      { type: 'module_purged', node: 'a', module: 'srv', version: 1 },
    ]);
    // 'killed' is a quiet reason: no crash report.
    expect(exitEvents(k)).toEqual([]);
    // Current code and its processes are untouched.
    expect(summary(k, 'srv')).toEqual([[2, 'current', 1]]);
    expect(await ask(k, p3!)).toMatchObject({ vsn: 2 });
  });

  it('with no old version it is a no-op; an idle old version is just removed', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    const [p1] = await spawnSrv(k, 1);
    const before = k.kernel.modules();
    expect(k.kernel.purge('srv')).toEqual({ module: 'srv', ok: true, purged: [], killed: [], lingering: [] });
    expect(k.kernel.softPurge('srv')).toEqual({ module: 'srv', ok: true, purged: [], killed: [], lingering: [] });
    expect(k.kernel.modules()).toEqual(before);
    expect(eventsOf(k, 'module_purged')).toEqual([]);
    expect(eventsOf(k, 'process_purged')).toEqual([]);
    expect(await ask(k, p1!)).toMatchObject({ vsn: 1 });

    loadSrv(k, 2);
    await upgrade(k, p1!, 2);
    expect(k.kernel.purge('srv')).toEqual({ module: 'srv', ok: true, purged: [1], killed: [], lingering: [] });
    expect(summary(k, 'srv')).toEqual([[2, 'current', 1]]);
    expect(await ask(k, p1!)).toMatchObject({ vsn: 2 });
  });

  it('of an unknown module throws UnknownModule', () => {
    const k = localKernel();
    expect(() => k.kernel.purge('nope')).toThrow(UnknownModule);
    expect(() => k.kernel.softPurge('nope')).toThrow(UnknownModule);
  });
});

describe('softPurge (code:soft_purge)', () => {
  it('refuses with exactly the lingering pids and kills nothing', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    const [p1, p2] = await spawnSrv(k, 2);
    loadSrv(k, 2);
    const [p3] = await spawnSrv(k, 1);
    const before = k.kernel.modules();
    const eventsBefore = k.events.length;
    expect(k.kernel.softPurge('srv')).toEqual({ module: 'srv', ok: false, purged: [], killed: [], lingering: [p1, p2] });
    expect(k.kernel.modules()).toEqual(before);
    expect(k.events.slice(eventsBefore)).toEqual([]);
    expect(await ask(k, p1!)).toMatchObject({ vsn: 1 });
    expect(await ask(k, p2!)).toMatchObject({ vsn: 1 });
    expect(await ask(k, p3!)).toMatchObject({ vsn: 2 });

    // One leaves, one still lingers: still refused, now naming only the one left.
    await upgrade(k, p1!, 2);
    expect(k.kernel.softPurge('srv')).toMatchObject({ ok: false, lingering: [p2] });
    tell(k, p2!, 'stop');
    await waitDead(k, p2!);
    expect(k.kernel.softPurge('srv')).toEqual({ module: 'srv', ok: true, purged: [1], killed: [], lingering: [] });
    expect(summary(k, 'srv')).toEqual([[2, 'current', 2]]);
    expect(eventsOf(k, 'module_purged')).toEqual([{ type: 'module_purged', node: 'a', module: 'srv', version: 1 }]);
  });
});

describe('checkProcessCode and lingering', () => {
  it('checkProcessCode: true in old code, false in current code, another module, or a pid with no process (as Erlang answers)', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    k.load('other', srvSource(1, 'other'));
    const [old] = await spawnSrv(k, 1);
    const [elsewhere] = await spawnSrv(k, 1, 'other');
    expect(k.kernel.checkProcessCode(old as never, 'srv')).toBe(false);
    loadSrv(k, 2);
    const [fresh] = await spawnSrv(k, 1);
    expect(k.kernel.checkProcessCode(old as never, 'srv')).toBe(true);
    expect(k.kernel.checkProcessCode(fresh as never, 'srv')).toBe(false);
    expect(k.kernel.checkProcessCode(elsewhere as never, 'srv')).toBe(false);
    expect(k.kernel.checkProcessCode(old as never, 'other')).toBe(false);
    await upgrade(k, old!, 2);
    expect(k.kernel.checkProcessCode(old as never, 'srv')).toBe(false);
    expect(k.kernel.checkProcessCode('<a.999>' as never, 'srv')).toBe(false);
  });

  it('lingering(module) lists old-code processes; lingering(module, version) one version exactly', async () => {
    const k = localKernel();
    k.kernel.setPolicy(forever);
    loadSrv(k, 1);
    const v1 = await spawnSrv(k, 2);
    loadSrv(k, 2);
    const v2 = await spawnSrv(k, 1);
    loadSrv(k, 3);
    const v3 = await spawnSrv(k, 2);
    expect(k.kernel.lingering('srv').sort()).toEqual([...v1, ...v2].sort());
    expect(k.kernel.lingering('srv', 1).sort()).toEqual([...v1].sort());
    expect(k.kernel.lingering('srv', 2)).toEqual(v2);
    // A given version is read as asked, current included; a version that does not exist has none.
    expect(k.kernel.lingering('srv', 3).sort()).toEqual([...v3].sort());
    expect(k.kernel.lingering('srv', 42)).toEqual([]);
    await upgrade(k, v1[0]!, 3);
    expect(k.kernel.lingering('srv', 1)).toEqual([v1[1]]);
    expect(k.kernel.lingering('srv').sort()).toEqual([v1[1]!, ...v2].sort());
  });

  it('lingering of an unknown module (or one only imported, never loaded) throws UnknownModule', () => {
    const k = localKernel();
    k.load('user', `import * as ghost from './ghost'; export const g = () => ghost.f();`);
    expect(() => k.kernel.lingering('nope')).toThrow(UnknownModule);
    expect(() => k.kernel.lingering('ghost')).toThrow(UnknownModule);
    expect(() => k.kernel.lingering('ghost', 1)).toThrow(UnknownModule);
  });
});

describe('deleteModule (code:delete)', () => {
  it('current becomes old: spawns by name fail, running processes stay, a qualified call into it kills the caller', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    k.load(
      'user',
      `
      import { receive, on, send } from 'subnode';
      import * as srv from './srv';
      export function loop(): unknown {
        return receive(on('call', () => srv.start(0)), on('ping', () => { send('${HOST}', 'pong'); return loop(); }));
      }
    `,
    );
    const [running] = await spawnSrv(k, 1);
    const user = k.kernel.spawn('user', 'loop');
    await waitWaiting(k, user);

    const report = k.kernel.deleteModule('srv');
    expect(report).toEqual({ module: 'srv', ok: true, purged: [], killed: [], lingering: [] });
    expect(summary(k, 'srv')).toEqual([[1, 'old', 1]]);
    expect(eventsOf(k, 'module_deleted')).toEqual([{ type: 'module_deleted', node: 'a', module: 'srv', version: 1 }]);
    expect(k.kernel.checkProcessCode(running as never, 'srv')).toBe(true);
    expect(k.kernel.lingering('srv')).toEqual([running]);
    expect(() => k.kernel.spawn('srv', 'start', [0])).toThrow(UnknownModule);

    // Already running: goes on in the deleted version, on local calls.
    expect(await ask(k, running!)).toEqual({ vsn: 1, n: 0, pid: running });
    expect(await ask(k, running!)).toEqual({ vsn: 1, n: 1, pid: running });

    // A qualified call into the deleted module: the caller dies with UnknownModule.
    tell(k, user, 'call');
    await waitDead(k, user);
    expect(errorOf(exitEvents(k, user)[0]?.reason)).toMatchObject({ name: 'UnknownModule' });
    tell(k, running!, 'upgrade');
    await waitDead(k, running!);
    expect(errorOf(exitEvents(k, running!)[0]?.reason)).toMatchObject({ name: 'UnknownModule' });
    expect(summary(k, 'srv')).toEqual([[1, 'old', 0]]);
  });

  it('refuses a second delete, unknown modules, and old code that processes still run; loads again afterwards', async () => {
    const k = localKernel();
    expect(() => k.kernel.deleteModule('nope')).toThrow(UnknownModule);
    loadSrv(k, 1);
    const [p1] = await spawnSrv(k, 1);
    loadSrv(k, 2);
    const before = k.kernel.modules();
    // Erlang: delete needs the old code purged first (its one old slot is taken).
    const refused = thrownBy(() => k.kernel.deleteModule('srv'));
    expect(refused).toBeInstanceOf(NotPurged);
    expect((refused as NotPurged).details).toEqual({ module: 'srv', lingering: [p1] });
    expect(k.kernel.modules()).toEqual(before);
    expect(await ask(k, p1!)).toMatchObject({ vsn: 1 });

    k.kernel.purge('srv');
    await waitDead(k, p1!);
    expect(k.kernel.deleteModule('srv')).toMatchObject({ ok: true });
    expect(() => k.kernel.deleteModule('srv')).toThrow(BadArgument);
    const again = loadSrv(k, 3);
    expect(again).toMatchObject({ module: 'srv', version: 3, vsn: 3, previous: undefined });
    expect(summary(k, 'srv')).toEqual([
      [2, 'old', 0],
      [3, 'current', 0],
    ]);
    expect(await ask(k, k.kernel.spawn('srv', 'start', [0]))).toMatchObject({ vsn: 3 });
  });

  it('drops an idle old version to make room for the deleted one', () => {
    const k = localKernel();
    loadSrv(k, 1);
    loadSrv(k, 2);
    expect(k.kernel.deleteModule('srv')).toEqual({ module: 'srv', ok: true, purged: [1], killed: [], lingering: [] });
    expect(summary(k, 'srv')).toEqual([[2, 'old', 0]]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('retention erlang (one old version)', () => {
  it('loading a third version while processes linger in the oldest → NotPurged listing them; nothing changes', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    const [p1, p2] = await spawnSrv(k, 2);
    loadSrv(k, 2);
    const [p3] = await spawnSrv(k, 1);
    const modulesBefore = k.kernel.modules();
    const processesBefore = k.kernel.processes();
    const eventsBefore = k.events.length;

    const refused = thrownBy(() => loadSrv(k, 3));
    expect(refused).toBeInstanceOf(NotPurged);
    expect((refused as NotPurged).details).toEqual({ module: 'srv', lingering: [p1, p2] });
    expect((refused as Error).message).toContain(p1);
    expect(k.kernel.modules()).toEqual(modulesBefore);
    expect(k.kernel.processes()).toEqual(processesBefore);
    expect(k.events.slice(eventsBefore)).toEqual([]);
    expect(await ask(k, p1!)).toMatchObject({ vsn: 1 });
    expect(await ask(k, p2!)).toMatchObject({ vsn: 1 });
    expect(await ask(k, k.kernel.spawn('srv', 'start', [0]))).toMatchObject({ vsn: 2 });

    // With { purge: 'kill' } (what l(M) does) they are killed and the load succeeds.
    const report = loadSrv(k, 3, { purge: 'kill' });
    expect(report).toEqual({ module: 'srv', version: 3, vsn: 3, previous: 2, purged: [1], killed: [p1, p2] });
    expect(info(k, p1!)).toBeUndefined();
    expect(info(k, p2!)).toBeUndefined();
    expect(summary(k, 'srv')).toEqual([
      [2, 'old', 2],
      [3, 'current', 0],
    ]);
    expect(await ask(k, p3!)).toMatchObject({ vsn: 2 });
  });

  it('a kill purge policy (erlangKill) kills without being asked', async () => {
    const k = localKernel();
    k.kernel.setPolicy(erlangKill, 'srv');
    loadSrv(k, 1);
    const [p1] = await spawnSrv(k, 1);
    loadSrv(k, 2);
    expect(loadSrv(k, 3)).toMatchObject({ version: 3, purged: [1], killed: [p1] });
    expect(eventsOf(k, 'process_purged')).toEqual([{ type: 'process_purged', node: 'a', pid: p1, module: 'srv', version: 1 }]);
  });

  it('an idle old version is dropped by the next load; an old version whose processes moved on too', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    loadSrv(k, 2);
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 0],
      [2, 'current', 0],
    ]);
    expect(loadSrv(k, 3)).toEqual({ module: 'srv', version: 3, vsn: 3, previous: 2, purged: [1], killed: [] });
    expect(summary(k, 'srv')).toEqual([
      [2, 'old', 0],
      [3, 'current', 0],
    ]);
    expect(eventsOf(k, 'module_purged')).toEqual([{ type: 'module_purged', node: 'a', module: 'srv', version: 1 }]);
    // Under erlang an emptied old version is not collected at once; it waits for the next load.
    const [p] = await spawnSrv(k, 1);
    loadSrv(k, 4);
    await upgrade(k, p!, 4);
    expect(summary(k, 'srv')).toEqual([
      [3, 'old', 0],
      [4, 'current', 1],
    ]);
    expect(loadSrv(k, 5)).toMatchObject({ purged: [3], killed: [] });
  });
});

describe('retention stack(N)', () => {
  it('with depth 2, three old versions cannot all stay: the oldest is purged per the purge mode', async () => {
    const k = localKernel();
    k.kernel.setPolicy(stack(2));
    const pids: string[] = [];
    for (let vsn = 1; vsn <= 3; vsn++) {
      loadSrv(k, vsn);
      pids.push(...(await spawnSrv(k, 1)));
    }
    const [p1, p2, p3] = pids;
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'old', 1],
      [3, 'current', 1],
    ]);
    // Each lingering process keeps running its own version.
    expect((await Promise.all(pids.map((p) => ask(k, p)))).map((r) => r.vsn)).toEqual([1, 2, 3]);
    await spawnSrv(k, 1); // one more in version 3, so version 3 is not idle when it turns old

    // soft (the policy's purge): refused, naming only the oldest version's process.
    const before = k.kernel.modules();
    const refused = thrownBy(() => loadSrv(k, 4));
    expect(refused).toBeInstanceOf(NotPurged);
    expect((refused as NotPurged).details).toEqual({ module: 'srv', lingering: [p1] });
    expect(k.kernel.modules()).toEqual(before);

    // kill: only the oldest goes.
    expect(loadSrv(k, 4, { purge: 'kill' })).toEqual({ module: 'srv', version: 4, vsn: 4, previous: 3, purged: [1], killed: [p1] });
    expect(summary(k, 'srv')).toEqual([
      [2, 'old', 1],
      [3, 'old', 2],
      [4, 'current', 0],
    ]);
    expect(info(k, p1!)).toBeUndefined();
    expect(await ask(k, p2!)).toMatchObject({ vsn: 2 });
    expect(await ask(k, p3!)).toMatchObject({ vsn: 3 });
  });

  it('a stack(2, kill) module policy kills in the oldest version on load; other modules keep the node policy', async () => {
    const k = localKernel();
    k.kernel.setPolicy(stack(2, 'kill'), 'srv');
    expect(k.kernel.policyFor('srv')).toEqual({ retention: { kind: 'stack', depth: 2 }, purge: 'kill' });
    expect(k.kernel.policyFor('other')).toEqual(erlang);
    const pids: string[] = [];
    for (let vsn = 1; vsn <= 3; vsn++) {
      loadSrv(k, vsn);
      pids.push(...(await spawnSrv(k, 1)));
    }
    expect(loadSrv(k, 4)).toMatchObject({ purged: [1], killed: [pids[0]] });
    expect(await ask(k, pids[1]!)).toMatchObject({ vsn: 2 });
    expect(await ask(k, pids[2]!)).toMatchObject({ vsn: 3 });
  });

  it('old versions nothing runs are collected at once', async () => {
    const k = localKernel();
    k.kernel.setPolicy(stack(3));
    loadSrv(k, 1);
    loadSrv(k, 2); // version 1 ran nothing: collected when it turned old
    expect(summary(k, 'srv')).toEqual([[2, 'current', 0]]);
    const [p] = await spawnSrv(k, 1);
    loadSrv(k, 3);
    expect(summary(k, 'srv')).toEqual([
      [2, 'old', 1],
      [3, 'current', 0],
    ]);
    await upgrade(k, p!, 3);
    expect(summary(k, 'srv')).toEqual([[3, 'current', 1]]);
    expect(eventsOf(k, 'module_purged').map((e) => e.version)).toEqual([1, 2]);
  });

  it('an idle current version does not take an old slot: loading over it keeps the lingering old versions', async () => {
    // stack(2): versions 1 and 2 each run a process, version 3 runs nothing. Loading version 4
    // leaves two old versions (3 is collected at once, being idle), which fits: nothing to purge.
    const k = localKernel();
    k.kernel.setPolicy(stack(2));
    const pids: string[] = [];
    for (let vsn = 1; vsn <= 2; vsn++) {
      loadSrv(k, vsn);
      pids.push(...(await spawnSrv(k, 1)));
    }
    loadSrv(k, 3);
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'old', 1],
      [3, 'current', 0],
    ]);
    let outcome: unknown;
    try {
      outcome = loadSrv(k, 4);
    } catch (error) {
      outcome = error;
    }
    expect(outcome).toMatchObject({ module: 'srv', version: 4, killed: [] });
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'old', 1],
      [4, 'current', 0],
    ]);
  });
});

describe('retention forever', () => {
  it('keeps every version while used, and collects one the moment its last process leaves or dies', async () => {
    const k = localKernel();
    k.kernel.setPolicy(forever);
    const pids: string[] = [];
    for (let vsn = 1; vsn <= 6; vsn++) {
      loadSrv(k, vsn);
      pids.push(...(await spawnSrv(k, 1)));
    }
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'old', 1],
      [3, 'old', 1],
      [4, 'old', 1],
      [5, 'old', 1],
      [6, 'current', 1],
    ]);
    expect((await Promise.all(pids.map((p) => ask(k, p)))).map((r) => r.vsn)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(eventsOf(k, 'module_purged')).toEqual([]);

    // Leaves by a qualified call: version 2 goes at once, without any load or purge.
    tell(k, pids[1]!, 'upgrade');
    await waitFor(() => eventsOf(k, 'module_purged').length === 1, 'version 2 collected');
    expect(eventsOf(k, 'module_purged')).toEqual([{ type: 'module_purged', node: 'a', module: 'srv', version: 2 }]);
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [3, 'old', 1],
      [4, 'old', 1],
      [5, 'old', 1],
      [6, 'current', 2],
    ]);

    // Dies normally, or is killed: its version goes too.
    tell(k, pids[0]!, 'stop');
    await waitDead(k, pids[0]!);
    k.kernel.exit(pids[3]! as never, 'kill');
    await waitDead(k, pids[3]!);
    expect(eventsOf(k, 'module_purged').map((e) => e.version)).toEqual([2, 1, 4]);
    expect(summary(k, 'srv')).toEqual([
      [3, 'old', 1],
      [5, 'old', 1],
      [6, 'current', 2],
    ]);
    // Nothing was killed by the code server.
    expect(eventsOf(k, 'process_purged')).toEqual([]);
    expect(await ask(k, pids[2]!)).toMatchObject({ vsn: 3 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('purge mode drain', () => {
  async function setup(lingering = 2): Promise<{ k: LocalKernel; pids: string[] }> {
    const k = localKernel();
    loadSrv(k, 1);
    const pids = await spawnSrv(k, lingering);
    loadSrv(k, 2);
    return { k, pids };
  }

  it('processes that leave within the deadline survive, and the purge resolves as soon as they have', async () => {
    const { k, pids } = await setup();
    const started = performance.now();
    const pending = k.kernel.purge('srv', drain(3_000, 'kill'));
    expect(pending).toBeInstanceOf(Promise);
    expect(eventsOf(k, 'drain_started')).toEqual([{ type: 'drain_started', node: 'a', module: 'srv', versions: [1], deadlineMs: 3_000 }]);
    expect(k.kernel.modules()[0]!.versions.map((v) => [v.version, v.draining])).toEqual([
      [1, true],
      [2, false],
    ]);
    setTimeout(() => tell(k, pids[0]!, 'upgrade'), 20);
    setTimeout(() => tell(k, pids[1]!, 'upgrade'), 40);
    const report = await pending;
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(report).toEqual({ module: 'srv', ok: true, purged: [1], killed: [], lingering: [] });
    expect(summary(k, 'srv')).toEqual([[2, 'current', 2]]);
    for (const p of pids) expect(await ask(k, p)).toMatchObject({ vsn: 2 });
    expect(eventsOf(k, 'process_purged')).toEqual([]);
  });

  it("then: 'kill' — the ones still there at the deadline are killed", async () => {
    const { k, pids } = await setup();
    const [leaver, stayer] = pids;
    const started = performance.now();
    const pending = k.kernel.purge('srv', { drain: 150, then: 'kill' }) as Promise<PurgeReport>;
    await upgrade(k, leaver!, 2);
    expect(info(k, stayer!)).toBeDefined();
    const report = await pending;
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(report).toEqual({ module: 'srv', ok: true, purged: [1], killed: [stayer], lingering: [] });
    expect(info(k, stayer!)).toBeUndefined();
    expect(eventsOf(k, 'process_purged')).toEqual([{ type: 'process_purged', node: 'a', pid: stayer, module: 'srv', version: 1 }]);
    expect(await ask(k, leaver!)).toMatchObject({ vsn: 2 });
    expect(summary(k, 'srv')).toEqual([[2, 'current', 1]]);
  });

  it("then: 'refuse' leaves them running and reports ok: false; the version stops draining", async () => {
    const { k, pids } = await setup();
    const [leaver, stayer] = pids;
    const pending = k.kernel.purge('srv', drain(100, 'refuse')) as Promise<PurgeReport>;
    await upgrade(k, leaver!, 2);
    expect(await pending).toEqual({ module: 'srv', ok: false, purged: [], killed: [], lingering: [stayer] });
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'current', 1],
    ]);
    expect(k.kernel.modules()[0]!.versions.every((v) => !v.draining)).toBe(true);
    expect(await ask(k, stayer!)).toMatchObject({ vsn: 1 });
    // No longer draining: other operations are accepted again.
    expect(k.kernel.softPurge('srv')).toMatchObject({ ok: false, lingering: [stayer] });
  });

  it('while draining, spawning into the drained version is Refused, and so is any other load, purge or delete of the module', async () => {
    const { k, pids } = await setup(1);
    const [old] = pids;
    const pending = k.kernel.purge('srv', drain(400, 'refuse')) as Promise<PurgeReport>;

    let from = sent(k).length;
    tell(k, old!, 'spawnClosure');
    expect(await nextSent(k, (m) => m?.pid === old, from)).toMatchObject({ refused: 'Refused' });
    from = sent(k).length;
    tell(k, old!, 'spawnExport');
    expect(await nextSent(k, (m) => m?.pid === old, from)).toMatchObject({ refused: 'Refused' });
    expect(info(k, old!)?.status).toBe('waiting');

    expect(() => loadSrv(k, 3)).toThrow(Refused);
    expect(() => k.kernel.purge('srv')).toThrow(Refused);
    expect(() => k.kernel.softPurge('srv')).toThrow(Refused);
    expect(() => k.kernel.purge('srv', drain(10))).toThrow(Refused);
    expect(() => k.kernel.deleteModule('srv')).toThrow(Refused);
    // The current version is not being drained: spawning there is fine.
    const fresh = k.kernel.spawn('srv', 'start', [0]);
    expect(await ask(k, fresh)).toMatchObject({ vsn: 2 });
    // The refused load changed nothing and used up no version number.
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'current', 1],
    ]);

    expect(await pending).toMatchObject({ ok: false, lingering: [old] });
    from = sent(k).length;
    tell(k, old!, 'spawnClosure');
    expect(await nextSent(k, (m) => m?.pid === old, from)).toEqual({ spawned: 1, pid: old });
    await quiesce(); // the closure process has run and ended
    expect(loadSrv(k, 3, { purge: 'kill' })).toMatchObject({ version: 3, killed: [old] });
  });

  it('a load under a drain policy waits for the drain and resolves with the load report', async () => {
    const { k, pids } = await setup(1);
    k.kernel.setPolicy({ retention: { kind: 'erlang' }, purge: drain(2_000, 'kill') });
    const pending = k.kernel.load('srv', js('srv', srvSource(3)));
    expect(pending).toBeInstanceOf(Promise);
    // Nothing is installed until the drain ends.
    expect(summary(k, 'srv')).toEqual([
      [1, 'old', 1],
      [2, 'current', 0],
    ]);
    expect(() => k.kernel.spawn('srv', 'start', [0])).not.toThrow();
    tell(k, pids[0]!, 'upgrade');
    expect(await pending).toEqual({ module: 'srv', version: 3, vsn: 3, previous: 2, purged: [1], killed: [] });
    expect(summary(k, 'srv')!.map(([v, s]) => [v, s])).toEqual([
      [2, 'old'],
      [3, 'current'],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad policies', () => {
  const bad: unknown[] = [
    null,
    'erlang',
    { retention: { kind: 'bogus' } },
    { retention: 'forever' },
    { retention: { kind: 'stack', depth: 0 } },
    { retention: { kind: 'stack', depth: -1 } },
    { retention: { kind: 'stack', depth: 1.5 } },
    { retention: { kind: 'stack' } },
    { purge: 'maybe' },
    { purge: { drain: -1, then: 'kill' } },
    { purge: { drain: Infinity, then: 'kill' } },
    { purge: { drain: 10, then: 'explode' } },
    { purge: { drain: '10', then: 'kill' } },
  ];

  it('setPolicy throws BadArgument and changes nothing, for the node and for a module', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    const [p] = await spawnSrv(k, 1);
    loadSrv(k, 2);
    k.kernel.setPolicy(stack(3), 'srv');
    const nodePolicy = k.kernel.policyFor('anything');
    const before = k.kernel.modules();
    for (const policy of bad) {
      expect(() => k.kernel.setPolicy(policy as CodePolicy), JSON.stringify(policy)).toThrow(BadArgument);
      expect(() => k.kernel.setPolicy(policy as CodePolicy, 'srv'), JSON.stringify(policy)).toThrow(BadArgument);
      expect(() => k.kernel.setPolicy(policy as CodePolicy, 'fresh'), JSON.stringify(policy)).toThrow(BadArgument);
    }
    expect(k.kernel.policyFor('anything')).toEqual(nodePolicy);
    expect(k.kernel.policyFor('fresh')).toEqual(nodePolicy);
    expect(k.kernel.policyFor('srv')).toEqual(stack(3));
    expect(k.kernel.modules()).toEqual(before);
    expect(await ask(k, p!)).toMatchObject({ vsn: 1 });
  });

  it('a bad purge mode on purge or load throws BadArgument and changes nothing', async () => {
    const k = localKernel();
    loadSrv(k, 1);
    const [p] = await spawnSrv(k, 1);
    loadSrv(k, 2);
    const before = k.kernel.modules();
    for (const mode of ['maybe', { drain: -5, then: 'kill' }, { drain: 5 }]) {
      expect(() => k.kernel.purge('srv', mode as never)).toThrow(BadArgument);
      expect(() => k.kernel.load('srv', js('srv', srvSource(3)), { purge: mode as never })).toThrow(BadArgument);
    }
    expect(k.kernel.modules()).toEqual(before);
    expect(eventsOf(k, 'module_loaded')).toHaveLength(2);
    expect(await ask(k, p!)).toMatchObject({ vsn: 1 });
  });
});
