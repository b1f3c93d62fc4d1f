/**
 * How items leave for NATS, on whichever thread holds the connection (a host's link on the main
 * thread, a node's own connection on its thread): queued per subject, framed (frames.ts) and
 * published as few messages as the server's max payload allows, in order. One connection keeps
 * each subject's order; core NATS delivers at most once, so there are no duplicates.
 *
 * When idle a batch leaves at the end of the task that queued it (a call's round trip waits for
 * no tick); while batches keep coming, what arrives within one turn of the event loop leaves
 * together, once per turn. A burst of more than FLUSH_ENVELOPES leaves at once.
 *
 * While NATS is unreachable the queues hold up to `maxPendingEnvelopes` envelopes, sent on
 * reconnect; past that, new envelopes are dropped and reported (`overflow`), never silently.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../kernel/signals.js';
import { encodeItems, isNotice, type WireItem } from './frames.js';
import { decodeEnvelopes, encodeEnvelopes } from './envelopes.js';
import { within } from '../deadline.js';

/**
 * Whether everything `nc` sent so far reached the NATS server (a PING answered) within `ms`: what
 * anyone publishes on that server afterwards is routed after it. False when not confirmed in time.
 */
export function flushedWithin(nc: Pick<NatsConnection, 'flush'>, ms: number): Promise<boolean> {
  return within(
    nc.flush().then(() => true),
    ms,
    () => new Error('not confirmed in time'),
  ).catch(() => false);
}

/** How many envelopes an item carries (notices carry none). */
export const envelopesIn = (item: WireItem): number => (isNotice(item) ? 0 : item[3]);

/** What an item adds to a message, near enough to keep messages under the max payload: its bytes, and room for the rest. */
const sizeOf = (item: WireItem): number => (isNotice(item) ? 256 : item[2].byteLength + item[0].length + item[1].length + 32);

const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room kept in each NATS message beyond what `sizeOf` counts. */
const HEADROOM = 1024;
/** A burst larger than this leaves at once rather than at the end of the turn (messages stay large, memory bounded). */
const FLUSH_ENVELOPES = 8_192;

/** What a publisher needs of its connection. */
export interface PublisherIo {
  publish(subject: string, bytes: Uint8Array): void;
  /** The server's max payload, once connected. */
  maxPayload(): number | undefined;
  closed(): boolean;
  /** Items for `host` that cannot leave (`count` envelopes), and why. */
  dropped(host: string, count: number, reason: string): void;
  /** Envelopes for `host` refused while disconnected with the queues full. */
  overflow(host: string, count: number): void;
}

interface Queue {
  host: string;
  items: WireItem[];
}

export class Publisher {
  /** Subject → what waits for it, in order. */
  private readonly out = new Map<string, Queue>();
  private pending = 0;
  private flushQueued = false;
  /** A message left in this turn of the event loop: what is queued next waits for the turn's end. */
  private busy = false;
  /** False while the connection to NATS is down: items wait (bounded). */
  connected = true;
  /** NATS messages and envelopes sent, for tests and the bench. */
  readonly stats = { batchesOut: 0, envelopesOut: 0 };

  constructor(
    private readonly io: PublisherIo,
    private readonly maxPendingEnvelopes: number,
  ) {}

  /** Queues `item` for `subject` (read by host `host`). */
  push(host: string, subject: string, item: WireItem): void {
    const count = isNotice(item) ? 1 : item[3];
    // The bound is for an outage only: while connected, a burst goes out as it comes.
    if (!this.connected && !isNotice(item) && this.pending + count > this.maxPendingEnvelopes) return this.io.overflow(host, count);
    let queue = this.out.get(subject);
    if (!queue) this.out.set(subject, (queue = { host, items: [] }));
    queue.items.push(item);
    this.pending += count;
    if (this.connected && this.pending >= FLUSH_ENVELOPES) return this.flush();
    if (this.flushQueued) return;
    this.flushQueued = true;
    // Idle: at the end of this task. Busy: at the end of this turn, with whatever else comes in it.
    if (this.busy) setImmediate(() => this.flush());
    else queueMicrotask(() => this.flush());
  }

  /** Sends everything queued now (if connected). */
  flush(): void {
    this.flushQueued = false;
    if (!this.connected || this.io.closed() || !this.out.size) return;
    const queues = [...this.out];
    this.out.clear();
    this.pending = 0;
    const max = this.io.maxPayload() ?? DEFAULT_MAX_PAYLOAD;
    for (const [subject, { host, items }] of queues) this.publish(host, subject, items, max);
    if (!this.busy) {
      this.busy = true;
      setImmediate(() => {
        this.busy = false;
      });
    }
  }

  /** Drops what waits for `host`, which is gone (at most once: nothing from before reaches it later). */
  forget(host: string, reason: string): void {
    for (const [subject, queue] of this.out) {
      if (queue.host !== host) continue;
      this.out.delete(subject);
      for (const item of queue.items) this.pending -= isNotice(item) ? 1 : item[3];
      this.dropped(host, queue.items, reason);
    }
  }

  /** The items in as few NATS messages as the max payload allows, in order. */
  private publish(host: string, subject: string, items: WireItem[], max: number): void {
    let start = 0;
    let size = 0;
    for (let i = 0; i < items.length; i++) {
      const itemSize = sizeOf(items[i]!);
      if (i > start && size + itemSize > max - HEADROOM) {
        this.publishOne(host, subject, items.slice(start, i), max);
        start = i;
        size = 0;
      }
      size += itemSize;
    }
    this.publishOne(host, subject, start ? items.slice(start) : items, max);
  }

  private publishOne(host: string, subject: string, items: WireItem[], max: number): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeItems(items);
    } catch (error) {
      return this.dropped(host, items, `not serializable: ${(error as Error).message}`);
    }
    if (bytes.length > max) return this.split(host, subject, items, max);
    try {
      this.io.publish(subject, bytes);
      this.stats.batchesOut++;
      for (const item of items) this.stats.envelopesOut += envelopesIn(item);
    } catch (error) {
      this.dropped(host, items, (error as Error).message);
    }
  }

  /** In order: halves of the items, or of one item's envelopes (decoded here, the one time the sender must). */
  private split(host: string, subject: string, items: WireItem[], max: number): void {
    if (items.length > 1) {
      const half = items.length >> 1;
      this.publishOne(host, subject, items.slice(0, half), max);
      this.publishOne(host, subject, items.slice(half), max);
      return;
    }
    const item = items[0]!;
    if (isNotice(item) || item[3] < 2) return this.dropped(host, items, `larger than the max payload (${max} bytes)`);
    const [to, from, bytes, , creation] = item;
    let envelopes: Envelope[];
    try {
      envelopes = decodeEnvelopes(bytes) as Envelope[];
    } catch (error) {
      return this.dropped(host, items, `not decodable: ${(error as Error).message}`);
    }
    const half = envelopes.length >> 1;
    for (const part of [envelopes.slice(0, half), envelopes.slice(half)])
      this.publishOne(host, subject, [[to, from, encodeEnvelopes(part), part.length, creation]], max);
  }

  private dropped(host: string, items: WireItem[], reason: string): void {
    this.io.dropped(
      host,
      items.reduce((n, item) => n + envelopesIn(item), 0),
      reason,
    );
  }
}
