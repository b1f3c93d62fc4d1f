/**
 * The data path between hosts. Envelopes for a node of another host are queued per destination
 * host and leave as one NATS message (split only to stay under the server's max payload) on that
 * host's data subject. Each node batch in it is v8-serialized on its own (the structured-clone
 * format, which is what a message between nodes may hold) — by the sending node's own thread, in
 * its trusted half (src/node/runtime.ts), so this host only frames the bytes (wire.ts) — and handed
 * undecoded to the receiving node's thread, which decodes it. One connection per host, so NATS
 * keeps each sender's order; core NATS delivers at most once, so there are no duplicates.
 * Node-down notices travel in the same queues, so they never overtake the envelopes a node sent
 * before it died.
 *
 * When the link is idle a batch leaves at the end of the task that queued it (a call's round trip
 * waits for no tick); while batches keep coming, what arrives within one turn of the event loop
 * leaves together, once per turn.
 *
 * While NATS is unreachable the queues hold up to `maxPendingEnvelopes` envelopes and are sent on
 * reconnect; past that, new envelopes are dropped and reported (`link_overflow`), never silently.
 * While connected nothing is dropped: a burst of more than FLUSH_ENVELOPES goes out at once.
 */
import { deserialize, serialize } from 'node:v8';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Pid } from '../kernel/pid.js';
import type { Envelope } from '../kernel/signals.js';
import type { MoveEnd, ProcessLocation } from '../host/migration.js';
import type { ClusterEvent } from './hooks.js';
import type { Names, Settings } from './options.js';
import { senderOf } from './subjects.js';
import { decodeItems, encodeItems, isNotice, type WireItem } from './wire.js';

/** How many envelopes an item carries (notices carry none). */
const envelopesIn = (item: WireItem): number => (isNotice(item) ? 0 : item[3]);

/** What an item adds to a batch, near enough to keep batches under the max payload: its bytes, and room for the rest. */
const sizeOf = (item: WireItem): number => (isNotice(item) ? 256 : item[2].byteLength + item[0].length + item[1].length + 32);

const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room kept in each NATS message beyond what `sizeOf` counts. */
const HEADROOM = 1024;
/** A burst larger than this leaves at once rather than at the end of the turn (batches stay large, memory bounded). */
const FLUSH_ENVELOPES = 8_192;

export class Link {
  private readonly out = new Map<string, WireItem[]>();
  private pending = 0;
  private flushQueued = false;
  /** A batch left in this turn of the event loop: what is queued next waits for the turn's end. */
  private busy = false;
  private sub: Subscription | undefined;
  /** False while the connection to NATS is down: batches wait (bounded). */
  connected = true;
  /** Batches and envelopes sent and received, for tests and the bench. */
  readonly stats = { batchesOut: 0, batchesIn: 0, envelopesOut: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly settings: Settings,
    /** Items from host `from` (the last token of the subject it came on, which NATS permissions tie to that host). */
    private readonly receive: (items: WireItem[], from: string) => void,
    private readonly emit: (event: ClusterEvent) => void,
  ) {}

