/**
 * The node's side of flow control between nodes, as the BEAM's busy distribution port (owned by
 * the scheduler). When the platform answers a batch with "full" (the channel to that node holds as
 * much as the receiver has not yet taken in as it allows), the node is *full* until the platform
 * gives `credit` back. A process that sends to a full node is *held*: it runs no further step until
 * credit returns (its sends never fail and nothing is dropped; what it sent in the step that found
 * the node full still leaves, so the channel goes over its window by at most one step's sends per
 * process, and the outbox's batch in flight when "full" came back). A held process that was waiting
 * in a receive stays held when a message wakes it. A process that leaves the node (it ended, or
 * moved away) is forgotten at once: `holding()` counts only processes still here.
 *
 * Vocabulary: *full* — a destination node whose channel is at its window; *held* — a process that
 * sent to a full node, kept out of the run queue until credit; *parked* — a held process taken from
 * the run queue, put back with credit.
 */
import type { Process } from './proc.js';

export class Holds {
  /** Full nodes, each with the held processes that were due to run (parked), in the order they were held. */
  private readonly full = new Map<string, Process[]>();
  /** Each held process and the full node it waits for. */
  private readonly held = new Map<Process, string>();

  /** The platform answered a batch for `node` with "full": senders to it are held until `credit`. */
  fill(node: string): void {
    if (!this.full.has(node)) this.full.set(node, []);
  }

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

  /** The platform gave credit for `node` (the receiver took batches in, or went down): its parked processes, to run again. */
  credit(node: string): Process[] {
    const parked = this.full.get(node);
    if (parked === undefined) return [];
    this.full.delete(node);
    for (const [proc, on] of this.held) if (on === node) this.held.delete(proc);
    return parked;
  }

  /** `proc` left the node (ended or moved away): it is held no more, and its parked entry goes (nothing keeps it reachable). */
  forget(proc: Process): void {
    const node = this.held.get(proc);
    if (node === undefined) return;
    this.held.delete(proc);
    const parked = this.full.get(node);
    const at = parked ? parked.indexOf(proc) : -1;
    if (at >= 0) parked!.splice(at, 1);
  }

  /** How many processes are held, per full node (introspection and tests). */
  holding(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const node of this.held.values()) counts[node] = (counts[node] ?? 0) + 1;
    return counts;
  }

  private park(proc: Process, node: string): void {
    proc.status = 'runnable';
    proc.queued = true;
    this.full.get(node)!.push(proc);
  }
}
