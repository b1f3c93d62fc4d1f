/**
 * This host's side of the data path between hosts (its main thread). What it sends other hosts:
 * its mailboxes' envelopes, the batches of its nodes without a NATS connection of their own (dense
 * nodes), and its notices (a node down, a process moved or ended), each on the subject of what it
 * is for (src/net/subjects.ts), through a `Publisher` (batched, framed, in order). What it reads:
 * its own data subject (its mailboxes and notices from other hosts) and the node subjects of its
 * nodes that have no connection of their own. A node with its own connection (a thread or isolate
 * node of its own worker: src/node/nats-endpoint.ts) sends and reads its batches itself, so a
 * call between hosts crosses no main thread but the caller's.
 *
 * Each node batch is serialized (src/net/envelopes.ts) by the sending node's thread (its trusted half, after an
 * isolate's boundary checks) and handed undecoded to the receiving node's thread, which decodes
 * it. One connection here, so NATS keeps this host's order per subject; a node's down notice
 * follows what the node sent through here, and receivers drop what its incarnation sent that
 * arrives after the notice (from its own connection: src/cluster/inbound.ts, nats-endpoint.ts).
 */
import { encodeEnvelopes } from '../net/envelopes.js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Pid } from '../kernel/pid.js';
import type { Envelope } from '../kernel/signals.js';
import type { MoveEnd, ProcessLocation } from '../host/migration.js';
import type { ClusterEvent } from './hooks.js';
import type { Names, Settings } from './options.js';
import { senderOf } from '../net/subjects.js';
import { decodeItems, type WireItem } from '../net/frames.js';
import { flushedWithin, Publisher } from '../net/publisher.js';
import { HOST_PREFIX } from '../kernel/pid.js';

/** How long `fence` waits for the server's answer before it gives up waiting (the connection is down). */
const FENCE_MS = 2_000;

export class Link {
  private readonly publisher: Publisher;
  /** This host's data subject ('') and the node subjects it reads for its nodes. */
  private readonly subs = new Map<string, Subscription>();
  private batchesIn = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly settings: Settings,
    /**
     * Items from host `from` (the last token of the subject, which NATS permissions tie to that
     * host), read on the node subject of `to`, or on this host's data subject (`to` undefined).
     */
    private readonly receive: (items: WireItem[], from: string, to: string | undefined) => void,
    private readonly emit: (event: ClusterEvent) => void,
  ) {
    this.publisher = new Publisher(
      {
        publish: (subject, bytes) => nc.publish(subject, bytes),
        maxPayload: () => nc.info?.max_payload,
        closed: () => nc.isClosed(),
        dropped: (host, dropped, reason) => emit({ type: 'link_error', host, dropped, reason }),
        overflow: (host, dropped) => emit({ type: 'link_overflow', host, dropped }),
      },
      settings.maxPendingEnvelopes,
    );
  }

  /** Batches and envelopes sent and received, for tests and the bench. */
  get stats(): { batchesOut: number; batchesIn: number; envelopesOut: number } {
    return { ...this.publisher.stats, batchesIn: this.batchesIn };
  }

  /** False while the connection to NATS is down: batches wait (bounded). */
  get connected(): boolean {
    return this.publisher.connected;
  }
  set connected(up: boolean) {
    this.publisher.connected = up;
  }

  start(): void {
    this.read('', this.names.data(this.settings.host, '*'));
  }

  /** Reads node `node`'s subject for it (a node of this host without a connection of its own). */
  serve(node: string): void {
    if (!this.subs.has(node)) this.read(node, this.names.node(this.settings.host, node, '*'));
  }

  /** Stops reading node `node`'s subject (it went down). */
  unserve(node: string): void {
    this.subs.get(node)?.unsubscribe();
    this.subs.delete(node);
  }

  /** Envelopes from `from` (this host's mailboxes, or one of its nodes, of `creation`) for node `node` of host `host`, serialized here. */
  send(host: string, node: string, from: string, creation: number, envelopes: Envelope[]): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelopes(envelopes);
    } catch (error) {
      if (envelopes.length < 2) return this.emit({ type: 'link_error', host, dropped: 1, reason: `not serializable: ${(error as Error).message}` });
      const half = envelopes.length >> 1;
      this.send(host, node, from, creation, envelopes.slice(0, half));
      return this.send(host, node, from, creation, envelopes.slice(half));
    }
    this.sendEncoded(host, node, from, creation, bytes, envelopes.length);
  }

  /** The same, `count` envelopes serialized already (by the sending node's thread): queued as they are. */
  sendEncoded(host: string, node: string, from: string, creation: number, bytes: Uint8Array, count: number): void {
    const subject = node.startsWith(HOST_PREFIX) ? this.names.data(host, this.settings.host) : this.names.node(host, node, this.settings.host);
    this.publisher.push(host, subject, [node, from, bytes, count, creation]);
  }

  /** Tells every host in `hosts` that incarnation `creation` of `node` of this host went down, after what it sent through here. */
  nodeDown(hosts: string[], node: string, lost: Pid[], creation: number): void {
    for (const host of hosts) this.notice(host, ['!down', node, lost, creation]);
  }

  /** Tells every host in `hosts` where a moved process runs now. */
  moved(hosts: string[], location: ProcessLocation): void {
    for (const host of hosts) this.notice(host, ['!moved', location]);
  }

  /** Tells every host in `hosts` that a moved process this host ran ended, after what it sent before. */
  ended(hosts: string[], end: MoveEnd): void {
    for (const host of hosts) this.notice(host, ['!ended', end]);
  }

  /** Sends every queued batch now (if connected). */
  flush(): void {
    this.publisher.flush();
  }

  /**
   * Settles once everything queued so far has reached the NATS server (what anyone publishes
   * after it on the same server is routed after it): true; false if that is not confirmed within
   * FENCE_MS, or the connection is down.
   */
  async fence(): Promise<boolean> {
    this.publisher.flush();
    return this.publisher.connected && !this.nc.isClosed() && flushedWithin(this.nc, FENCE_MS);
  }

  stop(): void {
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
  }

  /** Drops what waits for `host`, which is gone (at most once: nothing from before reaches it later). */
  forget(host: string): void {
    this.publisher.forget(host, `host '${host}' is gone`);
  }

  private notice(host: string, notice: WireItem): void {
    this.publisher.push(host, this.names.data(host, this.settings.host), notice);
  }

  private read(to: string, subject: string): void {
    const sub = this.nc.subscribe(subject, { slow: this.settings.slowPendingBatches });
    this.subs.set(to, sub);
    void (async () => {
      for await (const msg of sub) {
        const from = senderOf(msg.subject);
        let items: WireItem[];
        try {
          items = decodeItems(msg.data);
        } catch (error) {
          this.emit({ type: 'link_error', host: from, dropped: 0, reason: `a batch could not be decoded: ${(error as Error).message}` });
          continue;
        }
        this.batchesIn++;
        try {
          this.receive(items, from, to || undefined);
        } catch (error) {
          // One bad batch must not end the subscription.
          this.emit({ type: 'link_error', host: from, dropped: 0, reason: `a batch could not be delivered: ${(error as Error).message}` });
        }
      }
    })();
  }
}
