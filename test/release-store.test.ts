/**
 * The release store: replay of every kind of step to the right per-node state, the directory
 * store's round trip, content addressing, trial/permanent releases and revert, bad input refused
 * before anything is written, and damage on disk (a journal cut at every byte of its last record, a
 * flipped byte in the middle, a missing blob, a newer format, locks). In-process crashes at every
 * write point are here; real SIGKILLs are in release-store-crash.test.ts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamReleaseStore } from '../src/cluster/release-store.js';
import { NatsServer } from './helpers/nats-server.js';
import { BadStep, SourceMissing, StoreCorrupt, StoreFormatTooNew, StoreLocked } from '../src/host/release-store/errors.js';
import { DirectoryReleaseStore } from '../src/host/release-store/directory.js';
import { encodeFrame, scan } from '../src/host/release-store/journal.js';
import { measureStore } from '../src/host/release-store/measure.js';
import { currentModules, replay } from '../src/host/release-store/replay.js';
import { WRITE_POINTS, type JournalRecord, type ReleaseEntry, type ReleaseStep, type ReleaseStore, type WritePoint } from '../src/host/release-store/store.js';
import { BadArgument, Refused } from '../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'subnode-release-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `s${++dirs}`);
const H = (n: number): string => createHash('sha256').update(`source ${n}`).digest('hex');
const release = (seq: number, steps: ReleaseStep[], plan = false): JournalRecord => ({ seq, at: 0, kind: 'release', plan, steps });
const KILL_STACK = { retention: { kind: 'stack' as const, depth: 2 }, purge: 'kill' as const };

describe('replay', () => {
  it('rebuilds each node: versions with hashes and vsns, old ones kept, policies, creation', () => {
    const state = replay([
      release(1, [{ kind: 'load', node: 'a', module: 'm', version: 1, hash: H(1), vsn: 1 }]),
      release(2, [{ kind: 'load', node: 'a', module: 'n', version: 1, hash: H(9) }]),
      release(
        3,
        [
          { kind: 'load', node: 'a', module: 'm', version: 2, hash: H(2), vsn: { major: 2 } },
          { kind: 'load', node: 'b', module: 'm', version: 1, hash: H(1), vsn: 1 },
          { kind: 'policy', node: 'b', policy: KILL_STACK },
          { kind: 'policy', node: 'a', module: 'm', policy: { retention: { kind: 'forever' }, purge: 'soft' } },
        ],
        true,
      ),
      release(4, [{ kind: 'load', node: 'a', module: 'm', version: 3, hash: H(3), purge: 'kill', purged: [1] }]),
      release(5, [{ kind: 'delete', node: 'a', module: 'n' }]),
      release(6, [{ kind: 'restart', node: 'b', creation: 1 }]),
      release(7, [{ kind: 'load', node: 'c', module: 'x', version: 1, hash: H(4) }]),
      release(8, [{ kind: 'forget', node: 'c' }]),
    ]);
    expect(state).toEqual({
      release: 8,
      nodes: {
        a: {
          modules: {
            m: {
              nextVersion: 4,
              versions: [
                { version: 2, hash: H(2), vsn: { major: 2 }, state: 'old' },
                { version: 3, hash: H(3), state: 'current' },
              ],
              // The vsn of each code the module has had, purged version 1's included.
              vsns: { [H(1)]: 1, [H(2)]: { major: 2 } },
            },
            n: { nextVersion: 2, versions: [{ version: 1, hash: H(9), state: 'old' }] },
          },
          loadOrder: ['m'],
          modulePolicies: { m: { retention: { kind: 'forever' }, purge: 'soft' } },
          creation: 0,
        },
        b: {
          modules: { m: { nextVersion: 2, versions: [{ version: 1, hash: H(1), vsn: 1, state: 'current' }], vsns: { [H(1)]: 1 } } },
          loadOrder: ['m'],
          policy: KILL_STACK,
          modulePolicies: {},
          creation: 1,
        },
      },
    });
    expect(currentModules(state.nodes.a!)).toEqual([{ module: 'm', version: 3, hash: H(3) }]);
  });

  it('purges remove exactly the versions listed; the version counter survives them', () => {
    const state = replay([
      release(1, [{ kind: 'load', node: 'a', module: 'm', version: 1, hash: H(1) }]),
      release(2, [{ kind: 'load', node: 'a', module: 'm', version: 2, hash: H(2) }]),
      release(3, [{ kind: 'purge', node: 'a', module: 'm', mode: { drain: 100, then: 'kill' }, versions: [1] }]),
      release(
        4,
        [
          { kind: 'delete', node: 'a', module: 'm' },
          { kind: 'purge', node: 'a', module: 'm', mode: 'collect', versions: [2] },
        ],
        true,
      ),
      release(5, [{ kind: 'load', node: 'a', module: 'm', version: 7, hash: H(7) }]),
    ]);
    expect(state.nodes.a!.modules.m).toEqual({ nextVersion: 8, versions: [{ version: 7, hash: H(7), state: 'current' }] });
  });

  it('loads in restart order: a reloaded module moves to the end', () => {
    const state = replay([
      release(1, [{ kind: 'load', node: 'a', module: 'x', version: 1, hash: H(1) }]),
      release(2, [{ kind: 'load', node: 'a', module: '42', version: 1, hash: H(2) }]),
      release(3, [{ kind: 'load', node: 'a', module: 'x', version: 2, hash: H(3) }]),
    ]);
    expect(state.nodes.a!.loadOrder).toEqual(['42', 'x']);
  });

  const base = release(1, [{ kind: 'load', node: 'a', module: 'm', version: 3, hash: H(1) }]);
  it.each<[string, ReleaseStep]>([
    ['a version that does not go up', { kind: 'load', node: 'a', module: 'm', version: 3, hash: H(2) }],
    ['purging the current version', { kind: 'purge', node: 'a', module: 'm', mode: 'kill', versions: [3] }],
    ['purging a version that is not there', { kind: 'purge', node: 'a', module: 'm', mode: 'kill', versions: [1] }],
    ['purging an unknown module', { kind: 'purge', node: 'a', module: 'zz', mode: 'soft', versions: [1] }],
    ['deleting a module with no current version', { kind: 'delete', node: 'a', module: 'zz' }],
    ['forgetting an unknown node', { kind: 'forget', node: 'nobody' }],
    ['a creation that goes down', { kind: 'restart', node: 'a', creation: -1 }],
    ['a bad hash', { kind: 'load', node: 'a', module: 'm', version: 4, hash: 'abc' }],
    ['a version 0', { kind: 'load', node: 'a', module: 'm', version: 0, hash: H(1) }],
    ['a vsn that is not JSON', { kind: 'load', node: 'a', module: 'm', version: 4, hash: H(1), vsn: new Date() as never }],
    ['a bad policy', { kind: 'policy', node: 'a', policy: { retention: { kind: 'stack', depth: 0 }, purge: 'kill' } }],
    ['a bad purge mode', { kind: 'purge', node: 'a', module: 'm', mode: 'gently' as never, versions: [] }],
    ['no node', { kind: 'load', node: '', module: 'm', version: 4, hash: H(1) } as ReleaseStep],
    ['an unknown kind', { kind: 'upgrade', node: 'a' } as never],
  ])('refuses %s with BadStep', (_what, step) => {
    expect(() => replay([base, release(2, [step])])).toThrow(BadStep);
  });

  it('a plan applies all of its steps or none', () => {
    const records = [
      base,
      release(
        2,
        [
          { kind: 'load', node: 'a', module: 'm', version: 4, hash: H(4) },
          { kind: 'purge', node: 'a', module: 'm', mode: 'kill', versions: [99] },
        ],
        true,
      ),
    ];
    expect(() => replay(records)).toThrow(/no version 99/);
  });
});

/** The implementations the interface tests run on: the directory, and JetStream on a private nats-server. */
interface Kind {
  name: string;
  fresh(): string;
  make(id: string): ReleaseStore;
  /** The stored sources' names. */
  sources(id: string): Promise<string[]>;
  /** How much journal there is (bytes, or records): unchanged by a refused append. */
  journalSize(id: string): Promise<number>;
}

