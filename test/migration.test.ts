/**
 * Process migration: a live process moves between nodes (thread and isolate, both ways) under the
 * same pid, its state converted by the target's codeChange; failures roll back to the source
 * exactly as it was; links, monitors, names and messages in flight keep working; bulk moves,
 * inspection, events, forwarding clean-up, and purgeToNode.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitEvent } from './helpers/events.js';
import {
  System,
  type Inbox,
  Refused,
  NodeDown,
  UnknownModule,
  UnknownNode,
  NoProcess,
  NameTaken,
  SubnodeError,
  type NodeSpec,
  type Pid,
  type MigrateOptions,
  type MigrationResult,
  type SystemEvent,
  type EventOf,
  type EventType,
} from '../src/index.js';
import { door, probe, session, walker } from './fixtures/migration.js';

let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(nodes: NodeSpec[]): Promise<System> {
  system = await System.start({ nodes });
  return system;
}

function record(s: System): SystemEvent[] {
  const events: SystemEvent[] = [];
  s.on('*', (e) => events.push(e));
  return events;
}

function eventsOf<T extends EventType>(events: SystemEvent[], type: T): EventOf<T>[] {
  return events.filter((e) => e.type === type) as EventOf<T>[];
}

async function until<T>(what: string, probeFn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probeFn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v).slice(0, 400)} after ${ms} ms`);
    await sleep(20);
  }
}

const has =
  (key: string) =>
  (m: unknown): boolean =>
    typeof m === 'object' && m !== null && key in m;

/**
 * `system.migrate`, retried while the last node of a process that has just arrived has not yet
 * confirmed it forwarded everything ("has just arrived … try again"). The back-to-back test
 * below calls `system.migrate` itself.
 */
/** A process on node c monitors `pid` and another (trapping) links to it; both report to the inbox. */
async function watchAndLinkFromC(s: System, pid: Pid, inbox: Inbox): Promise<void> {
  await s.node('c').spawn('probe', 'watch', [pid, inbox.pid]);
  await inbox.receive({ watching: pid });
  await s.node('c').spawn('probe', 'linked', [pid, inbox.pid, true]);
  await inbox.receive({ linked: pid });
  await sleep(50);
}

async function move(s: System, pid: Pid, to: string, options?: MigrateOptions): Promise<MigrationResult> {
  for (let i = 0; ; i++) {
    try {
      return await s.migrate(pid, to, options);
    } catch (error) {
      if (i < 100 && error instanceof Refused && /just arrived/.test(error.message)) {
        await sleep(2);
        continue;
      }
      throw error;
    }
  }
}

type SessionState = {
  n?: number;
  count?: number;
  seen: Record<string, number>;
  errors: unknown[];
  got: number;
  info: any[];
  tag: string;
  conversions: number;
  from?: unknown;
  extra?: unknown;
};

const v1 = session(1);
const v2 = session(2);

describe('single migration between thread nodes', () => {
  it('moves a server under the same pid; the target codeChange converts the state, with extra', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1 } },
      { name: 'b', modules: { session: v2 } },
    ]);
    const events = record(s);
    const pid = await s.node('a').startServer('session', [5, 'x']);
    expect(await s.call(pid, 'inc')).toBe(6);
    const result = await move(s, pid, 'b', { extra: { note: 'to b' } });
    expect(result).toEqual({ pid, from: 'a', to: 'b', ok: true, vsn: { from: 1, to: 2 }, moves: 1 });
    expect(await s.call(pid, 'where')).toEqual({ node: 'b', self: pid, vsn: 2 });
    expect(await s.node('b').getState(pid)).toEqual({
      count: 6,
      seen: {},
      errors: [],
      got: 0,
      info: [],
      tag: 'x',
      conversions: 1,
      from: 1,
      extra: { note: 'to b' },
    });
    expect(await s.call(pid, 'inc')).toBe(7);
    // Gone from a, present on b, with its migration recorded.
    expect(await s.node('a').processInfo(pid)).toBeUndefined();
    expect(await s.node('a').behavioursOf('session')).toEqual([]);
    expect(await s.node('b').behavioursOf('session')).toEqual([pid]);
    expect(await s.node('b').processInfo(pid)).toMatchObject({
      pid,
      status: 'waiting',
      behaviour: { kind: 'server', module: 'session', stack: [], vsn: 2 },
      migration: { moves: 1, cameFrom: 'a' },
    });
    expect(s.locate(pid)).toEqual({ pid, node: 'b', home: 'a', moves: 1, path: ['a', 'b'] });
    expect(eventsOf(events, 'process_migrated')).toEqual([{ type: 'process_migrated', node: 'b', pid, from: 'a', to: 'b', moves: 1 }]);
  });

  it('does not call codeChange when the vsns are equal (a codeChange told to fail is never reached)', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1 } },
      { name: 'c', modules: { session: v1 } },
    ]);
    const pid = await s.node('a').startServer('session', [1]);
    const before = await s.node('a').getState(pid);
    const result = await move(s, pid, 'c', { extra: { fail: true } });
    expect(result).toMatchObject({ ok: true, vsn: { from: 1, to: 1 } });
    expect(await s.node('c').getState(pid)).toEqual(before);
    expect((await s.node('c').getState<SessionState>(pid)).conversions).toBe(0);
  });

  it('moves a statem; its { state, data } is converted and it goes on in the state it was in', async () => {
    const s = await start([
      { name: 'a', modules: { door: door(1) } },
      { name: 'b', modules: { door: door(2) } },
    ]);
    const pid = await s.node('a').startStatem('door', ['1234'], { name: 'door' });
    expect(await s.call(pid, { unlock: '1234' })).toBe('opened');
    const r = await move(s, pid, 'b', { extra: { note: 'moved' } });
    expect(r.vsn).toEqual({ from: 1, to: 2 });
    expect(await s.call(pid, 'inspect')).toEqual({ state: 'open', data: { pin: '1234', opened: 0, note: 'moved' }, vsn: 2, node: 'b' });
    expect(await s.call(pid, 'lock')).toBe('locked');
    expect(await s.call({ name: 'door', node: 'a' }, { unlock: '1234' })).toBe('opened');
    expect((await s.node('b').processInfo(pid))?.behaviour).toEqual({ kind: 'statem', module: 'door', stack: [], vsn: 2 });
    // And back: v1's codeChange takes v2's data.
    await move(s, pid, 'a');
    expect(await s.call(pid, 'inspect')).toEqual({ state: 'open', data: { code: '1234' }, vsn: 1, node: 'a' });
  });

  it('migrates back to the home node: the name is registered there again, and nothing forwards any more', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, probe } },
      { name: 'b', modules: { session: v2, probe } },
    ]);
    const pid = await s.node('a').startServer('session', [0], { name: 'home' });
    await move(s, pid, 'b');
    // The name stays with the home node, which forwards to the process wherever it runs.
    expect(await s.node('a').whereis('home')).toBe(pid);
    const back = await move(s, pid, 'a');
    expect(back).toMatchObject({ from: 'b', to: 'a', ok: true, vsn: { from: 2, to: 1 }, moves: 2 });
    expect(await s.call(pid, 'where')).toEqual({ node: 'a', self: pid, vsn: 1 });
    expect((await s.node('a').getState<SessionState>(pid)).conversions).toBe(2);
    expect(await s.node('a').whereis('home')).toBe(pid);
    expect(await s.call({ name: 'home', node: 'a' }, 'inc')).toBe(1);
    expect(await s.node('a').processInfo(pid)).toMatchObject({ name: 'home', migration: { moves: 2, cameFrom: 'b' } });
    expect(s.locate(pid)).toEqual({ pid, node: 'a', home: 'a', moves: 2, path: ['a', 'b', 'a'] });
    // A sender on b reaches it at home.
    const inbox = s.inbox();
    const sender = await s.node('b').spawn('probe', 'blast', [pid, 'b', 100, inbox.pid]);
    expect(sender).toMatch(/^<b\./);
    await inbox.receive({ sent: 'b' });
    await until(
      'casts from b',
      () => s.node('a').getState<SessionState>(pid),
      (st) => st.got === 100,
    );
    expect((await s.node('a').getState<SessionState>(pid)).errors).toEqual([]);
    // Migrating to where it already runs is refused.
    await expect(move(s, pid, 'a')).rejects.toBeInstanceOf(Refused);
  });
});

