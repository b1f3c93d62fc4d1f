/**
 * A node's own connection to NATS, on its thread, when its host is in a cluster (a thread node,
 * or an isolate node with a worker of its own; the connection lives in the trusted half, out of
 * the isolate's reach). The node sends its batches for nodes of other hosts (and their mailboxes)
 * itself, and reads its own node subject, so a message between hosts crosses no main thread of
 * the receiving host: a call's round trip is the two NATS hops and the two kernels.
 *
 * What it takes in is held to what its host's main thread holds its data subject to
 * (src/cluster/inbound.ts):
 * - every item is a batch for this node, from a node the sending host (the subject's last token,
 *   which NATS permissions tie to that host) owns: asked of this node's host the first time a
 *   sender is seen (the items after it, from the same host, wait, so each host's order is kept),
 *   or dropped and reported (`forged`);
 * - a node of another host that went down (`down`, told by this node's host) is *fenced*: what
 *   that incarnation sent before and is still on its way is taken in first (a round trip to the
 *   server: everything routed to this connection before the notice arrives before the answer),
 *   then the host's next messages are served, and what that incarnation sent that comes later is
 *   dropped (reported), never delivered after the `noconnection`. A host declared gone
 *   (`hostGone`) is fenced at once: what it sent is from before, dropped (as its host's main thread
 *   drops it), as is what waits here to go to it, until it is taken up again (`hostUp`).
 *
 * Vocabulary: *owner* — the host a node name belongs to; *fenced* — a node whose batches up to an
 * incarnation are dropped.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { HOST_PREFIX } from '../kernel/pid.js';
import type { ClusterEvent } from '../cluster/hooks.js';
import { checkOptions, connectNats, type ClusterOptions } from '../cluster/options.js';
import { decodeItems, EVERY_INCARNATION, isNotice, type WireItem } from '../net/frames.js';
import { flushedWithin, Publisher } from '../net/publisher.js';
import { names, senderOf, type Names } from '../net/subjects.js';
import { within } from '../deadline.js';

/** How long a fence waits for the server's answer: longer, the connection is down and nothing is on its way. */
const FENCE_MS = 2_000;
/** How long a node waits for its own connection when it starts, whatever the number of servers to try; past that it runs without one (its host carries its batches). */
const CONNECT_MS = 3_000;
/** How long an owner question may go unanswered before it is asked again. */
const ASK_MS = 2_000;
/** Owners remembered at most (a peer naming ever new nodes costs a question each, not memory without end). */
const MAX_OWNERS = 1024;

/**
 * The connection, or an error once `ms` passed: the client's own timeout is per server, and a
 * list of servers that do not answer would hold the node's start for each. A connection made
 * after that is closed, not left behind.
 */
async function connectWithin(connecting: Promise<NatsConnection>, ms: number): Promise<NatsConnection> {
  try {
    return await within(connecting, ms, () => new Error(`no NATS server answered within ${ms} ms`));
  } catch (error) {
    connecting.then((late) => late.close()).catch(() => {});
    throw error;
  }
}

/** What the endpoint needs of its node's runtime. */
export interface EndpointIo {
  /** Envelopes serialized for this node's kernel, from node (or mailbox) `from`. */
  deliver(bytes: Uint8Array, from: string): void;
  /** Asks the host which host owns `node` (it answers with `owner`). */
  whois(node: string): void;
  /** Reported by the host as a cluster event. */
  event(event: ClusterEvent): void;
}

/** Items from one host waiting for an owner to be known, in order. */
type Parked = { items: WireItem[]; start: number }[];

export class NatsEndpoint {
  private readonly names: Names;
  private readonly host: string;
  private readonly publisher: Publisher;
  private readonly owners = new Map<string, string>();
  /** Nodes (and mailboxes) fenced: the last incarnation whose batches are dropped. */
  private readonly fenced = new Map<string, number>();
  /** Hosts declared gone: nothing they send is taken until they are up again. */
  private readonly goneHosts = new Set<string>();
  /** Per sending host, items waiting for an owner; and who is asked. */
  private readonly parked = new Map<string, Parked>();
  /** Senders asked about, and when (asked again if no answer came within ASK_MS). */
  private readonly asked = new Map<string, number>();

