/**
 * What arrives from other hosts on this host's main thread: on its data subject, for its mailboxes,
 * and notices; on the node subject of a node of its own without a NATS connection (a dense node),
 * for that node (never passed on). Each batch comes from one host, named by the last token of its
 * subject, which NATS permissions tie to that host (README: security); every item in it must come
 * from a node that host owns (its nodes as announced, else the node names bucket; or its `host@H`
 * mailboxes), or it is dropped and reported (`forged`). A sender not announced yet is looked up,
 * and the items after it wait, so each host's order is kept. Move notices are judged by who owns
 * the node they name (src/cluster/moves.ts), looked up the same way.
 *
 * A node's down notice names the incarnation that went down; what that incarnation sent on its
 * own connection and arrives after the notice is dropped, never delivered after the `noconnection`
 * (a node's own thread reading its subject does the same: src/node/nats-endpoint.ts).
 */
import { HOST_PREFIX, type Pid } from '../kernel/pid.js';
import type { ClusterEvent, ClusterHost } from './hooks.js';
import { isMoveNotice, type MoveNotice, type WireItem } from '../net/frames.js';

/** Senders looked up at most: a peer naming ever new nodes costs a lookup each, not memory without end. */
const MAX_VERIFIED = 1024;

export class Inbound {
  /** Senders not announced yet, looked up in the node names bucket: node → its host ('' for none). */
  private readonly verified = new Map<string, string>();
  /** Per sending host: settles once its batches that wait for a lookup are delivered. */
  private readonly waiting = new Map<string, Promise<void>>();
  /**
   * Per sending host: how many times it was declared gone. Items received before the last time
   * that still wait (behind a lookup) are from before the `noconnection` its nodes' links and
   * monitors fired with: their data is dropped, never delivered after it; their move notices are
   * still learned (a move is true whenever it was said), in order.
   */
  private readonly epochs = new Map<string, number>();
  /** Nodes of other hosts whose down notice came: the incarnation that went down (what it sent later is dropped). */
  private readonly downs = new Map<string, number>();

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

  /** Items from host `sender`, read on node `to`'s subject, or on this host's data subject (`to` undefined). */
  receive(items: WireItem[], sender: string, to?: string): void {
    const epoch = this.epochOf(sender);
    const waiting = this.waiting.get(sender);
    if (waiting)
      this.wait(
        sender,
        waiting.then(() => this.deliver(items, sender, to, 0, epoch)),
      );
    else {
      const rest = this.deliver(items, sender, to, 0, epoch);
      if (rest) this.wait(sender, rest);
    }
  }

  /** A node was announced by its host: what was looked up for it is superseded. */
  learned(node: string): void {
    this.verified.delete(node);
  }

  /** A host was declared gone: what it sent before and still waits here is from before. */
  hostGone(host: string): void {
    this.epochs.set(host, this.epochOf(host) + 1);
    for (const [node, owner] of this.verified) if (owner === host) this.verified.delete(node);
    // Everything from it is dropped until it is heard again; its nodes come back as incarnations after these.
    for (const node of this.downs.keys()) if (this.nodeHost.get(node) === host) this.downs.delete(node);
  }

  private epochOf(host: string): number {
    return this.epochs.get(host) ?? 0;
  }

  private wait(sender: string, done: Promise<void>): void {
    this.waiting.set(sender, done);
    void done.finally(() => {
      if (this.waiting.get(sender) === done) this.waiting.delete(sender);
    });
  }

  /**
   * Delivers items from `start` (received while `sender` had been declared gone `epoch` times);
   * returns a promise if it must look a sender up first.
   */
  private deliver(items: WireItem[], sender: string, subject: string | undefined, start: number, epoch: number): Promise<void> | undefined {
    const { router } = this.system;
    const mine = `${HOST_PREFIX}${this.host}`;
    // Declared gone since these were received (they waited behind a lookup): from before it.
    const before = epoch !== this.epochOf(sender);
    let dropped = 0;
    let late = 0;
    try {
      for (let i = start; i < items.length; i++) {
        const item = items[i]!;
        // Where a process moved, or that it ended: judged (moves.ts) by who owns the node it names.
        if (isMoveNotice(item)) {
          const node = (item[1] as { node?: unknown } | null)?.node;
          const owner = typeof node === 'string' ? this.ownerOf(node) : undefined;
          if (owner === undefined && typeof node === 'string' && !this.left()) return this.lookUp(node, items, sender, subject, i, epoch);
          if (subject !== undefined) this.emit({ type: 'forged', host: sender, node: String(node), dropped: 0 });
          else this.moveNotice(item, sender, owner || undefined);
          continue;
        }
        const [to, from, what, n, c] = item as [string, string, unknown, number, number];
        const down = to === '!down';
        // A down notice is ['!down', node, lost, creation]; a node batch [to, from, bytes, count, creation].
        const [count, creation] = down ? [0, n] : [n, c];
        if (before) {
          // Its nodes are down here already ('!down' is news no more); data would come after the noconnection.
          if (to !== '!down') dropped += count;
          continue;
        }
        // Each subject carries what it names: a node's subject its batches, this host's its mailboxes' and the notices.
        const misplaced = subject === undefined ? !down && to !== mine : to !== subject;
        if (
          typeof to !== 'string' ||
          typeof from !== 'string' ||
          misplaced ||
          (down ? !Array.isArray(what) : !(what instanceof Uint8Array) || !(count >= 0)) ||
          !(Number.isSafeInteger(creation) && creation >= 0)
        ) {
          this.emit({ type: 'forged', host: sender, node: String(from), dropped: Number(count) || 0 });
          continue;
        }
        const owner = this.ownerOf(from);
        if (owner === undefined && !this.left()) return this.lookUp(from, items, sender, subject, i, epoch);
        if (owner !== sender) {
          this.emit({ type: 'forged', host: sender, node: from, dropped: count });
          continue;
        }
        if (down) {
          if (creation > (this.downs.get(from) ?? -1)) this.downs.set(from, creation);
          this.system.remoteNodeDown(from, sender, what as Pid[], creation);
        } else if (creation <= (this.downs.get(from) ?? -1)) late += count;
        else if (to === mine || this.system.local().some((h) => h.name === to)) router.routeEncoded(to, what as Uint8Array, count, from);
        else this.system.events.emit({ type: 'message_dropped', node: to, count, reason: 'unknown_node' });
      }
      return undefined;
    } finally {
      if (late)
        this.emit({
          type: 'link_error',
          host: sender,
          dropped: late,
          reason: `sent by a node of host '${sender}' before its down notice, arriving after it: not delivered after the noconnection`,
        });
      if (dropped)
        this.emit({
          type: 'link_error',
          host: sender,
          dropped,
          reason: `sent by host '${sender}' before it was declared gone: not delivered after the noconnection`,
        });
    }
  }

  /** Looks up who holds `node`'s name, then delivers the items from `i` on. */
  private lookUp(node: string, items: WireItem[], sender: string, subject: string | undefined, i: number, epoch: number): Promise<void> {
    return this.claimedBy(node).then((host) => {
      if (this.verified.size >= MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(node, host ?? '');
      return this.deliver(items, sender, subject, i, epoch);
    });
  }

  /** The host a sending node (or `host@H` mailbox) belongs to, as known here; undefined if unknown. */
  private ownerOf(node: string): string | undefined {
    if (node.startsWith(HOST_PREFIX)) return node.slice(HOST_PREFIX.length);
    if (this.system.local().some((h) => h.name === node)) return this.host;
    return this.nodeHost.get(node) ?? this.verified.get(node);
  }
}