describe('moves right after the process changed', () => {
  it('migrate right after a migrate of the same process is not refused', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1 } },
      { name: 'b', modules: { session: v2 } },
      { name: 'c', modules: { session: v2 } },
    ]);
    const pid = await s.node('a').startServer('session');
    // Nothing else happens in between: the caller has no way to know it must wait.
    const outcomes = [];
    for (let i = 0; i < 5; i++) {
      for (const to of ['b', 'c', 'a'])
        outcomes.push(
          await s.migrate(pid, to).then(
            (r) => r.ok,
            (e: Error) => e.message,
          ),
        );
    }
    expect(outcomes.filter((o) => o !== true)).toEqual([]);
    expect(s.locate(pid).moves).toBe(15);
    const pids = await Promise.all([0, 1, 2].map((i) => s.node('a').startServer('session', [i])));
    expect((await s.migrateAll({ from: 'a', to: 'b', pids })).map((r) => r.ok)).toEqual([true, true, true]);
    expect((await s.migrateAll({ from: 'b', to: 'a', pids })).map((r) => r.error?.message ?? 'ok')).toEqual(['ok', 'ok', 'ok']);
  });

  it('a raw process with onMigrate can be moved right after spawn() resolved', async () => {
    const s = await start([
      { name: 'a', modules: { walker: walker(1) } },
      { name: 'b', modules: { walker: walker(1) } },
    ]);
    // spawn() has resolved: the process exists, and its first step (a receive with onMigrate) is
    // about to run. Refusing it as "does not wait in a receive with onMigrate()" is wrong.
    const outcomes = [];
    for (let i = 0; i < 20; i++) {
      const pid = await s.node('a').spawn('walker', 'start', [i]);
      outcomes.push(
        await s.migrate(pid, 'b').then(
          (r) => r.ok,
          (e: Error) => e.message,
        ),
      );
    }
    expect(outcomes.filter((o) => o !== true)).toEqual([]);
  });

  it('a raw process with onMigrate that is busy when asked is moved at its next receive, not refused', async () => {
    const s = await start([
      { name: 'a', modules: { walker: walker(1) } },
      { name: 'b', modules: { walker: walker(1) } },
    ]);
    const inbox = s.inbox();
    const pid = await s.node('a').spawn('walker', 'start', [3]);
    // A backlog of about a second of work: it is runnable, between two receives, most of that time.
    for (let i = 0; i < 400; i++) s.send(pid, { op: 'work', ms: 2 });
    await sleep(50);
    const result = await s.migrate(pid, 'b').catch((e: unknown) => e);
    expect(result).toMatchObject({ ok: true, to: 'b' });
    s.send(pid, { op: 'ask', reply: inbox.pid });
    expect(await inbox.receive(has('total'))).toMatchObject({ total: 3, node: 'b' });
  });
});

