/**
 * Which hosts are alive. Each host puts its record (an incarnation id and its nodes) into the
 * hosts bucket every `heartbeatMs`; the bucket's entries expire `deadAfterMs` after their last put.
 * Every host watches the bucket: a host not heard from for `deadAfterMs` is gone (`timeout`),
 * one that deletes its entry has `left`, and one whose record comes with a new id was
 * `restarted` (its old incarnation is gone, with every node it had).
 *
 * A partition is judged the same way on both sides. While this host's own connection is down it
 * judges nobody for `deadAfterMs` (a NATS restart is not a partition); past that, every other host
 * is gone to it (`timeout`), as this host is to them. Each record carries how many times its host
 * has timed each other host out (`lost`): a host that finds its own count raised by a host it still
 * holds alive was timed out by it (a partition only one side judged) and takes it down too, so links
 * and monitors break on both sides or on neither.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { NameTaken } from '../errors.js';
import type { NodeSummary } from '../host/node-handle.js';
import type { Settings } from './options.js';

export interface HostRecord {
  host: string;
  /** This incarnation of the host (a new process has a new id). */
  id: string;
  nodes: NodeSummary[];
  /** How many times this host has timed each other host out (see the file comment). */
  lost?: Record<string, number>;
}

export class HostNameTaken extends NameTaken {}

export interface MembershipEvents {
  up(record: HostRecord): void;
  /** `record` is the last one heard. */
  down(record: HostRecord, reason: 'left' | 'timeout' | 'restarted'): void;
  /** A record came in (also a heartbeat with the same nodes). */
  update(record: HostRecord): void;
}

export class Membership {
  /** `theirs`: the member's count of times it timed this host out, when it was last taken up. */
  private readonly members = new Map<string, { record: HostRecord; seen: number; theirs: number }>();
  /** Times this host timed each other host out, told to all in its record. */
  private readonly timedOut = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private watch: { stop(): void } | undefined;
  /** When the heartbeat timer last ran (to tell a stall of this host's own thread). */
  private lastTick: number | undefined;
  /** When this host's connection went down; undefined while connected. */
  private disconnectedAt: number | undefined;
  private stopped = false;

  constructor(
    private readonly kv: KV,
    private readonly settings: Settings,
    private readonly self: () => HostRecord,
    private readonly on: MembershipEvents,
  ) {}

  /** Takes this host's name (waiting out a crashed predecessor's entry), learns the others, starts beating. */
  async start(): Promise<void> {
    await this.claimHostName();
    for await (const key of await this.kv.keys()) {
      const entry = await this.kv.get(key);
      if (entry) this.onEntry(entry);
    }
    await this.startWatch();
    this.timer = setInterval(() => this.tick(), this.settings.heartbeatMs);
    this.timer.unref();
  }

  alive(host: string): boolean {
    return host === this.settings.host || this.members.has(host);
  }

  record(host: string): HostRecord | undefined {
    return this.members.get(host)?.record;
  }

  records(): HostRecord[] {
    return [...this.members.values()].map((m) => m.record);
  }

  /** Puts this host's record now (its nodes changed). */
  beat(): void {
    if (this.disconnectedAt !== undefined || this.stopped) return;
    this.kv.put(this.settings.host, JSON.stringify(this.own())).catch(() => {});
  }

  /** The connection to NATS went down: nobody can be heard, so nobody is judged. */
  disconnected(): void {
    this.disconnectedAt ??= Date.now();
  }

  /** Back: everyone gets a fresh deadline, the watch starts again, this host beats at once. */
  async reconnected(): Promise<void> {
    this.disconnectedAt = undefined;
    const now = Date.now();
    for (const m of this.members.values()) m.seen = now;
    this.beat();
    this.rewatch();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.watch?.stop();
    await this.kv.delete(this.settings.host).catch(() => {});
  }

