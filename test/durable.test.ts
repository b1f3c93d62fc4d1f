/**
 * Durable server state (issue #13, item 4): a server started with `durable: { key?, checkpoint }`
 * resumes from its last saved state after a stop and a start on the same store, after its node's
 * thread is restarted, and after a supervisor restarts it; a state saved by v1 is converted by
 * v2's codeChange; isolate nodes too, within their capability; bad declarations and states over
 * the limit get typed errors; a server without `durable` keeps nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BadArgument,
  MemoryStateStore,
  NotAllowed,
  Refused,
  System,
  type DurableOptions,
  type NodeSpec,
  type StoredState,
  type SystemEvent,
} from '../src/index.js';
import { durableV1, durableV2 } from './fixtures/durable-counter.js';
import { until } from './helpers/wait.js';

let system: System | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await system?.stop();
  system = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function storeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'subnode-durable-'));
  dirs.push(dir);
  return dir;
}

const C = { name: 'c', node: 'a' };

function counterNode(durable: DurableOptions | undefined, extra: Partial<NodeSpec> = {}): NodeSpec[] {
  return [{ name: 'a', modules: { counter: durableV1 }, start: [{ server: 'counter', args: [0], name: 'c', ...(durable ? { durable } : {}) }], ...extra }];
}

async function incs(s: System, n: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < n; i++) last = await s.call<number>(C, 'inc');
  return last;
}

function record(s: System): SystemEvent[] {
  const events: SystemEvent[] = [];
  s.on('*', (e) => events.push(e));
  return events;
}

describe('each checkpoint policy keeps the count across a stop and a start', () => {
  it("'message': every acknowledged call is saved before its reply (even an abrupt stop keeps it)", async () => {
    const dir = storeDir();
    system = await System.start({ nodes: counterNode({ checkpoint: 'message' }), releases: { store: dir } });
    expect(await incs(system, 5)).toBe(5);
    system.cast(C, 'inc'); // a cast changes the state too: saved before the next message is taken
    expect(await system.call(C, 'get')).toBe(6);
    await system.stop(); // not graceful: nothing is saved at the end
    system = await System.start({ nodes: counterNode({ checkpoint: 'message' }), releases: { store: dir } });
    const events = record(system);
    expect(await system.call(C, 'get')).toBe(6);
    expect(await incs(system, 1)).toBe(7);
    expect(events.some((e) => e.type === 'durable_restored')).toBe(false); // it was restored during the start, before we listened
    const pid = (await system.node('a').whereis('c'))!;
    expect((await system.node('a').processInfo(pid))?.behaviour?.durable).toEqual({ key: 'c', checkpoint: 'message' });
    const [stored] = await system.durable.list('a');
    expect(stored).toMatchObject({ node: 'a', key: 'c', module: 'counter', vsn: 1, state: { count: 7 } });
    // Forgetting: refused while the server holds the key; once it stopped, the next one starts from init.
    await expect(system.durable.forget('a', 'c')).rejects.toBeInstanceOf(Refused);
    await system.node('a').exit(pid, 'kill');
    expect(await system.durable.forget('a', 'c')).toBe(true);
    expect(await system.durable.list()).toEqual([]);
    await system.node('a').startServer('counter', [100], { name: 'c', durable: { checkpoint: 'message' } });
    expect(await system.call(C, 'get')).toBe(100);
  });

  it('{ everyMs }: the latest state within the window; a graceful stop saves the rest', async () => {
    const dir = storeDir();
    system = await System.start({ nodes: counterNode({ checkpoint: { everyMs: 50 } }), releases: { store: dir } });
    await incs(system, 3);
    const s1 = system;
    await untilAsync(
      'the timed checkpoint of 3',
      async () => (await s1.durable.list('a'))[0]?.state !== undefined && ((await s1.durable.list('a'))[0]!.state as { count: number }).count === 3,
    );
    await system.stop();
    system = await System.start({ nodes: counterNode({ checkpoint: { everyMs: 60_000 } }), releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(3);
    await incs(system, 2); // within a minute's window: not written yet, but a graceful stop saves it
    expect(((await system.durable.list('a'))[0]!.state as { count: number }).count).toBe(3);
    await system.stop({ graceful: true });
    system = await System.start({ nodes: counterNode({ checkpoint: { everyMs: 60_000 } }), releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(5);
  });

  it('{ everyMs }: a server that ends sends the state it had not sent yet', async () => {
    system = await System.start({ nodes: counterNode({ checkpoint: { everyMs: 60_000 } }) });
    await incs(system, 2);
    const s = system;
    expect(await s.durable.list()).toEqual([]);
    await system.node('a').exit((await system.node('a').whereis('c'))!, 'kill');
    await untilAsync('the last state saved', async () => ((await s.durable.list('a'))[0]?.state as { count: number } | undefined)?.count === 2);
  });

  it("'shutdown': saved by an orderly stop only", async () => {
    const dir = storeDir();
    system = await System.start({ nodes: counterNode({ checkpoint: 'shutdown' }), releases: { store: dir } });
    await incs(system, 3);
    await system.stop(); // abrupt: as a crash, nothing saved
    system = await System.start({ nodes: counterNode({ checkpoint: 'shutdown' }), releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(0);
    await incs(system, 2);
    expect(await system.durable.list()).toEqual([]);
    await system.stop({ graceful: true });
    system = await System.start({ nodes: counterNode({ checkpoint: 'shutdown' }), releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(2);
  });

  it('off by default: a server without durable keeps nothing', async () => {
    const dir = storeDir();
    system = await System.start({ nodes: counterNode(undefined), releases: { store: dir } });
    await incs(system, 3);
    await system.stop({ graceful: true });
    system = await System.start({ nodes: counterNode(undefined), releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(0);
    expect(await system.durable.list()).toEqual([]);
  });
});

describe('restarts inside a running system', () => {
  it("a node's thread killed and restarted by its supervision resumes the count (no release store: the host's memory)", async () => {
    system = await System.start({ nodes: counterNode({ checkpoint: 'message' }) });
    const events = record(system);
    await incs(system, 4);
    system.node('a').kill('test crash');
    await until('node a restarted', () => events.some((e) => e.type === 'node_restarted'));
    expect(await system.call(C, 'get')).toBe(4);
    expect(events.find((e) => e.type === 'durable_restored')).toMatchObject({ node: 'a', key: 'c', from: 1, to: 1 });
  });

  it('a server its supervisor restarts after a crash resumes from its last state', async () => {
    const sup = `
      export function init() {
        return { strategy: 'one_for_one', intensity: 5, period: 5000,
          children: [{ id: 'c', start: { server: 'counter', args: [0], name: 'c', durable: { checkpoint: 'message' } } }] };
      }`;
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: durableV1, sup }, start: [{ supervisor: 'sup', name: 'sup' }] }] });
    const events = record(system);
    await incs(system, 3);
    const first = await system.node('a').whereis('c');
    system.cast(C, 'crash');
    await until('the restart', () => events.some((e) => e.type === 'durable_restored'));
    const s = system;
    await untilAsync('c is back under a new pid', async () => ![undefined, first].includes(await s.node('a').whereis('c')));
    expect(await system.call(C, 'get')).toBe(3);
  });
});

describe('code change and isolation', () => {
  it("a state saved by v1 is converted by v2's codeChange before the first message", async () => {
    const dir = storeDir();
    const spec: NodeSpec[] = [{ name: 'a', modules: { counter: durableV1 } }];
    system = await System.start({ nodes: spec, releases: { store: dir } });
    await system.node('a').startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message' } });
    await incs(system, 2);
    await system.stop({ graceful: true });
    system = await System.start({ nodes: spec, releases: { store: dir } });
    const events = record(system);
    await system.node('a').load('counter', durableV2);
    await system.node('a').startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message' } });
    expect(await system.call(C, 'vsn')).toBe(2);
    expect(await system.call(C, 'get')).toBe(2);
    expect(await system.call(C, 'history')).toEqual(['from v1']);
    expect(events.find((e) => e.type === 'durable_restored')).toMatchObject({ key: 'c', from: 1, to: 2 });
    expect(await system.call(C, 'inc')).toBe(3);
    expect((await system.durable.list('a'))[0]).toMatchObject({ vsn: 2, state: { total: 3 } });
  });

  it('an isolate node keeps durable state within its capability, and is refused without it', async () => {
    const dir = storeDir();
    const iso = (durable: string[] | undefined): NodeSpec[] =>
      counterNode({ checkpoint: 'message' }, { kind: 'isolate', ...(durable ? { capabilities: { durable } } : {}) });
    system = await System.start({ nodes: iso(['c']), releases: { store: dir } });
    await incs(system, 3);
    await system.stop();
    system = await System.start({ nodes: iso(['c']), releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(3);
    // Without the capability (an isolate's default: none), a durable server is refused.
    const refused = system.node('a').startServer('counter', [0], { name: 'd', durable: { checkpoint: 'message' } });
    await expect(refused).rejects.toBeInstanceOf(NotAllowed);
  });
});

describe('isolate nodes: what an orderly stop collects crosses the boundary', () => {
  it("'shutdown' on an isolate node: saved by a graceful stop, restored after", async () => {
    const dir = storeDir();
    const iso = counterNode({ checkpoint: 'shutdown' }, { kind: 'isolate', capabilities: { durable: ['c'] } });
    system = await System.start({ nodes: iso, releases: { store: dir } });
    await incs(system, 4);
    await system.stop({ graceful: true });
    system = await System.start({ nodes: iso, releases: { store: dir } });
    expect(await system.call(C, 'get')).toBe(4);
  });
});

describe('a store that fails or hangs: reported, and nothing waits for good', () => {
  class FlakyStore extends MemoryStateStore {
    mode: 'ok' | 'fail' | 'hang' = 'ok';
    private readonly hung: (() => void)[] = [];
    override put(state: StoredState): Promise<void> {
      if (this.mode === 'fail') return Promise.reject(new Error('disk full'));
      if (this.mode === 'hang') return new Promise((resolve) => this.hung.push(resolve));
      return super.put(state);
    }
    release(): void {
      for (const go of this.hung.splice(0)) go();
    }
  }

  it("'message': a failed write ends the server unanswered with checkpoint_failed; a hung one within timeoutMs", async () => {
    const states = new FlakyStore();
    const dir = storeDir();
    system = await System.start({
      nodes: [{ name: 'a', modules: { counter: durableV1 } }],
      releases: { store: dir, states },
    });
    const events = record(system);
    const node = system.node('a');
    const failing = await node.startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message' } });
    await incs(system, 2);
    states.mode = 'fail';
    await expect(system.call(C, 'inc', 3_000)).rejects.toThrow();
    await until('the write failure reported', () => events.some((e) => e.type === 'checkpoint_failed' && /disk full/.test(e.reason)));
    const exit = events.find((e) => e.type === 'process_exit' && e.pid === failing);
    expect(exit).toMatchObject({ reason: { checkpoint_failed: { message: expect.stringMatching(/disk full/) } } });
    states.mode = 'hang';
    const hanging = await node.startServer('counter', [0], { name: 'c', durable: { checkpoint: 'message', timeoutMs: 300 } });
    expect(await system.call(C, 'get')).toBe(2); // restored from the last durable state
    await expect(system.call(C, 'inc', 3_000)).rejects.toThrow();
    await until('the late checkpoint ends it', () => events.some((e) => e.type === 'process_exit' && e.pid === hanging));
    expect(events.find((e) => e.type === 'process_exit' && e.pid === hanging)).toMatchObject({ reason: { checkpoint_failed: { name: 'Timeout' } } });
    states.release();
  });
});

describe('bad declarations and oversize states', () => {
  it('unknown fields, bad policies, a missing key, a key in use, the wrong kind: typed errors, nothing started', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: durableV1 } }] });
    const node = system.node('a');
    const start = (options: object) => node.startServer('counter', [0], options);
    await expect(start({ name: 'x', durable: { checkpoint: 'message', every: 1 } })).rejects.toThrow(/durable\.every: unknown field/);
    await expect(start({ name: 'x', durable: { checkpoint: 'always' } })).rejects.toBeInstanceOf(BadArgument);
    await expect(start({ name: 'x', durable: { checkpoint: { everyMs: 0 } } })).rejects.toThrow(/everyMs must be a number of ms > 0/);
    await expect(start({ name: 'x', durable: { checkpoint: { everyMs: 5, often: true } } })).rejects.toThrow(/durable\.checkpoint\.often: unknown field/);
    await expect(start({ durable: { checkpoint: 'message' } })).rejects.toThrow(/needs a stable key/);
    await expect(start({ name: 'x', durable: { checkpoint: 'message', key: 'no spaces' } })).rejects.toBeInstanceOf(BadArgument);
    await expect(node.spawn('counter', 'init', [0], { durable: { checkpoint: 'message' } })).rejects.toBeInstanceOf(BadArgument);
    await expect(node.startStatem('counter', [0], { name: 's', durable: { checkpoint: 'message' } })).rejects.toThrow(/for servers/);
    await start({ name: 'x', durable: { key: 'k', checkpoint: 'message' } });
    await expect(start({ name: 'y', durable: { key: 'k', checkpoint: 'message' } })).rejects.toBeInstanceOf(Refused);
    expect((await node.processes()).map((p) => p.name).filter(Boolean)).toEqual(['x']);
  });

  it('limits.durableStates bounds the keys a node keeps (in the kernel, and again on the host)', async () => {
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: durableV1 }, limits: { durableStates: 2 } }] });
    const node = system.node('a');
    await node.startServer('counter', [0], { name: 'k1', durable: { checkpoint: 'message' } });
    await node.startServer('counter', [0], { name: 'k2', durable: { checkpoint: 'message' } });
    await expect(node.startServer('counter', [0], { name: 'k3', durable: { checkpoint: 'message' } })).rejects.toThrow(/durableStates limit/);
  });

  it("a state over limits.durableBytes is refused: under 'message' the server ends unanswered, the store keeps the last good state", async () => {
    system = await System.start({ nodes: counterNode({ checkpoint: 'message' }, { limits: { durableBytes: 2_000 } }) });
    const events = record(system);
    await incs(system, 2);
    await expect(system.call(C, { grow: 10_000 }, 2_000)).rejects.toThrow();
    const failed = events.find((e) => e.type === 'checkpoint_failed');
    expect(failed).toMatchObject({ node: 'a', key: 'c' });
    expect((failed as { reason: string }).reason).toMatch(/over this node's durableBytes limit of 2000 bytes/);
    expect((await system.durable.list('a'))[0]).toMatchObject({ state: { count: 2 } });
  });
});

async function untilAsync(what: string, done: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