describe('conversion failure: the process resumes on the source exactly as it was', () => {
  const nodes = (): NodeSpec[] => [
    { name: 'a', modules: { session: v1, probe } },
    { name: 'b', modules: { session: v2 } },
    { name: 'bare' },
    { name: 'z', restart: 'temporary', modules: { probe } },
    { name: 'y', restart: 'temporary', modules: { session: v2 } },
  ];

  async function expectUntouched(s: System, pid: Pid, name: string, state: unknown, info: unknown): Promise<void> {
    expect(await s.node('a').getState(pid)).toEqual(state);
    expect(await s.node('a').processInfo(pid)).toEqual(info);
    expect(await s.node('a').whereis(name)).toBe(pid);
    expect(s.locate(pid)).toEqual({ pid, node: 'a', home: 'a', moves: 0, path: ['a'] });
    expect(await s.call(pid, 'where')).toEqual({ node: 'a', self: pid, vsn: 1 });
  }

  it('codeChange throws, the target lacks the module, the target is unknown, stopped, or goes down mid-conversion', async () => {
    const s = await start(nodes());
    const events = record(s);
    const pid = await s.node('a').startServer('session', [3, 'keep'], { name: 'keep' });
    await s.call(pid, 'inc');
    const state = await s.node('a').getState(pid);
    const info = await s.node('a').processInfo(pid);

    const thrown = await move(s, pid, 'b', { extra: { fail: true } }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(Refused);
    expect((thrown as Error).message).toMatch(/conversion refused/);
    await expectUntouched(s, pid, 'keep', state, info);

    await expect(move(s, pid, 'bare')).rejects.toBeInstanceOf(UnknownModule);
    await expectUntouched(s, pid, 'keep', state, info);

    await expect(move(s, pid, 'nowhere')).rejects.toBeInstanceOf(UnknownNode);
    await expectUntouched(s, pid, 'keep', state, info);

    const stopped = waitEvent(s, 'node_stopped', (e) => e.node === 'z');
    await s
      .node('z')
      .spawn('probe', 'quit')
      .catch(() => {}); // the node may go before it answers
    await stopped;
    await expect(move(s, pid, 'z')).rejects.toBeInstanceOf(NodeDown);
    await expectUntouched(s, pid, 'keep', state, info);

    // The target's thread dies while converting.
    const down = await move(s, pid, 'y', { extra: { exitNode: true } }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(NodeDown);
    await expectUntouched(s, pid, 'keep', state, info);

    // Every failure says so, and no process_migrated event was emitted.
    expect(eventsOf(events, 'process_migrated')).toEqual([]);
    expect(eventsOf(events, 'process_exit')).toEqual([]);
    // It still moves when asked properly.
    await move(s, pid, 'b');
    expect(await s.call(pid, 'where')).toEqual({ node: 'b', self: pid, vsn: 2 });
  });

  it('messages sent during a failed attempt are delivered after it, in order, none lost', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, probe } },
      { name: 'b', modules: { session: v2, probe } },
      { name: 'c', modules: { probe } },
    ]);
    const pid = await s.node('a').startServer('session', [0], { name: 'srv' });
    const inbox = s.inbox();
    const N = 5_000;
    for (const n of ['a', 'b', 'c']) await s.node(n).spawn('probe', 'blast', [pid, n, N, inbox.pid]);
    await s.node('c').spawn('probe', 'blast', [{ name: 'srv', node: 'a' }, 'c-by-name', N, inbox.pid]);
    let hostSeq = 0;
    const attempt = move(s, pid, 'b', { extra: { slowFailMs: 150 } }).catch((e: unknown) => e);
    const calls: Promise<unknown>[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) s.cast(pid, { from: 'host', seq: hostSeq++ });
      if (round % 5 === 0) calls.push(s.call(pid, 'inc'));
      await sleep(5);
    }
    expect(await attempt).toBeInstanceOf(Refused);
    expect((await Promise.all(calls)).sort()).toEqual([1, 2, 3, 4]);
    for (let i = 0; i < 4; i++) await inbox.receive(has('sent'));
    const final = await until(
      'all casts',
      () => s.node('a').getState<SessionState>(pid),
      (st) => st.got === 4 * N + hostSeq,
    );
    expect(final.errors).toEqual([]);
    expect(final.seen).toEqual({ a: N - 1, b: N - 1, c: N - 1, 'c-by-name': N - 1, host: hostSeq - 1 });
    expect(final.n).toBe(4);
    expect(s.locate(pid).node).toBe('a');
  });
});

