/**
 * Releases that survive restarts: a hotfix loaded into a running system is still there after a
 * stop and a start on the same store — and after the process is killed with SIGKILL right after
 * the load answered; a trial release falls back to the permanent one at the next start; a
 * rollback goes back to an earlier release, converting state with codeChange { down }.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamReleaseStore } from '../src/cluster/release-store.js';
import { NatsServer } from './helpers/nats-server.js';
import { System, type NodeSpec, type SystemEvent } from '../src/index.js';
import { counterV1, counterV1Down, counterV2 } from './fixtures/counter.js';

let system: System | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await system?.stop();
  system = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function storeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'subnode-releases-'));
  dirs.push(dir);
  return dir;
}

const spec = (): NodeSpec[] => [
  { name: 'a', modules: { counter: counterV1 }, start: [{ module: 'counter', fn: 'init', args: [0] }] },
  { name: 'b', modules: { counter: counterV1 } },
];

async function shape(s: System, node: string) {
  return (await s.node(node).modules()).map((m) => [m.name, m.versions.map((v) => [v.version, v.vsn, v.state])]);
}

/** Where the releases are kept: a directory, or JetStream on a private nats-server; `code` builds it in a child process. */
const STORES = [
  { name: 'directory', store: () => storeDir(), code: (dir: string) => JSON.stringify(dir) },
  {
    name: 'JetStream',
    store: () => `r${process.pid}_${++jsStores}`,
    code: (name: string) =>
      `new (await import(${JSON.stringify(resolve('dist/src/cluster/release-store.js'))})).JetStreamReleaseStore({ servers: ${JSON.stringify(nats!.url)}, name: ${JSON.stringify(name)}, lockTtlMs: 1000 })`,
  },
];
let jsStores = 0;
let nats: NatsServer | undefined;
beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await nats?.stop();
}, 30_000);

/** A store value for System.start: the directory itself, or a new JetStream store object on it. */
const storeFor = (kind: (typeof STORES)[number], id: string): string | JetStreamReleaseStore =>
  kind.name === 'directory' ? id : new JetStreamReleaseStore({ servers: nats!.url, name: id, lockTtlMs: 1000 });

describe.each(STORES)('a hotfix survives a restart ($name store)', (kind) => {
  it('stop and start on the same store: the nodes come back with the hotfix, under the same version numbers', async () => {
    const dir = kind.store();
    system = await System.start({ nodes: spec(), releases: { store: storeFor(kind, dir) } });
    await system.node('a').load('counter', counterV2);
    const before = await shape(system, 'a');
    expect(before).toEqual([
      [
        'counter',
        [
          [1, 1, 'old'],
          [2, 2, 'current'],
        ],
      ],
    ]);
    await system.stop();
    // The same config again (it still says v1): the store wins.
    system = await System.start({ nodes: spec(), releases: { store: storeFor(kind, dir) } });
    expect(await shape(system, 'a')).toEqual(before);
    expect(await shape(system, 'b')).toEqual([['counter', [[1, 1, 'current']]]]);
    const pid = await system.node('a').startServer('counter', [5]);
    expect(await system.call(pid, 'vsn')).toBe(2);
    const releases = await system.releases.list();
    expect(releases.map((r) => r.status)).toEqual(releases.map(() => 'permanent'));
  });

  it('killed with SIGKILL right after the load answered: the next start has the hotfix', async () => {
    const dir = kind.store();
    const script = `
      const { System } = await import(${JSON.stringify(resolve('dist/src/index.js'))});
      const system = await System.start({ nodes: [{ name: 'a', modules: { counter: ${JSON.stringify(counterV1)} } }], releases: { store: ${kind.code(dir)} } });
      await system.node('a').load('counter', ${JSON.stringify(counterV2)});
      process.stdout.write('loaded\\n');
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawn(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const signal = await new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, sig) => done(sig)));
    expect({ signal, err }).toMatchObject({ signal: 'SIGKILL' });
    expect(out).toBe('loaded\n');
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: counterV1 } }], releases: { store: storeFor(kind, dir) } });
    expect(await shape(system, 'a')).toEqual([
      [
        'counter',
        [
          [1, 1, 'old'],
          [2, 2, 'current'],
        ],
      ],
    ]);
  }, 30_000);
});

describe('trial releases', () => {
  it('a start while the latest release is a trial boots the last permanent one and says so; a permanent one stays', async () => {
    const dir = storeDir();
    system = await System.start({ nodes: spec(), releases: { store: dir, trial: true } });
    await system.releases.makePermanent();
    await system.node('a').load('counter', counterV2);
    expect((await system.releases.list()).map((r) => r.status).at(-1)).toBe('trial');
    await system.stop();

    const events: SystemEvent[] = [];
    const restarted = System.start({ nodes: spec(), releases: { store: dir, trial: true } });
    system = await restarted;
    system.on('*', (e) => events.push(e));
    expect(await shape(system, 'a')).toEqual([['counter', [[1, 1, 'current']]]]);
    await system.node('a').load('counter', counterV2);
    await system.releases.makePermanent();
    await system.stop();

    system = await System.start({ nodes: spec(), releases: { store: dir, trial: true } });
    expect((await shape(system, 'a'))[0]![1]).toContainEqual([2, 2, 'current']);
  });

  it('reports the fall-back as an event', async () => {
    const dir = storeDir();
    system = await System.start({ nodes: spec(), releases: { store: dir, trial: true } });
    await system.releases.makePermanent();
    const permanent = (await system.releases.list()).at(-1)!.release;
    await system.node('b').load('counter', counterV2);
    await system.stop();
    system = undefined;
    // The event comes while the store opens, before start resolves: listen through a first system-less open.
    const { Releases } = await import('../src/host/releases.js');
    const { Events } = await import('../src/host/events.js');
    const events = new Events();
    const seen: SystemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const keeper = await Releases.open({ store: dir, trial: true }, events);
    await keeper.close();
    expect(seen).toContainEqual(expect.objectContaining({ type: 'release_reverted', to: permanent }));
  });
});

describe('rollback', () => {
  it('goes back to an earlier release: the old version is loaded again and the state converted by codeChange { down }', async () => {
    const dir = storeDir();
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: counterV1Down } }], releases: { store: dir } });
    const first = (await system.releases.list()).at(-1)!.release;
    const pid = await system.node('a').startServer('counter', [7]);
    await system.upgrade({ modules: [{ module: 'counter', source: { code: counterV2 } }] });
    expect(await system.call(pid, 'inc')).toBe(8);
    expect(await system.call(pid, 'vsn')).toBe(2);
    const report = await system.rollback(first);
    expect(report).toMatchObject({ ok: true, nodes: [{ node: 'a', status: 'upgraded' }] });
    expect(await system.call(pid, 'vsn')).toBe(1);
    expect(await system.call(pid, 'get')).toBe(8);
    // The rollback is itself a release: a restart keeps it.
    await system.stop();
    system = await System.start({ nodes: [{ name: 'a', modules: { counter: counterV1Down } }], releases: { store: dir } });
    const again = await system.node('a').startServer('counter', [1]);
    expect(await system.call(again, 'vsn')).toBe(1);
  });
});