let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;
beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
}, 30_000);
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
}, 30_000);
let jsStores = 0;

const KINDS: Kind[] = [
  {
    name: 'directory',
    fresh: freshDir,
    make: (dir) => new DirectoryReleaseStore(dir),
    sources: async (dir) => readdirSync(join(dir, 'objects')),
    journalSize: async (dir) => statSync(join(dir, 'journal')).size,
  },
  {
    name: 'JetStream',
    fresh: () => `t${process.pid}_${++jsStores}`,
    make: (name) => new JetStreamReleaseStore({ servers: nats!.url, name, lockTtlMs: 1_000 }),
    sources: async (name) => {
      const store = await new Objm(nc!).open(`subnode_rel_${name}_src`);
      const names: string[] = [];
      for (const info of await store.list()) names.push(info.name);
      return names;
    },
    journalSize: async (name) => {
      const kv = await new Kvm(nc!).open(`subnode_rel_${name}`);
      let n = 0;
      for await (const _ of await kv.keys('r.>')) n++;
      return n;
    },
  },
];

/** A store with: load a/m@1, plan (a/m@2, b/m@1, policy b), purge a/m@1, permanent, load a/m@3. */
async function sampleStore(dir: string, kind: Kind = KINDS[0]!): Promise<{ store: ReleaseStore; hashes: string[] }> {
  const store = kind.make(dir);
  await store.open();
  const hashes = [await store.putSource('exports.vsn = 1;'), await store.putSource('exports.vsn = 2;'), await store.putSource('exports.vsn = 3;')];
  await store.append({ kind: 'load', node: 'a', module: 'm', version: 1, hash: hashes[0]!, vsn: 1 });
  await store.append({
    kind: 'plan',
    label: 'two',
    steps: [
      { kind: 'load', node: 'a', module: 'm', version: 2, hash: hashes[1]!, vsn: 2 },
      { kind: 'load', node: 'b', module: 'm', version: 1, hash: hashes[0]!, vsn: 1 },
      { kind: 'policy', node: 'b', policy: KILL_STACK },
    ],
  });
  await store.append({ kind: 'purge', node: 'a', module: 'm', mode: 'soft', versions: [1] });
  await store.markPermanent(3);
  await store.append({ kind: 'load', node: 'a', module: 'm', version: 3, hash: hashes[2]!, vsn: 'three' });
  return { store, hashes };
}