describe('links, monitors and registered names follow the process', () => {
  it('after a move: a linked crash still kills or informs it, DOWN still comes, { name, node: home } still reaches it', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, probe } },
      { name: 'b', modules: { session: v2, probe } },
      { name: 'c', modules: { probe } },
    ]);
    const inbox = s.inbox();
    const a = s.node('a');
    const c = s.node('c');
    // trapper traps exits; victim does not.
    const trapper = await a.startServer('session', [0, 'trapper'], { name: 'trapper' });
    const victim = await a.startServer('session', [0, 'victim'], { name: 'victim' });
    await s.call(trapper, 'trap');
    // Links both ways: they link to processes on c, and processes on c link to them.
    const outward = await c.spawn('probe', 'idle');
    await s.call(trapper, { link: outward });
    const inward = await c.spawn('probe', 'linked', [trapper, inbox.pid, false]);
    await inbox.receive({ linked: trapper });
    const victimLink = await c.spawn('probe', 'linked', [victim, inbox.pid, true]);
    await inbox.receive({ linked: victim });
    // Monitors both ways: it monitors a process on c; a process on c and the host monitor it.
    const watched = await c.spawn('probe', 'idle');
    const ref = await s.call<string>(trapper, { monitor: watched });
    await c.spawn('probe', 'watch', [victim, inbox.pid]);
    await inbox.receive({ watching: victim });
    const hostRef = inbox.monitor(victim);
    await sleep(50);
    expect((await a.processInfo(trapper))?.links.sort()).toEqual([outward, inward].sort());

    for (const pid of [trapper, victim]) expect(await move(s, pid, 'b')).toMatchObject({ ok: true });
    expect((await s.node('b').processInfo(trapper))?.links.sort()).toEqual([outward, inward].sort());
    expect(await s.call({ name: 'trapper', node: 'a' }, 'where')).toEqual({ node: 'b', self: trapper, vsn: 2 });
    expect(await s.call({ name: 'victim', node: 'a' }, 'where')).toEqual({ node: 'b', self: victim, vsn: 2 });

    // Crashes of linked processes reach it on b.
    s.send(outward, 'die');
    s.send(inward, 'die');
    s.send(watched, 'die');
    const trapped = await until(
      'EXIT and DOWN in the trapper',
      () => s.call<SessionState>(trapper, 'get'),
      (st) => st.info.length === 3,
    );
    expect(trapped.info).toEqual(
      expect.arrayContaining([
        { type: 'EXIT', from: outward, reason: 'boom' },
        { type: 'EXIT', from: inward, reason: 'boom' },
        { type: 'DOWN', ref, pid: watched, reason: 'boom' },
      ]),
    );

    // It dies on b: the linked process on c is told, the monitors on it fire.
    await expect(s.call(victim, 'crash')).rejects.toBeInstanceOf(NoProcess);
    const exit = await inbox.receive<{ exit: { from: Pid; reason: { error: { message: string } } } }>(has('exit'));
    expect(exit.exit.from).toBe(victim);
    expect(exit.exit.reason.error.message).toMatch(/crash requested/);
    const down = await inbox.receive<{ down: { pid: Pid } }>(has('down'));
    expect(down.down.pid).toBe(victim);
    const hostDown = await inbox.receive<{ type: string; ref: string; pid: Pid }>({ type: 'DOWN', ref: hostRef });
    expect(hostDown.pid).toBe(victim);
    expect(await c.processInfo(victimLink)).toMatchObject({ status: 'waiting', links: [] });

    // A link to a process on c that then crashes kills a non-trapping migrated process.
    const fragile = await a.startServer('session', [0, 'fragile']);
    const killer = await c.spawn('probe', 'idle');
    await s.call(fragile, { link: killer });
    await move(s, fragile, 'b');
    const fragileRef = inbox.monitor(fragile);
    // A call takes the monitor's path (host → home → b): once it is answered, the monitor is in place.
    await s.call(fragile, 'get');
    s.send(killer, 'die');
    const fragileDown = await inbox.receive<{ reason: unknown }>({ type: 'DOWN', ref: fragileRef });
    expect(fragileDown.reason).toBe('boom');
    expect(await s.node('b').processInfo(fragile)).toBeUndefined();
  });

  it('when the node it moved to goes down, monitors and links on it fire with noconnection', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, probe } },
      { name: 'b', restart: 'temporary', modules: { session: v2, probe } },
      { name: 'c', modules: { probe } },
    ]);
    const inbox = s.inbox();
    const pid = await s.node('a').startServer('session', [0]);
    await watchAndLinkFromC(s, pid, inbox);
    await move(s, pid, 'b');
    const ref = inbox.monitor(pid);
    await sleep(50);
    const stopped = waitEvent(s, 'node_stopped', (e) => e.node === 'b');
    await s
      .node('b')
      .spawn('probe', 'quit')
      .catch(() => {});
    await stopped;
    // As for a process whose pid names the node that went down.
    const [hostDown, watcherDown, linkExit] = await Promise.all([
      inbox.receive({ type: 'DOWN', ref }, 2_000).catch((e: unknown) => e),
      inbox.receive(has('down'), 2_000).catch((e: unknown) => e),
      inbox.receive(has('exit'), 2_000).catch((e: unknown) => e),
    ]);
    expect({ hostDown, watcherDown, linkExit }).toMatchObject({
      hostDown: { pid, reason: 'noconnection' },
      watcherDown: { down: { pid, reason: 'noconnection' } },
      linkExit: { exit: { from: pid, reason: 'noconnection' } },
    });
    // And it is not reported as running anywhere; a call to it fails at once.
    await expect(s.call(pid, 'get', 1_000)).rejects.toBeInstanceOf(NoProcess);
  });

  it('a name it holds on its home node cannot be taken while it lives elsewhere', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1 } },
      { name: 'b', modules: { session: v2 } },
    ]);
    const pid = await s.node('a').startServer('session', [0], { name: 'owner' });
    await move(s, pid, 'b');
    // The process still exists and still answers to { name: 'owner', node: 'a' }: the name is not free.
    await expect(s.node('a').startServer('session', [100], { name: 'owner' })).rejects.toBeInstanceOf(NameTaken);
    expect(await s.call({ name: 'owner', node: 'a' }, 'where')).toEqual({ node: 'b', self: pid, vsn: 2 });
    await move(s, pid, 'a');
    expect(await s.call({ name: 'owner', node: 'a' }, 'where')).toEqual({ node: 'a', self: pid, vsn: 1 });
    expect(await s.node('a').whereis('owner')).toBe(pid);
  });
});

describe('messages in flight', () => {
  it('a steady stream from senders on every node and the host, through back-and-forth moves: no loss, no duplicate, per-sender order', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, probe } },
      { name: 'b', modules: { session: v2, probe } },
      { name: 'c', modules: { session: v1, probe } },
    ]);
    const pid = await s.node('a').startServer('session', [0], { name: 'sink' });
    const inbox = s.inbox();
    const N = 20_000;
    // Senders on the home node, on both targets, and one sending by name.
    for (const n of ['a', 'b', 'c']) await s.node(n).spawn('probe', 'blast', [pid, n, N, inbox.pid]);
    await s.node('b').spawn('probe', 'blast', [{ name: 'sink', node: 'a' }, 'b-by-name', N, inbox.pid]);
    // And a slower one that lasts through all the moves.
    await s.node('c').spawn('probe', 'trickle', [pid, 'c-slow', 4_000, inbox.pid]);
    let hostSeq = 0;
    let hosting = true;
    const host = (async () => {
      while (hosting && hostSeq < 20_000) {
        for (let i = 0; i < 50; i++) s.cast(pid, { from: 'host', seq: hostSeq++ });
        await sleep(1);
      }
    })();
    const route = ['b', 'a', 'b', 'c', 'b', 'a'];
    const results = [];
    const calls: Promise<unknown>[] = [];
    try {
      for (const to of route) {
        await sleep(15);
        calls.push(s.call(pid, 'inc'));
        results.push(await move(s, pid, to));
      }
    } finally {
      hosting = false;
      await host;
    }
    expect(results.map((r) => [r.from, r.to, r.moves])).toEqual([
      ['a', 'b', 1],
      ['b', 'a', 2],
      ['a', 'b', 3],
      ['b', 'c', 4],
      ['c', 'b', 5],
      ['b', 'a', 6],
    ]);
    expect((await Promise.all(calls)).sort((x, y) => Number(x) - Number(y))).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 5; i++) await inbox.receive(has('sent'), 10_000);
    const total = 4 * N + 4_000 + hostSeq;
    const final = await until(
      'the whole stream',
      () => s.call<SessionState>(pid, 'get'),
      (st) => st.got >= total,
    );
    expect(final.errors).toEqual([]);
    expect(final.got).toBe(total);
    expect(final.seen).toEqual({ a: N - 1, b: N - 1, c: N - 1, 'b-by-name': N - 1, 'c-slow': 3_999, host: hostSeq - 1 });
    expect(final.conversions).toBe(6); // every move crossed versions (v1 on a and c, v2 on b)
    expect(s.locate(pid)).toEqual({ pid, node: 'a', home: 'a', moves: 6, path: ['a', 'b', 'a', 'b', 'c', 'b', 'a'] });
  });
});

