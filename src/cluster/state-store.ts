/**
 * Durable server states on NATS JetStream, behind the same `StateStore` interface as the directory
 * store (src/host/release-store/states.ts), so a host's durable servers resume from where every
 * machine reaches them: `System.start({ releases: { store, states: new JetStreamStateStore({
 * servers, name }) } })`.
 *
 *     KV  subnode_states_<name>   s.n<node>.k<key>   the state (node and key in base64url), in the
 *                                                    directory store's record format (header,
 *                                                    v8 record, sha256), or a forget marker
 *                                 lost.<key>.<time>  an entry that did not read back, kept aside
 *
 * One entry per state, overwritten (history 1): the bucket does not grow with checkpoints. A put
 * or a forget is a compare-and-set on the entry's revision, taken only over a lower `seq` — a
 * write that lands late never replaces a newer state, whichever process made it. A forget leaves
 * a small marker holding its `seq` for that reason. `put` resolves once JetStream acknowledged the
 * write (stored by the server; file storage, fsynced per the server's `sync_interval`).
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BadArgument } from '../errors.js';
import { NODE_NAME } from '../kernel/pid.js';
import { StoreError, StoreFormatTooNew } from '../host/release-store/errors.js';
import { decodeState, encodeState, type StateStore, type StateStoreOpen, type StoredState } from '../host/release-store/states.js';
import type { ClusterCredentials } from './options.js';

export interface JetStreamStateStoreOptions {
  /** NATS server URLs; or `connection`, an open connection to use (not closed by `close`). */
  servers?: string | string[];
  connection?: NatsConnection;
  /** The store's name: letters, digits, _ and - (its bucket is named after it). */
  name: string;
  credentials?: ClusterCredentials;
}

const OPTION_KEYS = new Set(['servers', 'connection', 'name', 'credentials']);
/** A forget marker: the magic, then the forget's seq as text. Never a state (those start 'sNDs'). */
const FORGOTTEN = Buffer.from('sNDf');
/** Compare-and-set rounds lost to other writers before a write gives up with an error. */
const ATTEMPTS = 20;

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
const entryKey = (node: string, key: string): string => `s.n${b64(node)}.k${b64(key)}`;

export class JetStreamStateStore implements StateStore {
  private nc: NatsConnection | undefined;
  private kv: KV | undefined;
  /** Per entry, the revision and seq this store last read or wrote: a write tries it first, unread. */
  private readonly known = new Map<string, { revision: number; seq: number }>();
  /** Writes to one key, one at a time in the order they were asked for. */
  private readonly writing = new Map<string, Promise<unknown>>();
  private readonly where: string;

  constructor(private readonly options: JetStreamStateStoreOptions) {
    if (!options || typeof options !== 'object') throw new BadArgument('JetStream state store: options { servers | connection, name } needed');
    const unknown = Object.keys(options).filter((k) => !OPTION_KEYS.has(k));
    if (unknown.length) throw new BadArgument(`JetStream state store: unknown option ${unknown.join(', ')}`);
    if (typeof options.name !== 'string' || !NODE_NAME.test(options.name))
      throw new BadArgument(`JetStream state store: bad name ${JSON.stringify(options.name)}: letters, digits, _ and -`);
    if (!options.connection && !options.servers) throw new BadArgument('JetStream state store: give servers or a connection');
    this.where = `nats:subnode_states_${options.name}`;
  }

  async open(): Promise<StateStoreOpen> {
    if (this.kv) throw new StoreError('already_open', `state store ${this.where} is already open`);
    // Loaded here, not at the top: a system that keeps its states elsewhere needs no NATS client.
    const [{ jetstream }, { Kvm }, { connectStore }] = await Promise.all([import('@nats-io/jetstream'), import('@nats-io/kv'), import('./options.js')]);
    const nc = this.options.connection ?? (await connectStore(`states-${this.options.name}`, this.options));
    try {
      const kvm = new Kvm(jetstream(nc));
      const name = `subnode_states_${this.options.name}`;
      const kv = await kvm.create(name, { history: 1 }).catch(() => kvm.open(name));
      Object.assign(this, { nc, kv });
      return await this.readAll(kv);
    } catch (error) {
      await this.close();
      if (!this.options.connection) await nc.close().catch(() => {});
      throw error;
    }
  }

  put(state: StoredState): Promise<void> {
    return this.write(state.node, state.key, state.seq, encodeState(state));
  }

