/**
 * Durable server states in NATS JetStream (src/cluster/state-store.ts), on a nats-server of this
 * file's own: one entry per state, overwritten; a write never goes back in time, whichever store
 * object (process) makes it; a damaged entry is kept aside and reported while the rest loads; a
 * newer format is refused; a durable server resumes from it after its system restarts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BadArgument, JetStreamStateStore, System, type SystemEvent } from '../src/index.js';
import { StoreFormatTooNew } from '../src/host/release-store/index.js';
import { DurableStates } from '../src/host/durable-states.js';
import { Events } from '../src/host/events.js';
import { NatsServer } from './helpers/nats-server.js';
import { durableV1, storedState as state } from './fixtures/durable-counter.js';

let nats: NatsServer;
let nc: NatsConnection;
let storeNo = 0;
const stores: JetStreamStateStore[] = [];
const dirs: string[] = [];
let system: System | undefined;

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
}, 30_000);
afterEach(async () => {
  await system?.stop();
  system = undefined;
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
}, 30_000);

/** A fresh store name, and a function making store objects on it (each its own connection). */
function storeName(): { name: string; make(): JetStreamStateStore } {
  const name = `st${++storeNo}`;
  return {
    name,
    make: () => {
      const store = new JetStreamStateStore({ servers: nats.url, name });
      stores.push(store);
      return store;
    },
  };
}

const bucket = (name: string): Promise<KV> => new Kvm(jetstream(nc)).open(`subnode_states_${name}`);
const entries = async (kv: KV, filter = '>'): Promise<string[]> => {
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  return keys;
};

const counts = async (make: () => JetStreamStateStore): Promise<number[]> => (await make().open()).states.map((s) => (s.state as { count: number }).count);

describe('the JetStream state store', () => {
  it('overwrites one entry per key: 200 checkpoints leave one entry holding the last state (structured-clone types kept)', async () => {
    const { name, make } = storeName();
    const store = make();
    await store.open();
    for (let i = 1; i <= 200; i++) await store.put(state('c', i));
    await store.put(state('other key / with spaces', 7));
    expect(await entries(await bucket(name))).toHaveLength(2);
    const { states, lost, seq } = await make().open();
    expect(lost).toEqual([]);
    expect(seq).toBe(200);
    expect(states.find((s) => s.key === 'c')!.state).toEqual({ count: 200, at: new Date(0), tags: new Set(['x']) });
    expect(states.find((s) => s.key === 'other key / with spaces')).toMatchObject({ node: 'a', seq: 7 });
  });

  it('a late write cannot go back in time: a put at or below the stored (or forgotten) seq changes nothing, from any store object', async () => {
    const { make } = storeName();
    const one = make();
    const two = make();
    await one.open();
    await two.open();
    await Promise.all([one.put(state('c', 2)), one.put(state('c', 1))]);
    expect(await counts(make)).toEqual([2]);
    // Another writer (another process) knows the entry only as it was when it opened.
    await two.put(state('c', 1));
    expect(await counts(make)).toEqual([2]);
    await two.put(state('c', 5));
    await one.put(state('c', 3)); // one last wrote seq 2: its cached revision is stale, so it reads again
    expect(await counts(make)).toEqual([5]);
    await one.delete('a', 'c', 6);
    await two.put(state('c', 6)); // written before the forget, landing after it
    expect(await counts(make)).toEqual([]);
    await two.put(state('c', 7));
    expect(await counts(make)).toEqual([7]);
    expect((await make().open()).seq).toBe(7);
  });

  it('a damaged entry is kept aside under lost.* and reported (durable_lost); the rest loads; a newer format is refused', async () => {
    const { name, make } = storeName();
    const store = make();
    await store.open();
    await store.put(state('good', 1));
    await store.put(state('bad', 2));
    const kv = await bucket(name);
    const [badKey] = (await entries(kv, 's.>')).filter((k) => k.endsWith(Buffer.from('bad').toString('base64url')));
    const bytes = Buffer.from((await kv.get(badKey!))!.value);
    bytes[bytes.length - 40] ^= 0xff; // a flipped bit inside the record
    await kv.put(badKey!, bytes);

    const events = new Events();
    const seen: SystemEvent[] = [];
    events.on('durable_lost', (e) => seen.push(e));
    const keeper = await DurableStates.open(make(), events);
    expect((await keeper.list()).map((s) => s.key)).toEqual(['good']);
    expect(seen).toEqual([{ type: 'durable_lost', node: 'a', detail: expect.stringMatching(/could not be read \(checksum mismatch\); kept as lost\./) }]);
    expect(await entries(kv, 'lost.>')).toHaveLength(1);
    expect((await make().open()).lost).toEqual([]); // moved aside once

    const good = (await entries(kv, 's.>'))[0]!;
    const newer = Buffer.from((await kv.get(good))!.value);
    newer.writeUInt32BE(99, 4);
    await kv.put(good, newer);
    await expect(make().open()).rejects.toBeInstanceOf(StoreFormatTooNew);
  });

  it('checks its options: unknown fields, a bad name, no server', () => {
    expect(() => new JetStreamStateStore({ servers: nats.url, name: 'x', ttl: 5 } as never)).toThrow(BadArgument);
    expect(() => new JetStreamStateStore({ servers: nats.url, name: 'a.b' })).toThrow(/bad name/);
    expect(() => new JetStreamStateStore({ name: 'x' })).toThrow(/servers or a connection/);
  });

  it("a durable server resumes from the bucket after its system restarts ('message': every acknowledged call kept)", async () => {
    const { make } = storeName();
    const dir = mkdtempSync(join(tmpdir(), 'subnode-js-states-'));
    dirs.push(dir);
    const nodes = [
      { name: 'a', modules: { counter: durableV1 }, start: [{ server: 'counter', args: [0], name: 'c', durable: { checkpoint: 'message' as const } }] },
    ];
    const C = { name: 'c', node: 'a' };
    system = await System.start({ nodes, releases: { store: dir, states: make() } });
    for (let i = 1; i <= 5; i++) expect(await system.call(C, 'inc')).toBe(i);
    await system.stop(); // abrupt: nothing more is saved at the end
    system = await System.start({ nodes, releases: { store: dir, states: make() } });
    expect(await system.call(C, 'get')).toBe(5);
    expect(await system.durable.list('a')).toMatchObject([{ node: 'a', key: 'c', module: 'counter', vsn: 1, state: { count: 5 } }]);
  });
});