  static async open(options: ClusterOptions, node: string, creation: number, io: EndpointIo): Promise<NatsEndpoint> {
    const settings = checkOptions(options);
    const nc = await connectWithin(connectNats(options, settings, node, CONNECT_MS), CONNECT_MS);
    const endpoint = new NatsEndpoint(nc, settings.host, settings.cluster, settings.maxPendingEnvelopes, node, creation, io);
    // Subscribed at the server before the node is announced: nothing sent to it is missed. If
    // that cannot be confirmed in time, no connection is left behind to read beside the host.
    if (!(await flushedWithin(nc, CONNECT_MS))) {
      await nc.close().catch(() => {});
      throw new Error(`its subscription was not confirmed within ${CONNECT_MS} ms`);
    }
    return endpoint;
  }

  private constructor(
    private readonly nc: NatsConnection,
    host: string,
    cluster: string,
    maxPendingEnvelopes: number,
    private readonly node: string,
    private readonly creation: number,
    private readonly io: EndpointIo,
  ) {
    this.host = host;
    this.names = names(cluster);
    this.publisher = new Publisher(
      {
        publish: (subject, bytes) => nc.publish(subject, bytes),
        maxPayload: () => nc.info?.max_payload,
        closed: () => nc.isClosed(),
        dropped: (to, dropped, reason) => io.event({ type: 'link_error', host: to, dropped, reason: `node '${node}': ${reason}` }),
        overflow: (to, dropped) => io.event({ type: 'link_overflow', host: to, dropped }),
      },
      maxPendingEnvelopes,
    );
    nc.subscribe(this.names.node(host, node, '*'), {
      callback: (error, msg) => {
        if (error) return;
        const sender = senderOf(msg.subject);
        try {
          this.receive(msg.data, sender);
        } catch (failure) {
          // One bad batch must not end the subscription (an exception here would stop the client's reader).
          io.event({ type: 'link_error', host: sender, dropped: 0, reason: `node '${node}': a batch could not be delivered: ${(failure as Error).message}` });
        }
      },
    });
    void this.watch();
  }

  /** `count` envelopes serialized (by this node's runtime) for node or mailbox `to` of host `host`. */
  send(host: string, to: string, bytes: Uint8Array, count: number): void {
    if (this.goneHosts.has(host)) return this.io.event({ type: 'link_error', host, dropped: count, reason: `node '${this.node}': host '${host}' is gone` });
    const subject = to.startsWith(HOST_PREFIX) ? this.names.data(host, this.host) : this.names.node(host, to, this.host);
    this.publisher.push(host, subject, [to, this.node, bytes, count, this.creation]);
  }

  /** The host's answer: `node` belongs to `host` (null: to none). Items waiting for it go on. */
  owner(node: string, host: string | null): void {
    this.asked.delete(node);
    if (this.owners.size >= MAX_OWNERS) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(node, host ?? '');
    for (const [sender, parked] of [...this.parked]) {
      this.parked.delete(sender);
      this.resume(sender, parked);
    }
    // No owner now (maybe not claimed yet): asked again next time, not remembered.
    if (host === null) this.owners.delete(node);
  }

  /** Host `host` was declared gone: nothing it sends is taken until `hostUp`; what waits to go to it is dropped. */
  hostGone(host: string): void {
    this.goneHosts.add(host);
    this.publisher.forget(host, `node '${this.node}': host '${host}' is gone`);
    // What it sent that waits for an owner's answer is from before too.
    const parked = this.parked.get(host);
    this.parked.delete(host);
    const dropped = (parked ?? []).reduce((n, { items, start }) => n + items.slice(start).reduce((m, item) => m + (isNotice(item) ? 0 : item[3]), 0), 0);
    if (dropped)
      this.io.event({ type: 'link_error', host, dropped, reason: `node '${this.node}': from host '${host}', declared gone before it was delivered` });
  }

  hostUp(host: string): void {
    this.goneHosts.delete(host);
  }