describe('raw processes', () => {
  it('one waiting in a receive with onMigrate moves and continues with its state; one without is refused and keeps running', async () => {
    const s = await start([
      { name: 'a', modules: { walker: walker(1) } },
      { name: 'b', modules: { walker: walker(1) } },
      { name: 'c', modules: { walker: walker(2) } },
    ]);
    const events = record(s);
    const inbox = s.inbox();
    const ask = async (pid: Pid) => {
      s.send(pid, { op: 'ask', reply: inbox.pid });
      return inbox.receive<{ total: number; node: string; vsn: number; asks?: number }>(has('total'));
    };
    const w = await s.node('a').spawn('walker', 'start', [10], { name: 'walker' });
    s.send(w, { op: 'add', n: 5 });
    expect(await ask(w)).toEqual({ total: 15, asks: 1, node: 'a', vsn: 1 });
    expect(await move(s, w, 'b')).toMatchObject({ ok: true, vsn: { from: 1, to: 1 }, moves: 1 });
    s.send(w, { op: 'add', n: 1 });
    expect(await ask(w)).toEqual({ total: 16, asks: 2, node: 'b', vsn: 1 });
    expect(await s.node('b').processInfo(w)).toMatchObject({
      status: 'waiting',
      versions: [{ module: 'walker', version: 1, state: 'current' }],
      migration: { moves: 1, cameFrom: 'a' },
    });
    // On to a node with v2: its codeChange converts the continuation's arguments.
    expect(await move(s, w, 'c')).toMatchObject({ ok: true, vsn: { from: 1, to: 2 } });
    s.send({ name: 'walker', node: 'a' }, { op: 'add', n: 1 });
    expect(await ask(w)).toEqual({ total: 1700, asks: 3, node: 'c', vsn: 2 });

    const stubborn = await s.node('a').spawn('walker', 'stubborn', [7]);
    const refused = await move(s, stubborn, 'b').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Refused);
    expect((refused as Error).message).toMatch(/onMigrate/);
    s.send(stubborn, { op: 'add', n: 1 });
    expect(await ask(stubborn)).toEqual({ total: 8, node: 'a', vsn: 1 });
    expect(await s.node('a').processInfo(stubborn)).toMatchObject({ status: 'waiting' });
    expect(s.locate(stubborn)).toEqual({ pid: stubborn, node: 'a', home: 'a', moves: 0, path: ['a'] });
    expect(eventsOf(events, 'process_exit')).toEqual([]);
  });
});

describe('bulk moves', () => {
  it('migrateAll by module moves 2,000 servers in batches, converting each, with progress', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1 } },
      { name: 'b', modules: { session: v2 } },
    ]);
    let migrated = 0;
    s.on('process_migrated', () => {
      migrated++;
    });
    const pids = await Promise.all(Array.from({ length: 2_000 }, (_, i) => s.node('a').startServer('session', [i])));
    const progress: [number, number][] = [];
    const t0 = Date.now();
    const results = await s.migrateAll({
      from: 'a',
      to: 'b',
      module: 'session',
      batch: 500,
      extra: { bulk: true },
      onProgress: (done, total) => progress.push([done, total]),
    });
    const ms = Date.now() - t0;
    expect(progress).toEqual([
      [500, 2000],
      [1000, 2000],
      [1500, 2000],
      [2000, 2000],
    ]);
    expect(results).toHaveLength(2_000);
    expect(results.every((r) => r.ok && r.from === 'a' && r.to === 'b' && r.moves === 1)).toBe(true);
    expect(new Set(results.map((r) => r.pid))).toEqual(new Set(pids));
    expect(migrated).toBe(2_000);
    expect(await s.node('a').behavioursOf('session')).toEqual([]);
    expect((await s.node('b').behavioursOf('session')).length).toBe(2_000);
    for (const i of [0, 777, 1999]) {
      expect(await s.call(pids[i]!, 'inc')).toBe(i + 1);
      expect(await s.node('b').getState(pids[i]!)).toMatchObject({ count: i + 1, conversions: 1, extra: { bulk: true } });
    }
    expect(ms).toBeLessThan(15_000);
  });

  it('a mixed bulk move reports per pid: the ones that fail stay where they were', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, walker: walker(1) } },
      { name: 'b', modules: { session: v2, walker: walker(1) } },
    ]);
    const servers = [];
    for (let i = 0; i < 6; i++) servers.push(await s.node('a').startServer('session', [i]));
    await s.call(servers[1]!, 'poison');
    await s.call(servers[4]!, 'poison');
    const movable = await s.node('a').spawn('walker', 'start', [1]);
    const stubborn = await s.node('a').spawn('walker', 'stubborn', [1]);
    await until(
      'raw processes waiting',
      async () => Promise.all([movable, stubborn].map((p) => s.node('a').processInfo(p))),
      (infos) => infos.every((i) => i?.status === 'waiting'),
    );
    const results = await s.migrateAll({ from: 'a', to: 'b', pids: [...servers, movable, stubborn] });
    const byPid = new Map(results.map((r) => [r.pid, r]));
    expect(results).toHaveLength(8);
    for (const i of [0, 2, 3, 5]) expect(byPid.get(servers[i]!)).toMatchObject({ ok: true, to: 'b', vsn: { from: 1, to: 2 } });
    for (const i of [1, 4]) {
      expect(byPid.get(servers[i]!)).toMatchObject({ ok: false, from: 'a', to: 'b', error: { code: 'refused' } });
      expect(byPid.get(servers[i]!)!.error!.message).toMatch(/conversion refused/);
      expect(await s.call(servers[i]!, 'where')).toEqual({ node: 'a', self: servers[i], vsn: 1 });
      expect(s.locate(servers[i]!).node).toBe('a');
    }
    expect(byPid.get(movable)).toMatchObject({ ok: true });
    expect(byPid.get(stubborn)).toMatchObject({ ok: false, error: { code: 'refused' } });
    expect(await s.node('a').processInfo(stubborn)).toMatchObject({ status: 'waiting' });
    // By module, the raw processes in its code are selected too: the stubborn one is refused again.
    const again = await s.migrateAll({ from: 'a', to: 'b', module: 'walker' });
    expect(again.map((r) => [r.pid, r.ok])).toEqual([[stubborn, false]]);
    // A dead pid: NoProcess for that one.
    const [dead] = await s.migrateAll({ from: 'a', to: 'b', pids: ['<a.999>' as Pid] });
    expect(dead).toMatchObject({ ok: false, error: { code: 'no_process' } });
    await expect(move(s, '<a.999>' as Pid, 'b')).rejects.toBeInstanceOf(NoProcess);
  });
});

