/**
 * Node names, unique cluster-wide, and their creations. Each name is a key of the nodes bucket,
 * claimed with create or compare-and-set: `{ host, id, next }`. A name held by a live host is
 * refused (NodeNameTaken); one whose host is gone, or that this host's earlier process held, is
 * taken over. `next` is the first creation no incarnation has used: a claim takes a block of
 * creations [next, next + BLOCK) and moves `next` past it before the node starts, so a node
 * brought back by a new process never reuses an old incarnation's pids. A host whose node
 * restarts past the end of its block takes the next block the same way.
 */
import type { KV } from '@nats-io/kv';
import { NameTaken } from '../errors.js';

export const CREATION_BLOCK = 1_000;

export class NodeNameTaken extends NameTaken {}

interface Claim {
  host: string;
  id: string;
  next: number;
}

export class NodeClaims {
  /** Names this host holds: the revision of its claim and the end of its block of creations. */
  private readonly held = new Map<string, { revision: number; end: number }>();

  constructor(
    private readonly kv: KV,
    private readonly host: string,
    private readonly id: string,
    private readonly cluster: string,
    /** Whether a host is alive (its entry in the hosts bucket has not expired). */
    private readonly alive: (host: string) => Promise<boolean>,
  ) {}

  /** Claims `node` for this host; resolves with its first creation. */
  async claim(node: string): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await this.kv.get(node);
      const current = entry?.operation === 'PUT' ? entry.json<Claim>() : undefined;
      if (current && current.host && current.host !== this.host && (await this.alive(current.host))) {
        throw new NodeNameTaken(`node name '${node}' is taken by host '${current.host}' in cluster '${this.cluster}'`, { node, host: current.host });
      }
      const first = current?.next ?? 0;
      const claim: Claim = { host: this.host, id: this.id, next: first + CREATION_BLOCK };
      try {
        const revision = current ? await this.kv.update(node, JSON.stringify(claim), entry!.revision) : await this.kv.create(node, JSON.stringify(claim));
        this.held.set(node, { revision, end: first + CREATION_BLOCK });
        return first;
      } catch {
        // Someone else wrote the name meanwhile: look again.
      }
    }
    throw new NodeNameTaken(`node name '${node}': could not claim it in cluster '${this.cluster}' (too much contention)`, { node });
  }

  /** The host holding `node`'s name now, if any (read from the bucket). */
  async ownerOf(node: string): Promise<string | undefined> {
    const entry = await this.kv.get(node).catch(() => null);
    return entry?.operation === 'PUT' ? entry.json<Claim>().host || undefined : undefined;
  }

  /** A node of this host restarted with `creation`: near the end of its block, the next block is taken. */
  async restarted(node: string, creation: number): Promise<void> {
    const held = this.held.get(node);
    if (!held || creation < held.end - 10) return;
    const next = held.end + CREATION_BLOCK;
    try {
      const revision = await this.kv.update(node, JSON.stringify({ host: this.host, id: this.id, next }), held.revision);
      this.held.set(node, { revision, end: next });
    } catch {
      // Lost the name to another host (this one was taken for gone): nothing more to extend.
    }
  }

  /** Leaving: the names stay in the bucket with their counters, owned by nobody. */
  async releaseAll(): Promise<void> {
    await Promise.all(
      [...this.held].map(async ([node, held]) => {
        const entry = await this.kv.get(node).catch(() => null);
        const next = entry?.operation === 'PUT' ? entry.json<Claim>().next : held.end;
        await this.kv.update(node, JSON.stringify({ host: '', id: '', next }), held.revision).catch(() => {});
      }),
    );
    this.held.clear();
  }
}