  /**
   * Incarnations up to `creation` of `node` (a node or mailbox of host `host`) went down: what
   * they sent that is on its way is taken in first, and what waits for its owner's answer (its
   * owner is known now); settles once the rest would be dropped. For every incarnation (its host
   * declared gone, see `hostGone`) at once.
   */
  async down(node: string, host: string, creation: number): Promise<void> {
    // Its host declared gone (`hostGone` came first: nothing from it is taken), no wait.
    if (creation < EVERY_INCARNATION) {
      if (!this.owners.has(node)) this.owner(node, host);
      await this.fence();
      if (creation > (this.fenced.get(node) ?? -1)) this.fenced.set(node, creation);
    }
    // A later incarnation may run on another host.
    this.owners.delete(node);
  }

  /** Settles once everything this node sent has reached the server (before its thread ends). */
  drain(): Promise<void> {
    return this.fence();
  }

  close(): void {
    void this.nc.close().catch(() => {});
  }

  /** Everything published so far has reached the server and everything routed here before has arrived (or FENCE_MS passed). */
  private async fence(): Promise<void> {
    this.publisher.flush();
    if (this.publisher.connected && !this.nc.isClosed()) await flushedWithin(this.nc, FENCE_MS);
  }

  private receive(data: Uint8Array, sender: string): void {
    let items: WireItem[];
    try {
      items = decodeItems(data);
    } catch (error) {
      return this.io.event({
        type: 'link_error',
        host: sender,
        dropped: 0,
        reason: `node '${this.node}': a batch could not be decoded: ${(error as Error).message}`,
      });
    }
    if (this.goneHosts.has(sender)) {
      const dropped = items.reduce((n, item) => n + (isNotice(item) ? 0 : item[3]), 0);
      return this.io.event({ type: 'link_error', host: sender, dropped, reason: `node '${this.node}': from host '${sender}' after it was declared gone` });
    }
    const parked = this.parked.get(sender);
    if (parked) parked.push({ items, start: 0 });
    else this.resume(sender, [{ items, start: 0 }]);
  }

  /** Delivers parked items of `sender` in order, until one needs an owner not known yet. */
  private resume(sender: string, parked: Parked): void {
    let late = 0;
    try {
      while (parked.length) {
        const batch = parked[0]!;
        const { items } = batch;
        for (; batch.start < items.length; batch.start++) {
          const item = items[batch.start]!;
          if (isNotice(item) || item[0] !== this.node || !(Number.isSafeInteger(item[4]) && item[4] >= 0)) {
            this.io.event({ type: 'forged', host: sender, node: String(item[1]), dropped: isNotice(item) ? 0 : item[3] });
            continue;
          }
          const [, from, bytes, count, creation] = item;
          const owner = from.startsWith(HOST_PREFIX) ? from.slice(HOST_PREFIX.length) : this.owners.get(from);
          if (owner === undefined) {
            this.parked.set(sender, parked);
            const asked = this.asked.get(from);
            if (asked === undefined || Date.now() - asked > ASK_MS) {
              this.asked.set(from, Date.now());
              this.io.whois(from);
            }
            return;
          }
          if (owner !== sender) this.io.event({ type: 'forged', host: sender, node: from, dropped: count });
          else if (creation <= (this.fenced.get(from) ?? -1) || this.goneHosts.has(sender)) late += count;
          else this.io.deliver(bytes, from);
        }
        parked.shift();
      }
    } finally {
      if (late)
        this.io.event({
          type: 'link_error',
          host: sender,
          dropped: late,
          reason: `node '${this.node}': sent by an incarnation of host '${sender}' declared down, arriving after: not delivered after the noconnection`,
        });
    }
  }

  private async watch(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.publisher.connected = false;
        this.io.event({ type: 'connection', status: 'disconnect', detail: status.server, node: this.node });
      } else if (status.type === 'reconnect') {
        this.publisher.connected = true;
        this.publisher.flush();
        this.io.event({ type: 'connection', status: 'reconnect', detail: status.server, node: this.node });
      } else if (status.type === 'error') {
        this.io.event({ type: 'connection', status: 'error', detail: status.error.message, node: this.node });
      }
    }
  }
}