describe('inspection, events and forwarding clean-up', () => {
  it('locate gives node, home, moves and path; ProcessInfo.migration and process_migrated events follow every move', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1 } },
      { name: 'b', modules: { session: v2 } },
      { name: 'c', modules: { session: v2 } },
    ]);
    const events = record(s);
    const pid = await s.node('a').startServer('session');
    expect(s.locate(pid)).toEqual({ pid, node: 'a', home: 'a', moves: 0, path: ['a'] });
    expect((await s.node('a').processInfo(pid))?.migration).toBeUndefined();
    await move(s, pid, 'b');
    await move(s, pid, 'c');
    expect(s.locate(pid)).toEqual({ pid, node: 'c', home: 'a', moves: 2, path: ['a', 'b', 'c'] });
    expect((await s.node('c').processInfo(pid))?.migration).toEqual({ moves: 2, cameFrom: 'b' });
    expect(eventsOf(events, 'process_migrated')).toEqual([
      { type: 'process_migrated', node: 'b', pid, from: 'a', to: 'b', moves: 1 },
      { type: 'process_migrated', node: 'c', pid, from: 'b', to: 'c', moves: 2 },
    ]);
    // The location is a snapshot: changing it does not change the registry.
    s.locate(pid).path.push('x');
    expect(s.locate(pid).path).toEqual(['a', 'b', 'c']);
    expect(() => s.locate('nope' as Pid)).toThrow(SubnodeError);
  });

  it('when a migrated process dies its forwarding entries go; sends to it are dropped quietly and new processes are not confused with it', async () => {
    const s = await start([
      { name: 'a', modules: { session: v1, probe } },
      { name: 'b', restart: 'temporary', modules: { session: v2, probe } },
      { name: 'c', restart: 'temporary', modules: { session: v2, probe } },
      { name: 'd', modules: { probe } },
    ]);
    const events = record(s);
    const inbox = s.inbox();
    const pid = await s.node('a').startServer('session', [0], { name: 'ghost' });
    await move(s, pid, 'b');
    await move(s, pid, 'c');
    const ref = inbox.monitor(pid);
    expect(await s.call(pid, { stop: 'normal' })).toBe('bye');
    expect(await inbox.receive({ type: 'DOWN', ref })).toMatchObject({ pid, reason: 'normal' });
    // Gone travels c → b → a; at a it frees the home-local name the moved process held.
    await until(
      'Gone to reach the home node',
      () => s.node('a').whereis('ghost'),
      (owner) => owner === undefined,
    );

    // Take the nodes it passed through away: anything still forwarding there would be lost.
    for (const n of ['b', 'c']) {
      const stopped = waitEvent(s, 'node_stopped', (e) => e.node === n);
      await s
        .node(n)
        .spawn('probe', 'quit')
        .catch(() => {}); // the node may go before it answers
      await stopped;
    }
    // Its home answers for it now: noproc at once, by pid and by its old name.
    const late = inbox.monitor(pid);
    expect(await inbox.receive({ type: 'DOWN', ref: late }, 2_000)).toMatchObject({ pid, reason: 'noproc' });
    await expect(s.call(pid, 'get', 2_000)).rejects.toBeInstanceOf(NoProcess);
    // Sends to the dead pid from the host, from its home node and from another node: dropped, nobody
    // crashes. (By its old name too, from outside its home node; on the home node itself a send to an
    // unregistered local name is an error, migrated or not.)
    s.send(pid, 'hello?');
    s.send({ name: 'ghost', node: 'a' }, 'hello?');
    for (const n of ['a', 'd']) {
      const sender = await s.node(n).spawn('probe', 'sender', [inbox.pid]);
      s.send(sender, { to: pid, body: 'hello?' });
      await inbox.receive({ survived: true });
      if (n === 'd') {
        s.send(sender, { to: { name: 'ghost', node: 'a' }, body: 'hello?' });
        await inbox.receive({ survived: true });
      }
      expect(await s.node(n).processInfo(sender)).toMatchObject({ status: 'waiting' });
    }
    // New processes get new pids; the name is free again and the new owner gets what is sent to it.
    const fresh = await s.node('a').startServer('session', [42], { name: 'ghost' });
    expect(fresh).not.toBe(pid);
    s.cast(pid, { from: 'old', seq: 0 });
    expect(await s.call({ name: 'ghost', node: 'a' }, 'inc')).toBe(43);
    expect((await s.node('a').getState<SessionState>(fresh)).seen).toEqual({});
    expect(eventsOf(events, 'process_exit')).toEqual([]);
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
  });
});

