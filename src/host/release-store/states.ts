/**
 * Durable server states, the store's half: the last state each durable server reached, per node
 * and key. Unlike the release journal, a state is overwritten, never appended: a server
 * checkpointing every message costs one small file rewrite, and the store does not grow with the
 * messages handled.
 *
 * The interface is as narrow as the release store's (store.ts), so a cluster store (a NATS
 * JetStream key-value bucket, keyed `node.key`) fits behind it unchanged. Two implementations:
 *
 * - `DirectoryStateStore`: one file per state, `<dir>/<node>/<sha256 of key>.state`, holding a
 *   header, the record (node:v8 serialization, the structured clone that copies it between
 *   threads) and a sha256 of it. Written as the journal's blobs are: a temp file, fsynced, renamed
 *   over the old one, the directory fsynced — so a crash at any point leaves the old state or the
 *   new one, whole. A file that does not read back (damage) is moved to `<dir>/lost/` and reported.
 * - `MemoryStateStore`: for a system without a release store: states survive node restarts (the
 *   host keeps them), not a host restart.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { StoreFormatTooNew } from './errors.js';
import { Disk } from './disk.js';

/** A durable server's state as stored: under its node and key, with the module and vsn that produced it. */
export interface StoredState {
  node: string;
  key: string;
  module: string;
  vsn: unknown;
  state: unknown;
  /** When it was saved (ms since the epoch). */
  at: number;
  /**
   * The host's write number for this key, rising with each write or forget: a store keeps the
   * highest it was given, so a write that lands late (its put timed out, then finished) never
   * replaces a newer state. Records written before it existed read as 0.
   */
  seq: number;
}

export interface StateStoreOpen {
  states: StoredState[];
  /** Stored states that could not be read back, and why (moved aside, not deleted). */
  lost: { node: string; detail: string }[];
  /** The highest seq the store holds or was given (0 if none): the host numbers its writes above it. */
  seq: number;
}

export interface StateStore {
  /** Reads every stored state. */
  open(): Promise<StateStoreOpen>;
  /**
   * Overwrites one state, unless the store holds (or forgot) the key at a `seq` as high or higher:
   * then it changes nothing. Resolves once it would survive a crash. (A key-value store does this
   * with a compare-and-set on the entry's revision.)
   */
  put(state: StoredState): Promise<void>;
  /** Forgets one state (durable before it resolves); a put with a `seq` not above `seq` is ignored from now on. */
  delete(node: string, key: string, seq: number): Promise<void>;
  close(): Promise<void>;
}

/** The state file layout this code writes; a file with a higher number is refused. */
export const STATE_FORMAT = 1;
const MAGIC = Buffer.from('sNDs');
const HEADER = MAGIC.length + 4;
const DIGEST = 32;

export class DirectoryStateStore implements StateStore {
  /** Node directories known to exist (made and fsynced once). */
  private readonly made = new Set<string>();
  /** The highest seq in place (written or forgotten) per node and key. */
  private readonly fence = new Fence();
  /** fsyncs as the journal's store does them (none with `fsync: false`). */
  private readonly disk: Disk;

  constructor(
    readonly dir: string,
    options: { fsync?: boolean } = {},
  ) {
    this.disk = new Disk({ fsync: options.fsync });
  }

  async open(): Promise<StateStoreOpen> {
    await mkdir(this.dir, { recursive: true });
    const states: StoredState[] = [];
    const lost: StateStoreOpen['lost'] = [];
    for (const node of await readdir(this.dir)) {
      if (node === 'lost') continue;
      const nodeDir = join(this.dir, node);
      let names: string[];
      try {
        names = await readdir(nodeDir);
      } catch {
        continue;
      }
      this.made.add(node);
      for (const name of names) {
        const path = join(nodeDir, name);
        if (name.startsWith('.tmp-')) {
          await unlink(path).catch(() => {});
          continue;
        }
        try {
          const state = decodeState(await readFile(path));
          if (state.node !== node || fileName(state.key) !== name) throw new Error('it is not filed under its own node and key');
          this.fence.raise(node, state.key, state.seq);
          states.push(state);
        } catch (error) {
          if (error instanceof StoreFormatTooNew) throw error;
          const moved = await this.quarantine(path, `${node}-${name}`);
          lost.push({ node, detail: `state file ${name} of node '${node}' could not be read (${(error as Error).message}); moved to ${moved}` });
        }
      }
    }
    return { states, lost, seq: this.fence.max() };
  }

