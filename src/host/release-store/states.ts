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

/** A durable server's state as stored: under its node and key, with the module and vsn that produced it. */
export interface StoredState {
  node: string;
  key: string;
  module: string;
  vsn: unknown;
  state: unknown;
  /** When it was saved (ms since the epoch). */
  at: number;
}

export interface StateStoreOpen {
  states: StoredState[];
  /** Stored states that could not be read back, and why (moved aside, not deleted). */
  lost: { node: string; detail: string }[];
}

export interface StateStore {
  /** Reads every stored state. */
  open(): Promise<StateStoreOpen>;
  /** Overwrites one state; resolves once it would survive a crash. */
  put(state: StoredState): Promise<void>;
  /** Forgets one state (durable before it resolves). */
  delete(node: string, key: string): Promise<void>;
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

  constructor(
    readonly dir: string,
    private readonly options: { fsync?: boolean } = {},
  ) {}

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
          states.push(state);
        } catch (error) {
          if (error instanceof StoreFormatTooNew) throw error;
          const moved = await this.quarantine(path, `${node}-${name}`);
          lost.push({ node, detail: `state file ${name} of node '${node}' could not be read (${(error as Error).message}); moved to ${moved}` });
        }
      }
    }
    return { states, lost };
  }

  async put(state: StoredState): Promise<void> {
    const nodeDir = await this.nodeDir(state.node);
    const path = join(nodeDir, fileName(state.key));
    const temp = join(nodeDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(encodeState(state));
        if (this.options.fsync !== false) await file.datasync();
      } finally {
        await file.close();
      }
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    await this.syncDir(nodeDir);
  }

  async delete(node: string, key: string): Promise<void> {
    const nodeDir = join(this.dir, node);
    try {
      await unlink(join(nodeDir, fileName(key)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await this.syncDir(nodeDir);
  }

  async close(): Promise<void> {}

  private async nodeDir(node: string): Promise<string> {
    const path = join(this.dir, node);
    if (!this.made.has(node)) {
      await mkdir(path, { recursive: true });
      await this.syncDir(this.dir);
      this.made.add(node);
    }
    return path;
  }

  private async quarantine(path: string, name: string): Promise<string> {
    const lostDir = join(this.dir, 'lost');
    await mkdir(lostDir, { recursive: true });
    const to = join(lostDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${name}`);
    await rename(path, to);
    await this.syncDir(lostDir);
    return to;
  }

  private async syncDir(path: string): Promise<void> {
    if (this.options.fsync === false) return;
    const dir = await open(path, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

export class MemoryStateStore implements StateStore {
  private readonly states = new Map<string, StoredState>();

  async open(): Promise<StateStoreOpen> {
    return { states: [...this.states.values()].map((s) => structuredClone(s)), lost: [] };
  }
  async put(state: StoredState): Promise<void> {
    this.states.set(`${state.node}\u0000${state.key}`, structuredClone(state));
  }
  async delete(node: string, key: string): Promise<void> {
    this.states.delete(`${node}\u0000${key}`);
  }
  async close(): Promise<void> {}
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
  return state;
}
