/**
 * Durable state at the edges of a 'message' server's life: a server that stops keeps its final
 * state, saved before its reply goes out (a restart resumes from it); and a checkpoint write that
 * times out and lands later can neither be what a restart resumes from (the server's kernel reverts
 * it to the last confirmed state) nor replace a newer acknowledged state (writes are numbered per
 * key and a store keeps the highest); nor can the state of a server killed while its checkpoint was
 * in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStateStore, System, Timeout, type StoredState, type SystemEvent } from '../src/index.js';
import { durableV1 } from './fixtures/durable-counter.js';
import { until } from './helpers/wait.js';

let system: System | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await system?.stop();
  system = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const C = { name: 'c', node: 'a' };
const NODES = [{ name: 'a', modules: { counter: durableV1 } }];

/** A memory store with fault hooks: hold writes until let go, or answer one with a timeout and land it later. */
class HookedStore extends MemoryStateStore {
  /** The release store's directory (the states are kept here, in memory). */
  readonly dir = mkdtempSync(join(tmpdir(), 'subnode-durable-ending-'));
  hold = false;
  lateNext = false;
  readonly held: (() => Promise<void>)[] = [];
  override put(state: StoredState): Promise<void> {
    if (this.lateNext) {
      this.lateNext = false;
      this.held.push(() => super.put(state));
      return Promise.reject(new Timeout('the store did not answer in time'));
    }
    if (this.hold) return new Promise((resolve, reject) => this.held.push(() => super.put(state).then(resolve, reject)));
    return super.put(state);
  }
  /** Lets every held write land now. */
  async land(): Promise<void> {
    await Promise.all(this.held.splice(0).map((go) => go()));
  }
}

async function start(states: HookedStore, timeoutMs = 5_000): Promise<System> {
  if (!dirs.includes(states.dir)) dirs.push(states.dir);
  const s = await System.start({ nodes: NODES, releases: { store: states.dir, states } });
  await s.node('a').startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message', timeoutMs } });
  return s;
}

function record(s: System): SystemEvent[] {
  const events: SystemEvent[] = [];
  s.on('*', (e) => events.push(e));
  return events;
}

const stored = async (s: System): Promise<unknown> => (await s.durable.list('a'))[0]?.state;

describe("a 'message' server that stops keeps its final state", () => {
  it('{ stop, reply, state }: the reply waits until the final state is durable; a restart resumes from it', async () => {
    const states = new HookedStore();
    system = await start(states);
    expect(await system.call(C, 'inc')).toBe(1);
    const pid = (await system.node('a').whereis('c'))!;
    states.hold = true;
    let answered = false;
    const reply = system.call<number>(C, 'stop').then((v) => ((answered = true), v));
    await until('the final state is being written', () => states.held.length === 1);
    expect(answered).toBe(false); // not before it is durable
    states.hold = false;
    await states.land();
    expect(await reply).toBe(2);
    await until('the server exits', async () => (await system!.node('a').processInfo(pid)) === undefined);
    expect(await stored(system)).toEqual({ count: 2 });
    await system.node('a').startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message' } });
    expect(await system.call(C, 'get')).toBe(2);
  });

  it('{ stop, state } from a cast is saved too, and survives a stop and a start of the system', async () => {
    const states = new HookedStore();
    system = await start(states);
    await system.call(C, 'inc');
    const pid = (await system.node('a').whereis('c'))!;
    system.cast(C, 'stop');
    await until('the server exits', async () => (await system!.node('a').processInfo(pid)) === undefined);
    expect(await stored(system)).toEqual({ count: 101 });
    await system.stop();
    system = await start(states);
    expect(await system.call(C, 'get')).toBe(101);
  });

  it('a final state that cannot be saved: the caller gets no reply, the server ends with checkpoint_failed, the last durable state stays', async () => {
    const states = new HookedStore();
    system = await start(states, 300);
    const events = record(system);
    await system.call(C, 'inc');
    const pid = (await system.node('a').whereis('c'))!;
    states.hold = true;
    await expect(system.call(C, 'stop', 3_000)).rejects.toThrow();
    await until('it ends', () => events.find((e) => e.type === 'process_exit' && e.pid === pid));
    expect(events.find((e) => e.type === 'process_exit' && e.pid === pid)).toMatchObject({ reason: { checkpoint_failed: { name: 'Timeout' } } });
    states.hold = false;
    await states.land(); // the write lands late: the revert puts the confirmed state back over it
    await until('the confirmed state is back', async () => JSON.stringify(await stored(system!)) === JSON.stringify({ count: 1 }));
  });
});

describe('a checkpoint write that times out and lands later', () => {
  it('a server killed while its checkpoint is in flight: that state is undone, here and in the store', async () => {
    const states = new HookedStore();
    system = await start(states);
    expect(await system.call(C, 'inc')).toBe(1);
    const pid = (await system.node('a').whereis('c'))!;
    states.hold = true;
    const unanswered = system.call(C, 'inc', 10_000).catch((error: unknown) => error);
    await until('the checkpoint is being written', () => states.held.length === 1);
    await system.node('a').exit(pid, 'kill');
    expect(await unanswered).toBeInstanceOf(Error);
    states.hold = false;
    await states.land(); // { count: 2 } lands now; the revert puts { count: 1 } back above it
    await until('the confirmed state is back', async () => JSON.stringify(await stored(system!)) === JSON.stringify({ count: 1 }));
    await system.node('a').startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message' } });
    expect(await system.call(C, 'get')).toBe(1); // a restart on the node resumes from the confirmed state too
    await system.stop();
    system = await start(states);
    expect(await system.call(C, 'get')).toBe(1);
  });

  it('is not what a restart resumes from: the last confirmed state is', async () => {
    const states = new HookedStore();
    system = await start(states, 300);
    const events = record(system);
    expect(await system.call(C, 'inc')).toBe(1);
    states.lateNext = true;
    await expect(system.call(C, 'inc', 3_000)).rejects.toThrow(); // never acknowledged
    await until('the server ends', () => events.some((e) => e.type === 'process_exit'));
    await until('the revert is filed', async () => ((await system!.durable.list('a'))[0]?.seq ?? 0) >= 3);
    await states.land(); // the unacknowledged { count: 2 } lands now, after the revert
    await system.stop();
    system = await start(states);
    expect(await system.call(C, 'get')).toBe(1);
  });

  it('cannot replace a newer acknowledged state', async () => {
    const states = new HookedStore();
    system = await start(states, 300);
    const events = record(system);
    expect(await system.call(C, 'inc')).toBe(1);
    states.lateNext = true;
    await expect(system.call(C, 'inc', 3_000)).rejects.toThrow();
    await until('the server ends', () => events.some((e) => e.type === 'process_exit'));
    await system.node('a').startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message' } });
    expect(await system.call(C, 'get')).toBe(1);
    expect(await system.call(C, 'inc')).toBe(2);
    expect(await system.call(C, 'inc')).toBe(3); // acknowledged: durable
    await states.land(); // the old write ({ count: 2 }, never acknowledged) lands only now
    await system.stop();
    system = await start(states);
    expect(await system.call(C, 'get')).toBe(3);
  });
});
