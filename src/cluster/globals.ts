/**
 * Global names across hosts: the globals bucket holds `name → pid` (the key is the name in
 * base64url), written with create or compare-and-set. Every host watches it and applies what
 * other hosts wrote to its own replica (which its nodes get, as before, with `setGlobal`). Two
 * hosts registering one name at once: the write the bucket took first keeps it, and the other
 * host reports `global_conflict` and puts the winner back in its replica. When a host is gone,
 * the names of its processes are removed (by whichever host gets there first: compare-and-set);
 * a host that finds its own live process's name removed (it was held gone: a partition) writes it
 * back, and a host taken up again is read back from the bucket, so names come back on heal.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { nodeOf, isPid, type Pid } from '../kernel/pid.js';
import type { ClusterHost } from './hooks.js';

const keyOf = (name: string): string => Buffer.from(name, 'utf8').toString('base64url');
const nameOf = (key: string): string => Buffer.from(key, 'base64url').toString('utf8');

export class GlobalNames {
  /** One write at a time, in the order the system made them. */
  private chain: Promise<void> = Promise.resolve();
  private watch: { stop(): void } | undefined;

  constructor(
    private readonly kv: KV,
    private readonly host: ClusterHost,
    /** Whether the process a pid names may still be alive (its node is on a live host). */
    private readonly reachable: (pid: Pid) => boolean,
  ) {}

  async start(): Promise<void> {
    await this.rescan();
    await this.restartWatch();
  }

  /**
   * Reads the whole bucket again: a host taken up again after a partition had its names removed
   * here, and what it wrote back meanwhile was not applied (its pids were not reachable yet).
   */
  async rescan(): Promise<void> {
    for await (const key of await this.kv.keys()) {
      const entry = await this.kv.get(key);
      if (entry) this.onEntry(entry);
    }
  }

  async restartWatch(): Promise<void> {
    this.watch?.stop();
    const watch = await this.kv.watch();
    this.watch = watch;
    void (async () => {
      try {
        for await (const entry of watch) this.onEntry(entry);
      } catch {
        // Ended by stop() or a lost connection.
      }
    })();
  }

  stop(): void {
    this.watch?.stop();
  }

  /** A name changed on this host. */
  changed(name: string, pid: Pid | null, previous: Pid | undefined): void {
    this.enqueue(() => (pid ? this.write(name, pid) : previous ? this.remove(name, previous) : Promise.resolve()));
  }

  /**
   * The nodes of a host that is gone: their names are removed here and, if this host reaches NATS,
   * in the bucket (cut off, it leaves that to the hosts that do, rather than queue removals that
   * would run on heal, behind and ahead of newer writes).
   */
  hostGone(nodes: Set<string>, connected: boolean): void {
    for (const [name, pid] of [...this.host.globals]) {
      if (!nodes.has(nodeOf(pid))) continue;
      this.host.applyGlobal(name, null);
      if (connected) this.enqueue(() => this.remove(name, pid));
    }
  }

  private enqueue(op: () => Promise<void>): void {
    this.chain = this.chain.then(op).catch(() => {});
  }

  private async write(name: string, pid: Pid): Promise<void> {
    const key = keyOf(name);
    for (let attempt = 0; attempt < 10; attempt++) {
      const entry = await this.kv.get(key);
      const held = entry?.operation === 'PUT' ? (entry.string() as Pid) : undefined;
      if (held === pid) return;
      if (held && this.reachable(held)) {
        this.host.events.emit({ type: 'global_conflict', name, kept: held, refused: pid });
        this.host.applyGlobal(name, held);
        return;
      }
      try {
        if (entry) await this.kv.update(key, pid, entry.revision);
        else await this.kv.create(key, pid);
        return;
      } catch {
        // Written by another host meanwhile: look again.
      }
    }
  }

  private async remove(name: string, pid: Pid): Promise<void> {
    const key = keyOf(name);
    const entry = await this.kv.get(key);
    if (entry?.operation === 'PUT' && entry.string() === pid) await this.kv.delete(key, { previousSeq: entry.revision }).catch(() => {});
  }

  /** Whether a pid is of this host (its nodes or its mailboxes). */
  private mine(pid: Pid): boolean {
    const node = nodeOf(pid);
    return node === this.host.router.hostNode || this.host.local().some((h) => h.name === node);
  }

  private onEntry(entry: KvEntry): void {
    const name = nameOf(entry.key);
    const held = this.host.globals.get(name);
    if (entry.operation === 'PUT') {
      const pid = entry.string();
      if (isPid(pid) && held !== pid && this.reachable(pid)) this.host.applyGlobal(name, pid);
    } else if (held !== undefined && this.mine(held)) {
      // Removed by a host that held this one gone (a partition): the process is alive here, so its name stands.
      this.enqueue(() => this.write(name, held));
    } else if (held !== undefined) {
      this.host.applyGlobal(name, null);
    }
  }
}