describe.each(KINDS)('$name store', (kind) => {
  it('reopens on the same records and state; sources read back', async () => {
    const dir = kind.fresh();
    const { store, hashes } = await sampleStore(dir, kind);
    const before = { history: await store.history(), state: await store.current() };
    await store.close();
    const again = kind.make(dir);
    const opened = await again.open();
    expect(opened.lost).toEqual([]);
    expect(opened.records).toEqual(before.history);
    expect(opened.state).toEqual(before.state);
    expect(opened.state).toEqual(replay(opened.records));
    expect(opened.state.nodes.a!.modules.m!.versions).toEqual([
      { version: 2, hash: hashes[1], vsn: 2, state: 'old' },
      { version: 3, hash: hashes[2], vsn: 'three', state: 'current' },
    ]);
    expect(opened.state.nodes.b!.policy).toEqual(KILL_STACK);
    expect(await again.getSource(hashes[2]!)).toBe('exports.vsn = 3;');
    expect(opened.permanent).toBe(3);
    expect(opened.trial).toBe(true);
    await again.close();
  });

  it('stores a source once, under its sha256', async () => {
    const dir = kind.fresh();
    const store = kind.make(dir);
    await store.open();
    const js = 'exports.x = "é";';
    const [h1, h2] = [await store.putSource(js), await store.putSource(js)];
    expect(h1).toBe(h2);
    expect(h1).toBe(createHash('sha256').update(js, 'utf8').digest('hex'));
    expect(await kind.sources(dir)).toEqual([h1]);
    await store.close();
  });

  it('releases are trials until made permanent; lastPermanent and revert fall back', async () => {
    const dir = kind.fresh();
    const { store } = await sampleStore(dir, kind);
    expect((await store.releases()).map((r) => [r.release, r.status, r.plan])).toEqual([
      [1, 'permanent', false],
      [2, 'permanent', true],
      [3, 'permanent', false],
      [5, 'trial', false],
    ]);
    const fallback = (await store.lastPermanent())!;
    expect(fallback.release).toBe(3);
    expect(fallback.state.nodes.a!.modules.m!.versions.map((v) => [v.version, v.state])).toEqual([[2, 'current']]);
    await expect(store.markPermanent(42)).rejects.toThrow(BadStep);
    const revertSeq = await store.revert(3, 'trial release crashed');
    expect(await store.current()).toEqual({ ...fallback.state, release: 3 });
    await expect(store.markPermanent(5)).rejects.toThrow(/reverted/);
    await store.close();

    const again = kind.make(dir);
    const opened = await again.open();
    expect(opened.trial).toBe(false);
    expect(opened.records[opened.records.length - 1]).toMatchObject({ seq: revertSeq, kind: 'revert', to: 3 });
    expect((await again.releases()).find((r) => r.release === 5)!.status).toBe('reverted');
    // Version numbers still go up after a revert: the kernel's counter is rebuilt from the state.
    const h = await again.putSource('exports.vsn = 4;');
    const seq = await again.append({ kind: 'load', node: 'a', module: 'm', version: 3, hash: h });
    await again.markPermanent(seq);
    expect((await again.lastPermanent())!.state).toEqual(await again.current());
    await again.close();
  });

  it('refuses bad input before writing anything', async () => {
    const dir = kind.fresh();
    const { store, hashes } = await sampleStore(dir, kind);
    const size = await kind.journalSize(dir);
    const bad: ReleaseEntry[] = [
      { kind: 'load', node: 'a', module: 'm', version: 2, hash: hashes[0]! },
      { kind: 'plan', steps: [] },
      {
        kind: 'plan',
        steps: [
          { kind: 'load', node: 'c', module: 'm', version: 1, hash: hashes[0]! },
          { kind: 'delete', node: 'c', module: 'nope' },
        ],
      },
      null as never,
    ];
    for (const entry of bad) await expect(store.append(entry)).rejects.toThrow(BadArgument);
    await expect(store.append({ kind: 'load', node: 'a', module: 'm', version: 9, hash: H(1) })).rejects.toThrow(SourceMissing);
    await expect(store.revert(77)).rejects.toThrow(BadStep);
    await expect(store.getSource(H(1))).rejects.toThrow(SourceMissing);
    await expect(store.getSource('../format')).rejects.toThrow(BadStep);
    expect(await kind.journalSize(dir)).toBe(size);
    expect((await store.history()).length).toBe(5);
    await store.close();
    await expect(store.history()).rejects.toThrow(Refused);
  });

  it('serializes concurrent appends', async () => {
    const store = kind.make(kind.fresh());
    await store.open();
    const hash = await store.putSource('x');
    const seqs = await Promise.all(Array.from({ length: 10 }, (_, i) => store.append({ kind: 'load', node: `n${i}`, module: 'm', version: 1, hash })));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await store.close();
  });
});

