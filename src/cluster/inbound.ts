/**
 * What arrives from other hosts, for this host's nodes and mailboxes only (never passed on). Each
 * batch comes from one host, named by the last token of its subject, which NATS permissions tie
 * to that host (README: security); every item in it must come from a node that host owns (its
 * nodes as announced, else the node names bucket; or its `host@H` mailboxes), or it is dropped
 * and reported (`forged`). A sender not announced yet is looked up, and the items after it wait,
 * so each host's order is kept. Move notices are judged by who owns the node they name
 * (src/cluster/moves.ts), looked up the same way.
 */
import { HOST_PREFIX, type Pid } from '../kernel/pid.js';
import type { ClusterEvent, ClusterHost } from './hooks.js';
import { isMoveNotice, type MoveNotice, type WireItem } from './wire.js';

export class Inbound {
  /** Senders not announced yet, looked up in the node names bucket: node → its host ('' for none). */
  private readonly verified = new Map<string, string>();
  /** Per sending host: settles once its batches that wait for a lookup are delivered. */
  private readonly waiting = new Map<string, Promise<void>>();

  constructor(
    private readonly host: string,
    private readonly system: ClusterHost,
    /** Nodes of other hosts → their host, as announced. */
    private readonly nodeHost: ReadonlyMap<string, string>,
    /** The host holding a node name now, from the node names bucket. */
    private readonly claimedBy: (node: string) => Promise<string | undefined>,
    private readonly emit: (event: ClusterEvent) => void,
    private readonly left: () => boolean,
    /** A move notice (src/cluster/moves.ts), with the host owning the node it names (undefined: none). */
    private readonly moveNotice: (notice: MoveNotice, from: string, owner: string | undefined) => void,
  ) {}

  receive(items: WireItem[], sender: string): void {
    const waiting = this.waiting.get(sender);
    if (waiting)
      this.wait(
        sender,
        waiting.then(() => this.deliver(items, sender, 0)),
      );
    else {
      const rest = this.deliver(items, sender, 0);
      if (rest) this.wait(sender, rest);
    }
  }

  /** A node was announced by its host: what was looked up for it is superseded. */
  learned(node: string): void {
    this.verified.delete(node);
  }

  hostGone(host: string): void {
    for (const [node, owner] of this.verified) if (owner === host) this.verified.delete(node);
  }

  private wait(sender: string, done: Promise<void>): void {
    this.waiting.set(sender, done);
    void done.finally(() => {
      if (this.waiting.get(sender) === done) this.waiting.delete(sender);
    });
  }

  /** Delivers items from `start`; returns a promise if it must look a sender up first. */
  private deliver(items: WireItem[], sender: string, start: number): Promise<void> | undefined {
    const { router } = this.system;
    const mine = `${HOST_PREFIX}${this.host}`;
    for (let i = start; i < items.length; i++) {
      const item = items[i]!;
      // Where a process moved, or that it ended: judged (moves.ts) by who owns the node it names.
      if (isMoveNotice(item)) {
        const node = (item[1] as { node?: unknown } | null)?.node;
        const owner = typeof node === 'string' ? this.ownerOf(node) : undefined;
        if (owner === undefined && typeof node === 'string' && !this.left()) return this.lookUp(node, items, sender, i);
        this.moveNotice(item, sender, owner || undefined);
        continue;
      }
      const [to, from, what, count] = item as [string, string, unknown, number];
      if (typeof to !== 'string' || typeof from !== 'string' || (to === '!down' ? !Array.isArray(what) : !(what instanceof Uint8Array) || !(count >= 0))) {
        this.emit({ type: 'forged', host: sender, node: String(from), dropped: 0 });
        continue;
      }
      const owner = this.ownerOf(from);
      if (owner === undefined && !this.left()) return this.lookUp(from, items, sender, i);
      if (owner !== sender) {
        this.emit({ type: 'forged', host: sender, node: from, dropped: to === '!down' ? 0 : count });
        continue;
      }
      if (to === '!down') this.system.remoteNodeDown(from, what as Pid[]);
      else if (to === mine || this.system.local().some((h) => h.name === to)) router.routeEncoded(to, what as Uint8Array, count, from);
      else this.system.events.emit({ type: 'message_dropped', node: to, count, reason: 'unknown_node' });
    }
    return undefined;
  }

  /** Looks up who holds `node`'s name, then delivers the items from `i` on. */
  private lookUp(node: string, items: WireItem[], sender: string, i: number): Promise<void> {
    return this.claimedBy(node).then((host) => {
      this.verified.set(node, host ?? '');
      return this.deliver(items, sender, i);
    });
  }

  /** The host a sending node (or `host@H` mailbox) belongs to, as known here; undefined if unknown. */
  private ownerOf(node: string): string | undefined {
    if (node.startsWith(HOST_PREFIX)) return node.slice(HOST_PREFIX.length);
    if (this.system.local().some((h) => h.name === node)) return this.host;
    return this.nodeHost.get(node) ?? this.verified.get(node);
  }
}
