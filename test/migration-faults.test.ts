/**
 * Migration when nodes fail on the way: a bulk move whose source dies mid-way reports every pid
 * exactly (moved or not, matching the events), and a home node that crashes after its processes
 * moved away gives no false DOWN for them: they still answer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitEvent } from './helpers/events.js';
import { until } from './helpers/wait.js';
import { BadArgument, System, type EventOf, type MigrationResult, type SystemEvent } from '../src/index.js';
import { probe, session } from './fixtures/migration.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

describe('a bulk move whose source dies mid-way', () => {
  it('resolves with a result for every pid; the moved ones match the events and answer on the target', async () => {
    system = await System.start({
      nodes: [
        { name: 'src', restart: 'temporary', modules: { session: session(1) } },
        { name: 'dst', modules: { session: session(2) } },
      ],
    });
    const s = system;
    const events: SystemEvent[] = [];
    s.on('*', (e) => events.push(e));
    const N = 600;
    for (let i = 0; i < N; i++) await s.node('src').startServer('session', [i]);
    let killed = false;
    const results: MigrationResult[] = await s.migrateAll({
      from: 'src',
      to: 'dst',
      module: 'session',
      batch: 100,
      onProgress: (done) => {
        if (!killed && done >= 200) {
          killed = true;
          s.node('src').kill('killed mid-way by the test');
        }
      },
    });
    expect(killed).toBe(true);
    expect(results).toHaveLength(N);
    expect(new Set(results.map((r) => r.pid)).size).toBe(N);
    const moved = results.filter((r) => r.ok);
    const migratedEvents = events.filter((e) => e.type === 'process_migrated');
    expect(moved.length).toBeGreaterThanOrEqual(200);
    expect(moved.length).toBeLessThan(N);
    expect(migratedEvents.map((e) => (e as EventOf<'process_migrated'>).pid).sort()).toEqual(moved.map((r) => r.pid).sort());
    for (const r of results.filter((x) => !x.ok)) expect(r.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    // The ones that moved live on the target: it runs them, and they answer there.
    expect((await s.node('dst').processes()).length).toBe(moved.length);
    for (const r of moved.slice(0, 20)) expect(await s.node('dst').processInfo(r.pid)).toMatchObject({ pid: r.pid });
  });
});

describe('a home node that crashes after its processes moved away', () => {
  it('gives no DOWN to the host for them; they still answer, and the restarted home forwards to them again', async () => {
    system = await System.start({
      nodes: [
        { name: 'home', modules: { session: session(1) } },
        { name: 'away', modules: { session: session(1) } },
        { name: 'watcher', modules: { probe } },
      ],
    });
    const s = system;
    const pid = await s.node('home').startServer('session', [5]);
    await s.migrate(pid, 'away');
    const inbox = s.inbox();
    const ref = inbox.monitor(pid);
    // A process on a third node monitors it too, and it holds a global name.
    await s.node('watcher').spawn('probe', 'watch', [pid, inbox.pid]);
    await inbox.receive((m: unknown) => typeof m === 'object' && m !== null && 'watching' in m);
    s.register('svc', pid);
    await until('the monitors to reach the process', async () => ((await s.process(pid).info())?.monitoredBy.length ?? 0) >= 2);
    const restarted = waitEvent(s, 'node_restarted', (e) => e.node === 'home');
    s.node('home').kill('crash for the test');
    await restarted;
    // It still answers (by pid, through its restarted home), and no DOWN came for it, from any node.
    expect(await s.call(pid, 'inc')).toBe(6);
    expect(inbox.drain().filter((m) => (m as { ref?: string }).ref === ref || (typeof m === 'object' && m !== null && 'down' in m))).toEqual([]);
    expect(s.whereis('svc')).toBe(pid);
    // When it really ends, the DOWN does come.
    await s.call(pid, { stop: 'normal' }).catch(() => undefined);
    expect(await inbox.receive({ type: 'DOWN', ref }, 5_000)).toMatchObject({ pid });
  });
});

describe('operations on a process by pid, wherever it runs', () => {
  it('a process that moved into an isolate node is inspected, suspended, read and killed from the host by its pid', async () => {
    system = await System.start({
      nodes: [
        { name: 't', modules: { session: session(1) } },
        { name: 'iso', kind: 'isolate', modules: { session: session(2) } },
      ],
    });
    const s = system;
    const pid = await s.node('t').startServer('session', [3]);
    await s.migrate(pid, 'iso');
    const proc = s.process(pid);
    expect(proc.node).toBe('iso');
    expect(await proc.info()).toMatchObject({ pid, migration: { moves: 1, cameFrom: 't' } });
    await proc.suspend();
    expect(await proc.getState()).toMatchObject({ count: 3 });
    await proc.resume();
    expect(await s.call(pid, 'inc')).toBe(4);
    const inbox = s.inbox();
    const ref = inbox.monitor(pid);
    await s.exit(pid, 'kill');
    expect(await inbox.receive({ type: 'DOWN', ref }, 5_000)).toMatchObject({ pid, reason: 'killed' });
    expect(await proc.info()).toBeUndefined();
    expect(() => s.process('not-a-pid' as never)).toThrow(BadArgument);
  });
});
