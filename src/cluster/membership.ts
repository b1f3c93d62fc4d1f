/**
 * Which hosts are alive. Each host puts its record (an incarnation id and its nodes) into the
 * hosts bucket every `heartbeatMs`; the bucket's entries expire `deadAfterMs` after their last put.
 * Every host watches the bucket: a host not heard from for `deadAfterMs` is gone (`timeout`),
 * one that deletes its entry has `left`, and one whose record comes with a new id was
 * `restarted` (its old incarnation is gone, with every node it had). While this host's own
 * connection is down it judges nobody: it cannot hear anyone.
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
  private readonly members = new Map<string, { record: HostRecord; seen: number }>();
  private timer: NodeJS.Timeout | undefined;
  private watch: { stop(): void } | undefined;
  private connected = true;
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
    if (!this.connected || this.stopped) return;
    this.kv.put(this.settings.host, JSON.stringify(this.self())).catch(() => {});
  }

  /** The connection to NATS went down: nobody can be heard, so nobody is judged. */
  disconnected(): void {
    this.connected = false;
  }

  /** Back: everyone gets a fresh deadline, the watch starts again, this host beats at once. */
  async reconnected(): Promise<void> {
    this.connected = true;
    const now = Date.now();
    for (const m of this.members.values()) m.seen = now;
    this.beat();
    this.watch?.stop();
    await this.startWatch().catch(() => {});
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
        // Ended by stop() or by a lost connection; reconnected() starts a new one.
      }
    })();
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
    if (known && known.record.id !== record.id) {
      this.members.delete(entry.key);
      this.on.down(known.record, 'restarted');
    }
    const fresh = !this.members.has(entry.key);
    this.members.set(entry.key, { record, seen: Date.now() });
    if (fresh) this.on.up(record);
    this.on.update(record);
  }

  private tick(): void {
    if (!this.connected || this.stopped) return;
    this.beat();
    const now = Date.now();
    for (const [host, m] of this.members) {
      if (now - m.seen <= this.settings.deadAfterMs) continue;
      this.members.delete(host);
      this.on.down(m.record, 'timeout');
    }
  }
}