  start(): void {
    const sub = this.nc.subscribe(this.names.data(this.settings.host, '*'), { slow: this.settings.slowPendingBatches });
    this.sub = sub;
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
        this.stats.batchesIn++;
        try {
          this.receive(items, from);
        } catch (error) {
          // One bad batch must not end the subscription.
          this.emit({ type: 'link_error', host: from, dropped: 0, reason: `a batch could not be delivered: ${(error as Error).message}` });
        }
      }
    })();
  }

  /** Envelopes from `from` (this host, or one of its nodes) for node `node` of host `host`, v8-serialized here. */
  send(host: string, node: string, from: string, envelopes: Envelope[]): void {
    let bytes: Uint8Array;
    try {
      bytes = serialize(envelopes);
    } catch (error) {
      if (envelopes.length < 2) return this.emit({ type: 'link_error', host, dropped: 1, reason: `not serializable: ${(error as Error).message}` });
      const half = envelopes.length >> 1;
      this.send(host, node, from, envelopes.slice(0, half));
      return this.send(host, node, from, envelopes.slice(half));
    }
    this.sendEncoded(host, node, from, bytes, envelopes.length);
  }

  /** The same, `count` envelopes v8-serialized already (by the sending node's thread): queued as they are. */
  sendEncoded(host: string, node: string, from: string, bytes: Uint8Array, count: number): void {
    // The bound is for an outage only: while connected, a burst goes out as it comes.
    if (!this.connected && this.pending + count > this.settings.maxPendingEnvelopes) {
      this.emit({ type: 'link_overflow', host, dropped: count });
      return;
    }
    this.push(host, [node, from, bytes, count], count);
    if (this.connected && this.pending >= FLUSH_ENVELOPES) this.flush();
  }

  /** Tells every host in `hosts` that `node` of this host went down, after what it sent before. */
  nodeDown(hosts: string[], node: string, lost: Pid[]): void {
    for (const host of hosts) this.push(host, ['!down', node, lost], 1);
  }

  /** Tells every host in `hosts` where a moved process runs now. */
  moved(hosts: string[], location: ProcessLocation): void {
    for (const host of hosts) this.push(host, ['!moved', location], 1);
  }

  /** Tells every host in `hosts` that a moved process this host ran ended, after what it sent before. */
  ended(hosts: string[], end: MoveEnd): void {
    for (const host of hosts) this.push(host, ['!ended', end], 1);
  }

  /** Sends every queued batch now (if connected). */
  flush(): void {
    this.flushQueued = false;
    if (!this.connected || this.nc.isClosed() || !this.out.size) return;
    const batches = [...this.out];
    this.out.clear();
    this.pending = 0;
    const max = this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    for (const [host, items] of batches) this.publish(host, items, max);
    if (!this.busy) {
      this.busy = true;
      setImmediate(() => {
        this.busy = false;
      });
    }
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  /** Drops what waits for `host`, which is gone (at most once: nothing from before reaches it later). */
  forget(host: string): void {
    const items = this.out.get(host);
    if (!items) return;
    this.out.delete(host);
    for (const item of items) this.pending -= isNotice(item) ? 1 : item[3];
    this.dropped(host, items, `host '${host}' is gone`);
  }

  private push(host: string, item: WireItem, count: number): void {
    let items = this.out.get(host);
    if (!items) this.out.set(host, (items = []));
    items.push(item);
    this.pending += count;
    if (this.flushQueued) return;
    this.flushQueued = true;
    // Idle: at the end of this task. Busy: at the end of this turn, with whatever else comes in it.
    if (this.busy) setImmediate(() => this.flush());
    else queueMicrotask(() => this.flush());
  }

  /** The items for `host` in as few NATS messages as the max payload allows, in order. */
  private publish(host: string, items: WireItem[], max: number): void {
    let start = 0;
    let size = 0;
    for (let i = 0; i < items.length; i++) {
      const itemSize = sizeOf(items[i]!);
      if (i > start && size + itemSize > max - HEADROOM) {
        this.publishBatch(host, items.slice(start, i), max);
        start = i;
        size = 0;
      }
      size += itemSize;
    }
    this.publishBatch(host, start ? items.slice(start) : items, max);
  }

  private publishBatch(host: string, items: WireItem[], max: number): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeItems(items);
    } catch (error) {
      return this.dropped(host, items, `not serializable: ${(error as Error).message}`);
    }
    if (bytes.length > max) return this.split(host, items, max);
    try {
      this.nc.publish(this.names.data(host, this.settings.host), bytes);
      this.stats.batchesOut++;
      for (const item of items) this.stats.envelopesOut += envelopesIn(item);
    } catch (error) {
      this.dropped(host, items, (error as Error).message);
    }
  }

  /** In order: halves of the items, or of one item's envelopes (decoded here, the one time this host must). */
  private split(host: string, items: WireItem[], max: number): void {
    if (items.length > 1) {
      const half = items.length >> 1;
      this.publishBatch(host, items.slice(0, half), max);
      this.publishBatch(host, items.slice(half), max);
      return;
    }
    const item = items[0]!;
    if (isNotice(item) || item[3] < 2) return this.dropped(host, items, `larger than the max payload (${max} bytes)`);
    const [dst, src, bytes] = item;
    let envelopes: Envelope[];
    try {
      envelopes = deserialize(bytes) as Envelope[];
    } catch (error) {
      return this.dropped(host, items, `not decodable: ${(error as Error).message}`);
    }
    const half = envelopes.length >> 1;
    for (const part of [envelopes.slice(0, half), envelopes.slice(half)]) this.publishBatch(host, [[dst, src, serialize(part), part.length]], max);
  }

  private dropped(host: string, items: WireItem[], reason: string): void {
    const dropped = items.reduce((n, item) => n + envelopesIn(item), 0);
    this.emit({ type: 'link_error', host, dropped, reason });
  }
}