describe('directory store', () => {
  it('measureStore reports an append latency and an open time', async () => {
    const m = await measureStore(freshDir(), 5);
    expect(m.appendMsMedian).toBeGreaterThan(0);
    expect(m.openMsWith100Releases).toBeGreaterThan(0);
  });
});

describe('JetStream store: lock and damage', () => {
  const js = KINDS[1]!;

  it('one writer at a time: a live one keeps the lock; one killed with SIGKILL loses it after the TTL', async () => {
    const name = js.fresh();
    const first = js.make(name);
    await first.open();
    await expect(js.make(name).open()).rejects.toMatchObject({ constructor: StoreLocked, pid: process.pid });
    await expect(first.open()).rejects.toMatchObject({ reason: 'already_open' });
    await first.close();
    const second = js.make(name);
    await second.open();
    await second.close();
    // A writer process killed while it holds the lock (it never closes).
    const script = `
      const { JetStreamReleaseStore } = await import(${JSON.stringify(resolve('dist/src/cluster/release-store.js'))});
      const store = new JetStreamReleaseStore({ servers: ${JSON.stringify(nats!.url)}, name: ${JSON.stringify(name)}, lockTtlMs: 1000 });
      await store.open();
      await store.append({ kind: 'load', node: 'a', module: 'm', version: 1, hash: await store.putSource('exports.vsn = 1;') });
      process.stdout.write('open\\n');
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    expect(await new Promise((done) => child.on('exit', (_code, signal) => done(signal)))).toBe('SIGKILL');
    expect(out).toBe('open\n');
    const started = Date.now();
    const third = js.make(name);
    const opened = await third.open();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(opened.records.map((r) => r.seq)).toEqual([1]);
    expect(opened.lost).toEqual([]);
    await third.close();
  }, 30_000);

  it('a record gone from the middle, or a missing source: opens before it, reports it and what follows, keeps them under lost.*', async () => {
    const name = js.fresh();
    const { store, hashes } = await sampleStore(name, js);
    await store.close();
    const kv = await new Kvm(nc!).open(`subnode_rel_${name}`);
    await kv.purge('r.000000000003');
    const again = js.make(name);
    const opened = await again.open();
    expect(opened.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(opened.lost.map((l) => [l.seq, l.reason])).toEqual([
      [3, 'malformed'],
      [5, 'after_damage'],
    ]);
    let kept = 0;
    for await (const _ of await kv.keys('lost.>')) kept++;
    expect(kept).toBe(2);
    // The journal goes on from there.
    expect(await again.append({ kind: 'load', node: 'a', module: 'm', version: 3, hash: hashes[2]! })).toBe(3);
    await again.close();
    // A source blob removed: the record needing it is lost on open.
    const sources = await new Objm(nc!).open(`subnode_rel_${name}_src`);
    await sources.delete(hashes[2]!);
    const third = js.make(name);
    const reopened = await third.open();
    expect(reopened.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(reopened.lost).toMatchObject([{ seq: 3, reason: 'missing_source', missing: [hashes[2]] }]);
    await expect(third.getSource(hashes[2]!)).rejects.toThrow(SourceMissing);
    await third.close();
  });
});

describe('damage on disk', () => {
  it('a journal cut at every byte of its last record opens on the records before it', async () => {
    const dir = freshDir();
    const { store } = await sampleStore(dir);
    const history = await store.history();
    await store.close();
    const bytes = readFileSync(join(dir, 'journal'));
    const frames = scan(bytes).frames;
    const last = frames[frames.length - 1]!;
    expect(last.offset + last.bytes).toBe(bytes.length);
    const copy = join(root, 'cut');
    cpSync(dir, copy, { recursive: true });
    for (let cut = last.offset; cut < bytes.length; cut++) {
      rmSync(join(copy, 'lost'), { recursive: true, force: true });
      writeFileSync(join(copy, 'journal'), bytes.subarray(0, cut));
      const cutStore = new DirectoryReleaseStore(copy, { fsync: false });
      const opened = await cutStore.open();
      expect(opened.records).toEqual(history.slice(0, -1));
      expect(opened.state).toEqual(replay(history.slice(0, -1)));
      if (cut === last.offset) expect(opened.lost).toEqual([]);
      else {
        expect(opened.lost).toEqual([expect.objectContaining({ seq: last.record.seq, reason: 'torn', offset: last.offset, bytes: cut - last.offset })]);
        expect(readFileSync(opened.quarantined!)).toEqual(bytes.subarray(last.offset, cut));
      }
      expect(statSync(join(copy, 'journal')).size).toBe(last.offset);
      await cutStore.close();
    }
  });

  it('a damaged record in the middle: opens before it, reports it and every record after it, keeps the bytes', async () => {
    const dir = freshDir();
    const { store } = await sampleStore(dir);
    const history = await store.history();
    await store.close();
    const path = join(dir, 'journal');
    const bytes = readFileSync(path);
    const second = scan(bytes).frames[1]!;
    const damaged = Buffer.from(bytes);
    damaged[second.offset + 20] ^= 0x5a;
    writeFileSync(path, damaged);
    const reopened = new DirectoryReleaseStore(dir);
    const opened = await reopened.open();
    expect(opened.records).toEqual(history.slice(0, 1));
    expect(opened.lost.map((l) => [l.seq, l.reason])).toEqual([
      [2, 'checksum'],
      [3, 'after_damage'],
      [4, 'after_damage'],
      [5, 'after_damage'],
    ]);
    // What was lost can still be read: exactly which steps are gone.
    expect(opened.lost[1]!.record).toEqual(history[2]);
    expect(readFileSync(opened.quarantined!)).toEqual(damaged.subarray(second.offset));
    const hash = await reopened.putSource('exports.vsn = 2;');
    expect(await reopened.append({ kind: 'load', node: 'a', module: 'm', version: 2, hash })).toBe(2);
    await reopened.close();
    const again = new DirectoryReleaseStore(dir);
    expect((await again.open()).lost).toEqual([]);
    await again.close();
  });

  it('a missing source blob: opens on the last release before the first record that needs it', async () => {
    const dir = freshDir();
    const { store, hashes } = await sampleStore(dir);
    const history = await store.history();
    await store.close();
    unlinkSync(join(dir, 'objects', hashes[1]!));
    const reopened = new DirectoryReleaseStore(dir);
    const opened = await reopened.open();
    expect(opened.records).toEqual(history.slice(0, 1));
    expect(opened.lost[0]).toMatchObject({ seq: 2, reason: 'missing_source', missing: [hashes[1]], record: history[1] });
    expect(opened.lost.slice(1).map((l) => l.seq)).toEqual([3, 4, 5]);
    expect(opened.state).toEqual(replay(history.slice(0, 1)));
    await reopened.close();
  });

  it('a blob whose bytes changed is refused when read', async () => {
    const dir = freshDir();
    const { store, hashes } = await sampleStore(dir);
    writeFileSync(join(dir, 'objects', hashes[0]!), 'exports.evil = 1;');
    await expect(store.getSource(hashes[0]!)).rejects.toThrow(StoreCorrupt);
    await store.close();
  });

  it('a store written by a newer format is refused, and the lock is let go', async () => {
    const dir = freshDir();
    const { store } = await sampleStore(dir);
    await store.close();
    writeFileSync(join(dir, 'format'), JSON.stringify({ store: 'subnode-release-store', format: 2 }));
    const newer = new DirectoryReleaseStore(dir);
    const error = await newer.open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreFormatTooNew);
    expect(error).toMatchObject({ found: 2, supported: 1, code: 'refused', reason: 'format_too_new' });
    expect(existsSync(join(dir, 'lock'))).toBe(false);
    writeFileSync(join(dir, 'format'), 'not json');
    await expect(new DirectoryReleaseStore(dir).open()).rejects.toThrow(StoreCorrupt);
    unlinkSync(join(dir, 'format'));
    await expect(new DirectoryReleaseStore(dir).open()).rejects.toThrow(/no format file/);
  });
});

describe('lock', () => {
  it('refuses a second writer while a live process holds the lock', async () => {
    const dir = freshDir();
    const first = new DirectoryReleaseStore(dir);
    await first.open();
    await expect(new DirectoryReleaseStore(dir).open()).rejects.toMatchObject({ constructor: StoreLocked, pid: process.pid });
    await expect(first.open()).rejects.toMatchObject({ reason: 'already_open' });
    await first.close();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`); // another live process
    await expect(new DirectoryReleaseStore(dir).open()).rejects.toThrow(StoreLocked);
  });

  it('takes over a stale lock (dead pid, or no pid at all)', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const dead = child.pid!;
    await new Promise((done) => child.on('exit', done));
    for (const content of [`${dead}\n`, '']) {
      const dir = freshDir();
      mkdirSync(dir);
      writeFileSync(join(dir, 'lock'), content);
      const store = new DirectoryReleaseStore(dir);
      await store.open();
      expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
      await store.close();
    }
  });
});