describe('purgeToNode', () => {
  it('moves processes lingering in old code to a legacy node holding that version, then purges it on the source', async () => {
    const s = await start([
      { name: 'a', modules: { walker: walker(1) } },
      { name: 'legacy', modules: { walker: walker(1) } },
    ]);
    const events = record(s);
    const inbox = s.inbox();
    const ask = async (pid: Pid) => {
      s.send(pid, { op: 'ask', reply: inbox.pid });
      return inbox.receive<{ total: number; node: string; vsn: number }>(has('total'));
    };
    const old = [];
    for (let i = 1; i <= 3; i++) old.push(await s.node('a').spawn('walker', 'start', [i]));
    const stuck = await s.node('a').spawn('walker', 'stubborn', [0]);
    await s.node('a').load('walker', walker(2));
    const fresh = await s.node('a').spawn('walker', 'start', [9]);
    expect((await s.node('a').lingering('walker')).sort()).toEqual([...old, stuck].sort());

    const { moved, purge } = await s.purgeToNode('a', 'walker', 'legacy');
    expect(
      moved
        .filter((r) => r.ok)
        .map((r) => r.pid)
        .sort(),
    ).toEqual([...old].sort());
    expect(moved.every((r) => (r.ok ? r.to === 'legacy' && (r.vsn as { from: unknown; to: unknown }).to === 1 : r.pid === stuck))).toBe(true);
    expect(purge).toMatchObject({ module: 'walker', ok: true, purged: [1], killed: [stuck] });
    expect((await s.node('a').modules()).find((m) => m.name === 'walker')!.versions.map((v) => v.version)).toEqual([2]);
    expect(await s.node('a').lingering('walker')).toEqual([]);
    // The moved ones keep answering from the old code, on the legacy node, by their old pids.
    for (const [i, pid] of old.entries()) {
      expect(await ask(pid)).toMatchObject({ total: i + 1, node: 'legacy', vsn: 1 });
      expect(s.locate(pid)).toMatchObject({ node: 'legacy', home: 'a', moves: 1 });
    }
    expect(await ask(fresh)).toMatchObject({ total: 9, node: 'a', vsn: 2 });
    expect(eventsOf(events, 'process_purged').map((e) => e.pid)).toEqual([stuck]);
  });
});

describe('purgeToNode with a busy process', () => {
  it('a lingering process that is busy when the purge comes is moved too, not killed', async () => {
    const s = await start([
      { name: 'a', modules: { walker: walker(1) } },
      { name: 'legacy', modules: { walker: walker(1) } },
    ]);
    const inbox = s.inbox();
    const busy = await s.node('a').spawn('walker', 'start', [5]);
    await s.node('a').load('walker', walker(2));
    for (let i = 0; i < 400; i++) s.send(busy, { op: 'work', ms: 2 });
    await sleep(50);
    const { moved, purge } = await s.purgeToNode('a', 'walker', 'legacy');
    expect({ moved: moved.map((r) => [r.pid, r.ok, r.error?.message]), killed: purge.killed }).toEqual({ moved: [[busy, true, undefined]], killed: [] });
    s.send(busy, { op: 'ask', reply: inbox.pid });
    expect(await inbox.receive(has('total'), 5_000)).toMatchObject({ total: 5, node: 'legacy', vsn: 1 });
  });
});