  private async claimHostName(): Promise<void> {
    const { host, heartbeatMs, deadAfterMs } = this.settings;
    const deadline = Date.now() + deadAfterMs + 4 * heartbeatMs;
    let firstRevision: number | undefined;
    for (;;) {
      const entry = await this.kv.get(host);
      if (!entry || entry.operation !== 'PUT') {
        try {
          await this.kv.create(host, JSON.stringify(this.self()));
          return;
        } catch {
          continue;
        }
      }
      // Still beating: another live process has this name.
      if (firstRevision !== undefined && entry.revision !== firstRevision) {
        throw new HostNameTaken(`the host name '${host}' is taken by a live host in cluster '${this.settings.cluster}'`, { host });
      }
      firstRevision ??= entry.revision;
      if (Date.now() > deadline) {
        // Silent for longer than any live host could be: a stale entry the server has not expired yet.
        try {
          await this.kv.update(host, JSON.stringify(this.self()), entry.revision);
          return;
        } catch {
          continue;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, heartbeatMs / 2));
    }
  }

  private async startWatch(): Promise<void> {
    const watch = await this.kv.watch();
    this.watch = watch;
    void (async () => {
      try {
        for await (const entry of watch) this.onEntry(entry);
      } catch {
        // Ended by stop() or by a lost connection (reconnected() starts a new one).
      }
      // Ended otherwise while connected (the server not ready after a reconnect): watch again.
      if (this.watch === watch && !this.stopped && this.disconnectedAt === undefined) this.rewatch();
    })();
  }

  /** A new watch, tried again every heartbeat until one starts (while connected): a host not watched is not heard. */
  private rewatch(): void {
    this.watch?.stop();
    this.watch = undefined;
    this.startWatch().catch(() => {
      const retry = setTimeout(() => {
        if (!this.stopped && this.disconnectedAt === undefined && !this.watch) this.rewatch();
      }, this.settings.heartbeatMs);
      retry.unref();
    });
  }

  private onEntry(entry: KvEntry): void {
    if (this.stopped || entry.key === this.settings.host) return;
    const known = this.members.get(entry.key);
    if (entry.operation !== 'PUT') {
      if (known) {
        this.members.delete(entry.key);
        this.on.down(known.record, 'left');
      }
      return;
    }
    let record: HostRecord;
    try {
      record = entry.json<HostRecord>();
    } catch {
      return;
    }
    if (!record || record.host !== entry.key || typeof record.id !== 'string' || !Array.isArray(record.nodes)) return;
    const theirs = record.lost?.[this.settings.host] ?? 0;
    if (known && known.record.id !== record.id) {
      this.members.delete(entry.key);
      this.on.down(known.record, 'restarted');
    } else if (known && theirs > known.theirs) {
      // It timed this host out while this host still held it alive: a partition only it judged.
      this.members.delete(entry.key);
      this.on.down(known.record, 'timeout');
    }
    const fresh = !this.members.has(entry.key);
    this.members.set(entry.key, { record, seen: Date.now(), theirs: fresh ? theirs : this.members.get(entry.key)!.theirs });
    if (fresh) this.on.up(record);
    this.on.update(record);
  }

  private own(): HostRecord {
    return { ...this.self(), lost: Object.fromEntries(this.timedOut) };
  }

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    const last = this.lastTick;
    this.lastTick = now;
    // This host's own thread stalled (no tick for half of deadAfterMs): the others' heartbeats are
    // still unread in its socket, so it judges nobody now; everyone gets a fresh deadline.
    if (last !== undefined && now - last > this.settings.deadAfterMs / 2) {
      for (const m of this.members.values()) m.seen = now;
    }
    const cut = this.disconnectedAt !== undefined;
    // Cut off for longer than deadAfterMs: the others have timed this host out, so it times them out.
    if (cut && now - this.disconnectedAt! <= this.settings.deadAfterMs) return;
    for (const [host, m] of this.members) {
      if (!cut && now - m.seen <= this.settings.deadAfterMs) continue;
      this.members.delete(host);
      this.timedOut.set(host, (this.timedOut.get(host) ?? 0) + 1);
      this.on.down(m.record, 'timeout');
    }
    // After the verdicts, so the record says at once whom this host timed out.
    this.beat();
  }
}
