/**
 * The envelopes a node's processes sent to other nodes (or the host) during a slice, one batch
 * per node, handed to the platform when the slice ends: one post per node per slice instead of
 * one per message.
 *
 * It also keeps the node's side of flow control between nodes, as the BEAM's busy distribution
 * port: when the platform answers a batch with "full" (the channel to that node holds as many
 * batches as the receiver has not yet taken in as it allows), the node is *full* until the
 * platform gives `credit` back. A process that sends to a full node is *held*: it runs no further
 * step until credit returns (its sends never fail and nothing is dropped; what it sent in the step
 * that found the node full still leaves, so the channel goes over its window by at most one step's
 * sends per process). A held process that was waiting in a receive stays held when a message wakes it.
 *
 * Vocabulary: *full* — a destination node whose channel is at its window; *held* — a process that
 * sent to a full node, kept out of the run queue until credit.
 */
import type { KernelPlatform } from './kernel.js';
import type { Process } from './proc.js';
import type { Envelope } from './signals.js';

/** Envelopes per post to another node: larger structured clones get slower per message. */
const MAX_BATCH = 4096;

export class Outbox {
  private readonly batches = new Map<string, Envelope[]>();
  /** Full nodes, each with the held processes that were due to run, in the order they were held. */
  private readonly full = new Map<string, Process[]>();
  /** Each held process and the full node it waits for. */
  private readonly held = new Map<Process, string>();

  constructor(private readonly platform: KernelPlatform) {}

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
    if (this.platform.outbound(node, batch) === true && !this.full.has(node)) this.full.set(node, []);
  }

  // ---- flow control ---------------------------------------------------------------------------

  /** Whether `node`'s channel is at its window: a process sending to it is held after its step. */
  isFull(node: string): boolean {
    return this.full.size !== 0 && this.full.has(node);
  }

  /** `proc` sent to the full `node`: it runs no further step until credit (`ready`: it has one queued now). */
  hold(proc: Process, node: string, ready: boolean): void {
    if (!this.full.has(node)) return;
    this.held.set(proc, node);
    if (ready) this.park(proc, node);
  }

  /**
   * Whether `proc`, taken from the run queue, is held: it is then parked (it stays `queued`, so
   * nothing queues it twice, and is put back in the run queue with credit). Cheap when none is held.
   */
  keeps(proc: Process): boolean {
    if (this.held.size === 0) return false;
    const node = this.held.get(proc);
    if (node === undefined) return false;
    if (!this.full.has(node)) {
      this.held.delete(proc);
      return false;
    }
    this.park(proc, node);
    return true;
  }

  private park(proc: Process, node: string): void {
    proc.status = 'runnable';
    proc.queued = true;
    this.full.get(node)!.push(proc);
  }

  /** The platform gave credit for `node` (the receiver took batches in, or went down): its held processes, to run again. */
  credit(node: string): Process[] {
    const parked = this.full.get(node);
    if (parked === undefined) return [];
    this.full.delete(node);
    for (const [proc, on] of this.held) if (on === node) this.held.delete(proc);
    return parked;
  }

  /** How many processes are held, per full node (introspection and tests). */
  holding(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const node of this.held.values()) counts[node] = (counts[node] ?? 0) + 1;
    return counts;
  }
}
