/**
 * The envelopes a node's processes sent to other nodes (or the host) during a slice, one batch
 * per node, handed to the platform when the slice ends: one post per node per slice instead of
 * one per message.
 *
 * A batch the platform answers with "full" (the channel to that node is at its window) is reported
 * to `onFull`: the scheduler's holds (`holds.ts`) do flow control; the outbox only sends.
 */
import type { KernelPlatform } from './platform.js';
import type { Envelope } from './signals.js';

/** Envelopes per post to another node: larger structured clones get slower per message. */
const MAX_BATCH = 4096;

export class Outbox {
  private readonly batches = new Map<string, Envelope[]>();
  constructor(
    private readonly platform: KernelPlatform,
    /** The platform answered a batch for `node` with "full". */
    private readonly onFull: (node: string) => void,
  ) {}

  get empty(): boolean {
    return this.batches.size === 0;
  }

  /** Adds an envelope for `node`. True when it is the first one waiting: the caller sees that a flush will come. */
  add(node: string, envelope: Envelope): boolean {
    const batch = this.batches.get(node);
    if (batch === undefined) {
      this.batches.set(node, [envelope]);
      return true;
    }
    batch.push(envelope);
    if (batch.length >= MAX_BATCH) {
      this.batches.delete(node);
      this.send(node, batch);
    }
    return false;
  }

  /**
   * Each batch leaves the outbox before it is handed over: if the CPU limit cuts the flush, the
   * batches already handed over are not sent again by the next one (at most once, never twice).
   */
  flush(): void {
    while (this.batches.size) {
      const [node, batch] = this.batches.entries().next().value as [string, Envelope[]];
      this.batches.delete(node);
      this.send(node, batch);
    }
  }

  private send(node: string, batch: Envelope[]): void {
    if (this.platform.outbound(node, batch) === true) this.onFull(node);
  }
}