  delete(node: string, key: string, seq: number): Promise<void> {
    return this.write(node, key, seq, Buffer.concat([FORGOTTEN, Buffer.from(String(seq))]));
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.kv = undefined;
    this.nc = undefined;
    this.known.clear();
    await Promise.allSettled(this.writing.values());
    if (nc && !this.options.connection) await nc.close().catch(() => {});
  }

  /** Writes `bytes` as the key's entry if `seq` is above the seq it holds; otherwise changes nothing. */
  private write(node: string, key: string, seq: number, bytes: Buffer): Promise<void> {
    const k = entryKey(node, key);
    const result = (this.writing.get(k) ?? Promise.resolve()).then(async () => {
      const kv = this.assertOpen();
      // The entry as this store last left it, when nobody else wrote it since: one round trip.
      const last = this.known.get(k);
      if (last) {
        if (seq <= last.seq) return;
        try {
          this.known.set(k, { revision: await kv.update(k, bytes, last.revision), seq });
          return;
        } catch (error) {
          if (!isRevisionConflict(error)) throw error;
        }
      }
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const entry = await kv.get(k);
        const held = entry?.operation === 'PUT' ? seqOf(entry) : -1;
        if (entry) this.known.set(k, { revision: entry.revision, seq: held });
        if (seq <= held) return;
        try {
          const revision = entry ? await kv.update(k, bytes, entry.revision) : await kv.create(k, bytes);
          this.known.set(k, { revision, seq });
          return;
        } catch (error) {
          if (!isRevisionConflict(error)) throw error;
          // Another writer got there first: read again.
        }
      }
      throw new StoreError('contended', `state store ${this.where}: ${ATTEMPTS} writers in a row got to ${node}/${key} first`);
    });
    const tail = result.catch(() => {});
    this.writing.set(k, tail);
    void tail.then(() => {
      if (this.writing.get(k) === tail) this.writing.delete(k);
    });
    return result;
  }

  private async readAll(kv: KV): Promise<StateStoreOpen> {
    const states: StoredState[] = [];
    const lost: StateStoreOpen['lost'] = [];
    let max = 0;
    const keys: string[] = [];
    for await (const k of await kv.keys('s.>')) keys.push(k);
    for (const k of keys.sort()) {
      const entry = await kv.get(k);
      if (!entry || entry.operation !== 'PUT') continue;
      try {
        if (isForgotten(entry.value)) {
          const seq = seqOf(entry);
          this.known.set(k, { revision: entry.revision, seq });
          max = Math.max(max, seq);
          continue;
        }
        const state = decodeState(Buffer.from(entry.value));
        if (entryKey(state.node, state.key) !== k) throw new Error('it is not filed under its own node and key');
        this.known.set(k, { revision: entry.revision, seq: state.seq });
        max = Math.max(max, state.seq);
        states.push(state);
      } catch (error) {
        if (error instanceof StoreFormatTooNew) throw error;
        const aside = `lost.${k.slice(2)}.${Date.now()}`;
        await kv.put(aside, entry.value);
        await kv.delete(k, { previousSeq: entry.revision }).catch(() => {});
        lost.push({ node: nodeOfKey(k), detail: `state entry ${k} of ${this.where} could not be read (${(error as Error).message}); kept as ${aside}` });
      }
    }
    return { states, lost, seq: max };
  }

  private assertOpen(): KV {
    if (!this.kv) throw new StoreError('closed', `state store ${this.where} is not open`);
    return this.kv;
  }
}

function isForgotten(value: Uint8Array): boolean {
  return value.length > FORGOTTEN.length && Buffer.from(value.subarray(0, FORGOTTEN.length)).equals(FORGOTTEN);
}

/** The seq an entry holds: a forget marker's, or the state's (an entry that does not read holds none). */
function seqOf(entry: KvEntry): number {
  try {
    if (isForgotten(entry.value)) return Number(Buffer.from(entry.value.subarray(FORGOTTEN.length)).toString()) || 0;
    return decodeState(Buffer.from(entry.value)).seq;
  } catch {
    return -1;
  }
}

function nodeOfKey(k: string): string {
  const token = k.split('.')[1] ?? '';
  return Buffer.from(token.slice(1), 'base64url').toString('utf8');
}

/** JetStream refused a create or update because the entry changed since it was read. */
function isRevisionConflict(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error);
  return /wrong last sequence|key exists/i.test(text);
}
