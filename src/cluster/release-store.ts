/**
 * The release store on NATS JetStream, behind the same interface as the directory store
 * (src/host/release-store/store.ts), so a system's releases can live where every host reaches
 * them: `System.start({ releases: { store: new JetStreamReleaseStore({ servers, name }) } })`.
 *
 *     KV  subnode_rel_<name>        format   {"store":"subnode-release-store","format":1}
 *                                   r.<seq>  one journal record (JSON), seq 1, 2, 3… zero-padded
 *                                   lost.<seq>.<time>  a record cut on open, kept for inspection
 *     KV  subnode_rel_<name>_lock   lock     the writer: { id, host, pid }, refreshed; TTL lockTtlMs
 *     Obj subnode_rel_<name>_src    <sha256> compiled module sources, content-addressed
 *
 * A record is one KV `create` of the next `r.<seq>`: all of a plan or none, and a second writer
 * (one that lost the lock) is refused by the server, never interleaved. A record's sources are
 * stored before it. `append` resolves once JetStream acknowledged the write: stored by the
 * server (on disk with file storage; the server fsyncs per its `sync_interval`, set `always` for
 * an fsync per write). Open re-checks every record by the directory store's rules, which both
 * stores share (src/host/release-store/replayed.ts: seq order, its sources present, it replays
 * onto the state before it); the first bad one and everything after it are reported in `lost`,
 * copied to `lost.*` keys and removed from the journal.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { StoreClosed, StoreError, StoreLocked } from '../host/release-store/errors.js';
import { checkFormatRecord, FORMAT_RECORD } from '../host/release-store/format.js';
import { ReplayedJournal } from '../host/release-store/replayed.js';
import { Sources } from '../host/release-store/sources.js';
import type { JournalRecord, LostRecord, OpenResult, ReleaseEntry, ReleaseInfo, ReleaseStore, SourceHash, SystemRelease } from '../host/release-store/store.js';
import { BadArgument } from '../errors.js';
import { NODE_NAME } from '../kernel/pid.js';
import type { ClusterCredentials } from './options.js';

export interface JetStreamStoreOptions {
  /** NATS server URLs; or `connection`, an open connection to use (not closed by `close`). */
  servers?: string | string[];
  connection?: NatsConnection;
  /** The store's name: letters, digits, _ and - (its buckets are named after it). */
  name: string;
  credentials?: ClusterCredentials;
  /** How long a writer that died keeps the lock (default 5000 ms); a live one refreshes it. */
  lockTtlMs?: number;
}

const key = (seq: number): string => `r.${String(seq).padStart(12, '0')}`;

export class JetStreamReleaseStore implements ReleaseStore {
  private nc: NatsConnection | undefined;
  private kv: KV | undefined;
  private locks: KV | undefined;
  private objects: ObjectStore | undefined;
  private lockRevision = 0;
  private lockTimer: NodeJS.Timeout | undefined;
  private lockLost: string | undefined;
  private readonly sources = new Sources({
    has: (hash) => this.stored(hash),
    read: async (hash) => (await this.assertOpen().objects.getBlob(hash)) ?? undefined,
    write: async (hash, bytes) => void (await this.assertOpen().objects.putBlob({ name: hash }, bytes)),
    where: (hash) => `${this.where}_src/${hash}`,
  });
  /** The records read back on open and appended since, replayed. */
  private readonly replayed = new ReplayedJournal({ ready: () => void this.assertOpen(), write: (record) => this.write(record), sources: this.sources });
  private readonly id = randomUUID();
  private readonly where: string;
  private readonly lockTtlMs: number;

  constructor(private readonly options: JetStreamStoreOptions) {
    if (!options || typeof options.name !== 'string' || !NODE_NAME.test(options.name))
      throw new BadArgument(`JetStream release store: bad name ${JSON.stringify(options?.name)}: letters, digits, _ and -`);
    if (!options.connection && !options.servers) throw new BadArgument('JetStream release store: give servers or a connection');
    this.where = `nats:subnode_rel_${options.name}`;
    this.lockTtlMs = options.lockTtlMs ?? 5_000;
    if (!(this.lockTtlMs >= 100)) throw new BadArgument('JetStream release store: lockTtlMs >= 100');
  }

  async open(): Promise<OpenResult> {
    if (this.kv) throw new StoreError('already_open', `release store ${this.where} is already open`);
    const [{ jetstream }, { Kvm }, { Objm }, { connectStore }] = await Promise.all([
      import('@nats-io/jetstream'),
      import('@nats-io/kv'),
      import('@nats-io/obj'),
      import('./options.js'),
    ]);
    const nc = this.options.connection ?? (await connectStore(`rel-${this.options.name}`, this.options));
    try {
      const kvm = new Kvm(jetstream(nc));
      const bucket = (name: string, ttl?: number): Promise<KV> => kvm.create(name, { history: 1, ...(ttl ? { ttl } : {}) }).catch(() => kvm.open(name));
      const base = `subnode_rel_${this.options.name}`;
      const [kv, locks] = await Promise.all([bucket(base), bucket(`${base}_lock`, this.lockTtlMs)]);
      const objm = new Objm(nc);
      const objects = await objm.create(`${base}_src`).catch(() => objm.open(`${base}_src`));
      await this.lock(locks);
      Object.assign(this, { nc, kv, locks, objects });
      try {
        return await this.recover();
      } catch (error) {
        await this.close();
        throw error;
      }
    } catch (error) {
      if (!this.options.connection) await nc.close().catch(() => {});
      this.kv = undefined;
      throw error;
    }
  }