describe('in-process crash at every write point', () => {
  const run = async (dir: string, faults?: { at(point: WritePoint): void }): Promise<number> => {
    const store = new DirectoryReleaseStore(dir, faults ? { faults } : {});
    let acked = -1;
    try {
      await store.open();
      acked = 0;
      const h1 = await store.putSource('exports.vsn = 1;');
      acked = await store.append({ kind: 'load', node: 'a', module: 'm', version: 1, hash: h1 });
      const h2 = await store.putSource('exports.vsn = 2;');
      acked = await store.append({
        kind: 'plan',
        steps: [
          { kind: 'load', node: 'a', module: 'm', version: 2, hash: h2 },
          { kind: 'load', node: 'b', module: 'm', version: 1, hash: h1 },
        ],
      });
      acked = await store.markPermanent(acked);
      await store.close();
    } catch (error) {
      if (!(error instanceof Error) || error.message !== 'crash') throw error;
      await store.close(); // the crashed store leaves its lock, as a dead process would
    }
    return acked;
  };

  it.each(WRITE_POINTS)('at %s', async (point) => {
    const reference = freshDir();
    await run(reference);
    const expected = await new DirectoryReleaseStore(reference).open();
    for (let occurrence = 1; ; occurrence++) {
      const dir = freshDir();
      let seen = 0;
      const acked = await run(dir, {
        at(p) {
          if (p === point && ++seen === occurrence) throw new Error('crash');
        },
      });
      if (seen < occurrence) break; // no such occurrence: the workload finished
      expect(existsSync(join(dir, 'lock'))).toBe(true);
      unlinkSync(join(dir, 'lock')); // the "dead" writer's lock holds this live pid: stale in a real crash
      const store = new DirectoryReleaseStore(dir);
      const opened = await store.open();
      const kept = opened.records.length;
      expect(kept).toBeGreaterThanOrEqual(Math.max(acked, 0));
      expect(kept).toBeLessThanOrEqual(Math.max(acked, 0) + 1);
      expect(opened.state).toEqual(replay(expected.records.slice(0, kept)));
      expect(opened.lost.length).toBe(point === 'journal:half-written' ? 1 : 0);
      expect(readdirSync(join(dir, 'objects')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
      await store.close();
    }
  });
});

describe.each(KINDS)('$name store: a record read back that is not a good one', (kind) => {
  /** A store whose journal holds `payload` as record 1 (written past the store, as damage would). */
  const planted = async (payload: unknown): Promise<string> => {
    const id = kind.fresh();
    const store = kind.make(id);
    await store.open();
    await store.close();
    if (kind.name === 'directory') writeFileSync(join(id, 'journal'), encodeFrame(payload as JournalRecord));
    else await (await new Kvm(nc!).open(`subnode_rel_${id}`)).create('r.000000000001', JSON.stringify(payload));
    return id;
  };

  it.each<[string, string, unknown]>([
    ['steps that are not steps', 'inconsistent', { seq: 1, at: 0, kind: 'release', plan: false, steps: [null] }],
    ['a step that does not apply', 'inconsistent', { seq: 1, at: 0, kind: 'release', plan: false, steps: [{ kind: 'forget', node: 'nobody' }] }],
    ['no time', 'malformed', { seq: 1, kind: 'release', plan: false, steps: [{ kind: 'restart', node: 'a', creation: 0 }] }],
    ['an unknown kind', 'malformed', { seq: 1, at: 0, kind: 'upgrade' }],
  ])('%s: lost as %s, and the store opens empty', async (_what, reason, payload) => {
    const store = kind.make(await planted(payload));
    const opened = await store.open();
    expect(opened.records).toEqual([]);
    expect(opened.lost.map((l) => [l.seq, l.reason])).toEqual([[1, reason]]);
    expect(await store.current()).toEqual({ release: 0, nodes: {} });
    await store.close();
  });
});

describe('JetStream store: format entry', () => {
  it('one written by a newer format is refused; one that is not a format record is corrupt', async () => {
    const js = KINDS[1]!;
    const name = js.fresh();
    const store = js.make(name);
    await store.open();
    await store.close();
    const kv = await new Kvm(nc!).open(`subnode_rel_${name}`);
    await kv.put('format', JSON.stringify({ store: 'subnode-release-store', format: 2 }));
    await expect(js.make(name).open()).rejects.toMatchObject({ constructor: StoreFormatTooNew, found: 2, supported: 1 });
    for (const bad of ['not json', JSON.stringify({ store: 'subnode-release-store', format: 0 }), JSON.stringify({ store: 'other', format: 1 })]) {
      await kv.put('format', bad);
      await expect(js.make(name).open()).rejects.toThrow(StoreCorrupt);
    }
  });
});