describe.each([false, true])('between thread nodes and isolate nodes (dense: %s)', (dense) => {
  const mixed = (): NodeSpec[] => [
    { name: 't', modules: { session: v1, door: door(1), probe } },
    { name: 'iso', kind: 'isolate', dense, modules: { session: v2, door: door(2), probe } },
    { name: 'c', modules: { probe } },
  ];

  it('a server and a statem move thread → isolate → thread, converted each way', async () => {
    const s = await start(mixed());
    const events = record(s);
    const pid = await s.node('t').startServer('session', [1, 'cross'], { name: 'cross' });
    const st = await s.node('t').startStatem('door', ['42']);
    expect(await move(s, pid, 'iso', { extra: { into: 'isolate' } })).toMatchObject({ ok: true, vsn: { from: 1, to: 2 } });
    expect(await move(s, st, 'iso', { extra: { note: 'iso' } })).toMatchObject({ ok: true, vsn: { from: 1, to: 2 } });
    expect(await s.call(pid, 'where')).toEqual({ node: 'iso', self: pid, vsn: 2 });
    expect(await s.call(pid, 'inc')).toBe(2);
    expect(await s.node('iso').getState(pid)).toMatchObject({ count: 2, conversions: 1, extra: { into: 'isolate' } });
    expect(await s.node('iso').processInfo(pid)).toMatchObject({ migration: { moves: 1, cameFrom: 't' } });
    expect(await s.call({ name: 'cross', node: 't' }, 'inc')).toBe(3);
    expect(await s.call(st, { unlock: '42' })).toBe('opened');
    expect(await s.call(st, 'inspect')).toEqual({ state: 'open', data: { pin: '42', opened: 1, note: 'iso' }, vsn: 2, node: 'iso' });
    await move(s, pid, 't');
    await move(s, st, 't');
    expect(await s.call(pid, 'where')).toEqual({ node: 't', self: pid, vsn: 1 });
    expect(await s.node('t').getState(pid)).toMatchObject({ n: 3, conversions: 2 });
    expect(await s.call(st, 'inspect')).toEqual({ state: 'open', data: { code: '42' }, vsn: 1, node: 't' });
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
  });

  it('a server homed on an isolate node moves to a thread node and back; a failed conversion there rolls back', async () => {
    const s = await start(mixed());
    const events = record(s);
    const pid = await s.node('iso').startServer('session', [10], { name: 'isoHome' });
    expect(pid).toMatch(/^<iso\./);
    const before = await s.node('iso').getState(pid);
    await expect(move(s, pid, 't', { extra: { fail: true } })).rejects.toBeInstanceOf(Refused);
    expect(await s.node('iso').getState(pid)).toEqual(before);
    expect(await s.call(pid, 'where')).toEqual({ node: 'iso', self: pid, vsn: 2 });
    expect(await move(s, pid, 't')).toMatchObject({ ok: true, vsn: { from: 2, to: 1 } });
    expect(await s.call({ name: 'isoHome', node: 'iso' }, 'where')).toEqual({ node: 't', self: pid, vsn: 1 });
    expect(await s.call(pid, 'inc')).toBe(11);
    expect(await move(s, pid, 'iso')).toMatchObject({ ok: true, moves: 2 });
    expect(await s.call(pid, 'inc')).toBe(12);
    expect(await s.node('iso').whereis('isoHome')).toBe(pid);
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
  });

  it('ten round trips between a thread node and an isolate node, each move right after the last one', async () => {
    const s = await start(mixed());
    const pid = await s.node('t').startServer('session', [0]);
    for (let i = 0; i < 10; i++) {
      await move(s, pid, 'iso');
      await move(s, pid, 't');
    }
    expect(s.locate(pid)).toMatchObject({ node: 't', moves: 20 });
    expect(await s.call(pid, 'inc')).toBe(1);
  });

  it('a stream of messages through moves between thread and isolate nodes: no loss, per-sender order', async () => {
    const s = await start(mixed());
    const events = record(s);
    const pid = await s.node('t').startServer('session', [0]);
    const inbox = s.inbox();
    const N = 5_000;
    for (const n of ['t', 'iso', 'c']) await s.node(n).spawn('probe', 'blast', [pid, n, N, inbox.pid]);
    for (const to of ['iso', 't', 'iso', 't']) {
      await sleep(15);
      await move(s, pid, to);
    }
    for (let i = 0; i < 3; i++) await inbox.receive(has('sent'));
    const final = await until(
      'the stream',
      () => s.call<SessionState>(pid, 'get'),
      (st) => st.got >= 3 * N,
    );
    expect(final.errors).toEqual([]);
    expect(final.got).toBe(3 * N);
    expect(final.seen).toEqual({ t: N - 1, iso: N - 1, c: N - 1 });
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
  });

  it('links and monitors of a process that moved into an isolate node still fire when it dies there', async () => {
    const s = await start(mixed());
    const events = record(s);
    const inbox = s.inbox();
    const pid = await s.node('t').startServer('session', [0]);
    await watchAndLinkFromC(s, pid, inbox);
    await move(s, pid, 'iso');
    const ref = inbox.monitor(pid);
    const crashed = await s.call(pid, 'crash', 2_000).catch((e: unknown) => e);
    // Nothing of it may be stopped at the isolate boundary…
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
    // …so the call sees it end, and every monitor and link on it fires.
    expect(crashed).toBeInstanceOf(NoProcess);
    expect(await inbox.receive({ type: 'DOWN', ref }, 2_000)).toMatchObject({ pid });
    expect(await inbox.receive(has('down'), 2_000)).toMatchObject({ down: { pid } });
    expect(await inbox.receive(has('exit'), 2_000)).toMatchObject({ exit: { from: pid } });
  });

  it('links and monitors of a process homed on an isolate node still fire after it moved to a thread node', async () => {
    const s = await start(mixed());
    const events = record(s);
    const inbox = s.inbox();
    const pid = await s.node('iso').startServer('session', [0]);
    await move(s, pid, 't');
    // Set up after the move: the signals go to its home, the isolate node, which forwards them.
    await watchAndLinkFromC(s, pid, inbox);
    const ref = inbox.monitor(pid);
    const crashed = await s.call(pid, 'crash', 2_000).catch((e: unknown) => e);
    // Nothing of it may be stopped at the isolate boundary…
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
    // …so the call sees it end, and every monitor and link on it fires.
    expect(crashed).toBeInstanceOf(NoProcess);
    expect(await inbox.receive({ type: 'DOWN', ref }, 2_000)).toMatchObject({ pid });
    expect(await inbox.receive(has('down'), 2_000)).toMatchObject({ down: { pid } });
    expect(await inbox.receive(has('exit'), 2_000)).toMatchObject({ exit: { from: pid } });
  });

  it('an isolate home node restarted after its process moved to a node outside its sendTo still forwards to it', async () => {
    const bomb = `
      import { receive, on } from 'subnode/process';
      export function grow(): unknown { return receive(on('go', () => { const keep: unknown[] = []; for (;;) keep.push(new Array(1e5).fill(keep.length)); })); }
    `;
    const s = await start([
      { name: 'home', kind: 'isolate', dense, capabilities: { sendTo: ['t'] }, limits: { memoryMb: 32, cpuMsPerSlice: 1_000 }, modules: { session: v2, bomb } },
      { name: 't', modules: { probe } },
      { name: 'far', modules: { session: v1 } },
    ]);
    const pid = await s.node('home').startServer('session', [0]);
    await move(s, pid, 'far');
    // The home node dies (over its memory limit) and comes back: its forwards are replayed.
    const restarted = waitEvent(s, 'node_restarted', (e) => e.node === 'home', 15_000);
    s.send(await s.node('home').spawn('bomb', 'grow'), 'go');
    await restarted;
    const events = record(s);
    // A process on t sends to the pid, which names home: home forwards each message to far.
    const inbox = s.inbox();
    const N = 200;
    await s.node('t').spawn('probe', 'blast', [pid, 't', N, inbox.pid]);
    await inbox.receive(has('sent'));
    const final = await until(
      'the forwarded stream',
      () => s.call<SessionState>(pid, 'get'),
      (st) => st.got >= N,
    );
    expect(final).toMatchObject({ got: N, errors: [], seen: { t: N - 1 } });
    expect(eventsOf(events, 'capability_denied')).toEqual([]);
    expect(s.locate(pid)).toMatchObject({ node: 'far' });
  });
});
