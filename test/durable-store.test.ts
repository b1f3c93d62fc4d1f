/**
 * The durable state store on disk (release-store/states.ts): a state is overwritten in place (the
 * store does not grow with checkpoints), a temp file left by a crash mid-write is removed on open
 * and the previous state is whole, a damaged file is moved to lost/ and reported (`durable_lost`)
 * while the other states load, and a file of a newer format is refused.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryStateStore, System, type SystemEvent } from '../src/index.js';
import { StoreFormatTooNew } from '../src/host/release-store/index.js';
import { DurableStates } from '../src/host/durable-states.js';
import { Events } from '../src/host/events.js';
import { durableV1, storedState as state } from './fixtures/durable-counter.js';

const dirs: string[] = [];
let system: System | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'subnode-states-'));
  dirs.push(dir);
  return dir;
}

describe('the directory state store', () => {
  it('overwrites one file per key: a thousand checkpoints leave one file, holding the last state (structured-clone types kept)', async () => {
    const dir = tempDir();
    const store = new DirectoryStateStore(dir, { fsync: false });
    await store.open();
    for (let i = 1; i <= 1000; i++) await store.put(state('c', i));
    expect(readdirSync(join(dir, 'a'))).toHaveLength(1);
    const { states, lost } = await new DirectoryStateStore(dir).open();
    expect(lost).toEqual([]);
    expect(states).toHaveLength(1);
    expect(states[0]!.state).toEqual({ count: 1000, at: new Date(0), tags: new Set(['x']) });
  });

  it('a temp file left by a crash mid-write is removed; a damaged file is moved to lost/ and reported; the rest loads', async () => {
    const dir = tempDir();
    const store = new DirectoryStateStore(dir);
    await store.put(state('good', 1));
    await store.put(state('bad', 2));
    const files = readdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', '.tmp-999-torn'), 'half a state');
    const badFile = files.find((f) => readFileSync(join(dir, 'a', f)).includes(Buffer.from('bad')))!;
    const bytes = readFileSync(join(dir, 'a', badFile));
    bytes[bytes.length - 40] ^= 0xff; // a flipped bit inside the record
    writeFileSync(join(dir, 'a', badFile), bytes);

    system = await System.start({ nodes: [{ name: 'a', modules: { counter: durableV1 } }], releases: { store: dir, states: new DirectoryStateStore(dir) } });
    const stored = await system.durable.list();
    expect(stored.map((s) => s.key)).toEqual(['good']);
    expect(readdirSync(join(dir, 'a'))).toEqual([files.find((f) => f !== badFile)]);
    expect(readdirSync(join(dir, 'lost'))).toHaveLength(1);
  });

  it('the host reports what was moved aside as durable_lost when it opens the store', async () => {
    const dir = tempDir();
    await new DirectoryStateStore(dir).put(state('c', 1));
    const [file] = readdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', file!), 'not a state at all');
    const events = new Events();
    const seen: SystemEvent[] = [];
    events.on('durable_lost', (e) => seen.push(e));
    const keeper = await DurableStates.open(new DirectoryStateStore(dir), events);
    expect(seen).toEqual([{ type: 'durable_lost', node: 'a', detail: expect.stringMatching(/could not be read \(not a state file\); moved to .*lost/) }]);
    expect(await keeper.list()).toEqual([]);
  });

  it('a late write cannot go back in time: a put numbered at or below what is stored (or forgotten) changes nothing', async () => {
    const dir = tempDir();
    const store = new DirectoryStateStore(dir, { fsync: false });
    await store.open();
    await Promise.all([store.put(state('c', 2)), store.put(state('c', 1))]); // seq 1 lands after seq 2
    const read = async () => (await new DirectoryStateStore(dir).open()).states.map((s) => (s.state as { count: number }).count);
    expect(await read()).toEqual([2]);
    await store.delete('a', 'c', 3);
    await store.put(state('c', 3)); // written before the forget, landing after it
    expect(await read()).toEqual([]);
    expect(readdirSync(join(dir, 'a'))).toEqual([]); // no temp file left behind
    await store.put(state('c', 4));
    expect(await read()).toEqual([4]);
    expect((await new DirectoryStateStore(dir).open()).seq).toBe(4);
  });

  it('a state file written by a newer format is refused, not misread', async () => {
    const dir = tempDir();
    await new DirectoryStateStore(dir).put(state('c', 1));
    const [file] = readdirSync(join(dir, 'a'));
    const bytes = readFileSync(join(dir, 'a', file!));
    bytes.writeUInt32BE(99, 4);
    writeFileSync(join(dir, 'a', file!), bytes);
    await expect(new DirectoryStateStore(dir).open()).rejects.toBeInstanceOf(StoreFormatTooNew);
  });
});