  async put(state: StoredState): Promise<void> {
    const nodeDir = await this.nodeDir(state.node);
    const path = join(nodeDir, fileName(state.key));
    const temp = join(nodeDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(encodeState(state));
        await this.disk.datasync(file);
      } finally {
        await file.close();
      }
      // The rename is the commit: one at a time per key, and only over an older seq.
      const placed = await this.fence.commit(state.node, state.key, state.seq, async () => {
        await rename(temp, path);
        await this.disk.syncDir(nodeDir);
      });
      if (!placed) await unlink(temp);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
  }

  async delete(node: string, key: string, seq: number): Promise<void> {
    const nodeDir = join(this.dir, node);
    await this.fence.commit(node, key, seq, async () => {
      try {
        await unlink(join(nodeDir, fileName(key)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      await this.disk.syncDir(nodeDir);
    });
  }

  async close(): Promise<void> {}

  private async nodeDir(node: string): Promise<string> {
    const path = join(this.dir, node);
    if (!this.made.has(node)) {
      await mkdir(path, { recursive: true });
      await this.disk.syncDir(this.dir);
      this.made.add(node);
    }
    return path;
  }

  private async quarantine(path: string, name: string): Promise<string> {
    const lostDir = join(this.dir, 'lost');
    await mkdir(lostDir, { recursive: true });
    const to = join(lostDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${name}`);
    await rename(path, to);
    await this.disk.syncDir(lostDir);
    return to;
  }
}

export class MemoryStateStore implements StateStore {
  private readonly states = new Map<string, StoredState>();
  private readonly fence = new Fence();

  async open(): Promise<StateStoreOpen> {
    return { states: [...this.states.values()].map((s) => structuredClone(s)), lost: [], seq: this.fence.max() };
  }
  async put(state: StoredState): Promise<void> {
    const copy = structuredClone(state);
    await this.fence.commit(state.node, state.key, state.seq, async () => void this.states.set(id(state.node, state.key), copy));
  }
  async delete(node: string, key: string, seq: number): Promise<void> {
    await this.fence.commit(node, key, seq, async () => void this.states.delete(id(node, key)));
  }
  async close(): Promise<void> {}
}

/**
 * Per node and key, the highest seq in place: commits (a rename, a delete) run one at a time per
 * key, and one whose seq is not above it is skipped — a late write cannot go back in time.
 */
class Fence {
  private readonly highest = new Map<string, number>();
  private readonly committing = new Map<string, Promise<unknown>>();

  max(): number {
    return Math.max(0, ...this.highest.values());
  }

  raise(node: string, key: string, seq: number): void {
    const k = id(node, key);
    this.highest.set(k, Math.max(this.highest.get(k) ?? -1, seq));
  }

  /** Runs `work` if `seq` is above the key's highest (then it is the highest); resolves whether it ran. */
  commit(node: string, key: string, seq: number, work: () => Promise<void>): Promise<boolean> {
    const k = id(node, key);
    const result = (this.committing.get(k) ?? Promise.resolve()).then(async () => {
      if (seq <= (this.highest.get(k) ?? -1)) return false;
      await work();
      this.raise(node, key, seq);
      return true;
    });
    const tail = result.catch(() => {});
    this.committing.set(k, tail);
    void tail.then(() => {
      if (this.committing.get(k) === tail) this.committing.delete(k);
    });
    return result;
  }
}

function id(node: string, key: string): string {
  return `${node}\u0000${key}`;
}

/** A key as a file name: its sha256 (a key may hold characters a file name may not). */
function fileName(key: string): string {
  return `${createHash('sha256').update(key, 'utf8').digest('hex')}.state`;
}

export function encodeState(state: StoredState): Buffer {
  const payload = serialize(state);
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header);
  header.writeUInt32BE(STATE_FORMAT, MAGIC.length);
  return Buffer.concat([header, payload, createHash('sha256').update(payload).digest()]);
}

export function decodeState(bytes: Buffer): StoredState {
  if (bytes.length < HEADER + DIGEST || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a state file');
  const format = bytes.readUInt32BE(MAGIC.length);
  if (format > STATE_FORMAT) throw new StoreFormatTooNew('a durable state file', format, STATE_FORMAT);
  const payload = bytes.subarray(HEADER, bytes.length - DIGEST);
  if (
    !createHash('sha256')
      .update(payload)
      .digest()
      .equals(bytes.subarray(bytes.length - DIGEST))
  )
    throw new Error('checksum mismatch');
  const state = deserialize(payload) as StoredState;
  if (!state || typeof state.node !== 'string' || typeof state.key !== 'string' || typeof state.module !== 'string') throw new Error('malformed record');
  if (typeof state.seq !== 'number') state.seq = 0; // written before seq existed
  return state;
}