  async putSource(js: string): Promise<SourceHash> {
    this.assertOpen();
    return this.sources.put(js);
  }

  async getSource(hash: SourceHash): Promise<string> {
    this.assertOpen();
    return this.sources.get(hash);
  }

  append(entry: ReleaseEntry, options: { label?: string } = {}): Promise<number> {
    return this.replayed.append(entry, options);
  }

  markPermanent(release: number): Promise<number> {
    return this.replayed.markPermanent(release);
  }

  revert(to: number, reason?: string): Promise<number> {
    return this.replayed.revert(to, reason);
  }

  history(): Promise<JournalRecord[]> {
    return this.replayed.history();
  }

  releases(): Promise<ReleaseInfo[]> {
    return this.replayed.releases();
  }

  current(): Promise<SystemRelease> {
    return this.replayed.current();
  }

  lastPermanent(): Promise<{ release: number; state: SystemRelease } | undefined> {
    return this.replayed.lastPermanent();
  }

  async close(): Promise<void> {
    await this.replayed.settled();
    clearInterval(this.lockTimer);
    const { nc, locks } = this;
    this.kv = undefined;
    if (locks && !this.lockLost) await locks.delete('lock', { previousSeq: this.lockRevision }).catch(() => {});
    this.locks = undefined;
    if (nc && !this.options.connection) await nc.close().catch(() => {});
    this.nc = undefined;
  }

  /**
   * Takes the writer's lock: created if free; held by a live writer (its entry keeps changing) is
   * StoreLocked; an entry that does not change for longer than the TTL is a dead writer's, taken over.
   */
  private async lock(locks: KV): Promise<void> {
    const mine = JSON.stringify({ id: this.id, host: hostname(), pid: process.pid });
    let seen: { revision: number; since: number } | undefined;
    for (;;) {
      const entry = await locks.get('lock');
      if (!entry || entry.operation !== 'PUT') {
        try {
          this.lockRevision = await locks.create('lock', mine);
          break;
        } catch {
          continue;
        }
      }
      const holder = entry.json<{ pid?: number }>();
      if (seen && seen.revision !== entry.revision) throw new StoreLocked(this.where, holder?.pid ?? 0);
      seen ??= { revision: entry.revision, since: Date.now() };
      if (Date.now() - seen.since > this.lockTtlMs) {
        try {
          this.lockRevision = await locks.update('lock', mine, entry.revision);
          break;
        } catch {
          throw new StoreLocked(this.where, holder?.pid ?? 0);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, this.lockTtlMs / 4));
    }
    this.lockTimer = setInterval(() => {
      locks.update('lock', mine, this.lockRevision).then(
        (revision) => (this.lockRevision = revision),
        (error: Error) => (this.lockLost ??= error.message),
      );
    }, this.lockTtlMs / 3);
    this.lockTimer.unref();
  }

  private async recover(): Promise<OpenResult> {
    const kv = this.kv!;
    const format = await kv.get('format');
    if (!format || format.operation !== 'PUT') await kv.put('format', FORMAT_RECORD);
    else checkFormatRecord(format.string(), this.where, 'format entry');
    const keys: string[] = [];
    for await (const k of await kv.keys('r.>')) keys.push(k);
    keys.sort();
    const lost: LostRecord[] = [];
    this.replayed.reset();
    for (const k of keys) {
      const entry = await kv.get(k);
      if (!entry || entry.operation !== 'PUT') continue;
      let record: unknown;
      try {
        record = entry.json();
      } catch {
        record = undefined;
      }
      const problem = await this.replayed.restore(record);
      if (!problem) continue;
      lost.push(problem);
      // Kept for inspection, then cut from the journal.
      await kv.put(`lost.${k.slice(2)}.${Date.now()}`, entry.value);
      await kv.purge(k);
    }
    return this.replayed.opened(lost);
  }

  /** Writes one record: refused if its seq is taken (another writer) or this writer lost its lock. */
  private async write(record: JournalRecord): Promise<void> {
    const { kv } = this.assertOpen();
    if (this.lockLost) throw new StoreError('locked', `release store ${this.where}: this writer lost its lock (${this.lockLost})`);
    try {
      await kv.create(key(record.seq), JSON.stringify(record));
    } catch (error) {
      throw new StoreError('locked', `release store ${this.where}: record ${record.seq} could not be written (${(error as Error).message})`);
    }
  }

  /** Whether the object store holds a source (a deleted object's info stays, marked deleted). */
  private async stored(hash: SourceHash): Promise<boolean> {
    const info = await this.assertOpen().objects.info(hash);
    return !!info && !info.deleted;
  }

  private assertOpen(): { kv: KV; objects: ObjectStore } {
    if (!this.kv || !this.objects) throw new StoreClosed();
    return { kv: this.kv, objects: this.objects };
  }
}
