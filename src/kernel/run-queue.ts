/**
 * The run queue of one node's scheduler: processes in the order of their turns. A turn that the
 * end of a slice cut resumes first in the next slice, with the reductions it had left: a slice
 * ends for the host's I/O, not for the process. Sent to the back instead, a receiver draining a
 * stream lost the rest of its turn at each slice end and its backlog grew to 10^5 of 10^6
 * messages, each one outliving scavenges. A turn resumes once: cut again, the process goes to
 * the back, so a process of heavy steps holds two slices at most.
 *
 * A turn whose last step overran its budget (a step is never cut, and a step of 1024 sends costs
 * 1025) leaves the process a reduction debt, paid in its next turn. Without it a sender of 1024
 * sends per step ran two steps per turn, 2048 sends, while its receiver took 2000 messages per
 * turn: the receiver's backlog grew to ~24k of 10^6 messages (~2.8k with the debt).
 */
import type { Process } from './proc.js';
import { RingQueue } from './queue.js';

/** Reductions (steps and sends) a process may use in a turn before it goes to the back of the run queue. */
export const REDUCTIONS = 2000;
/**
 * The most of an overrun carried into the next turn: less than a whole turn, so every turn runs
 * at least one step. Steps that cost more than a turn each are not evened out.
 */
const MAX_DEBT = REDUCTIONS - 1;

export class RunQueue {
  private readonly queue = new RingQueue<Process>();
  /** The process whose turn the running slice cut. */
  private carried: Process | null = null;
  /** The process whose cut turn the running slice resumes, until it runs. */
  private resuming: Process | null = null;
  /** The reductions the cut turn had left. */
  private carriedBudget = 0;
  /**
   * Debts of queued processes (`owe`). Only a process that overran its turn has one, until its next
   * turn pays it or it leaves the node (a suspended one pays after it resumes, a held one after
   * credit): kept here, an idle process carries no field for it, and as a field written on some
   * processes only it gave the sender's object a new shape, which made a 10^6-message stream inside
   * a thread node ~1.7× slower.
   */
  private readonly debts = new Map<Process, number>();
  /** How many debts `debts` holds. */
  private owing = 0;

  get length(): number {
    return this.queue.length;
  }

  push(proc: Process): void {
    this.queue.push(proc);
  }

  shift(): Process | undefined {
    return this.queue.shift();
  }

  /** A slice begins: the turn the previous one cut, if any, is the one to resume. */
  beginSlice(): void {
    this.resuming = this.carried;
    this.carried = null;
  }

  /** Whether the running slice cut a turn: it ends then. */
  get cut(): boolean {
    return this.carried !== null;
  }

  /** `proc`'s turn begins: the reductions it has left of a cut turn it resumes, or -1 for a new turn. */
  beginTurn(proc: Process): number {
    const resumes = proc === this.resuming;
    this.resuming = null;
    return resumes ? this.carriedBudget : -1;
  }

  /** The reductions of a new turn of `proc`: REDUCTIONS less its debt, which this pays. */
  newBudget(proc: Process): number {
    // A field's read, not the map's: a ping-pong pays this at every turn.
    if (this.owing === 0) return REDUCTIONS;
    const debt = this.debts.get(proc);
    if (debt === undefined) return REDUCTIONS;
    this.forgive(proc);
    return REDUCTIONS - debt;
  }

  /** `proc`'s turn spent its budget, ending at `budget` (negative when its last step overran): the overrun is its debt. */
  owe(proc: Process, budget: number): void {
    if (budget >= 0) return;
    if (!this.debts.has(proc)) this.owing++;
    this.debts.set(proc, Math.min(-budget, MAX_DEBT));
  }

  /** `proc` left the node (ended, moved away) or paid: it owes nothing (nothing here keeps it reachable). */
  forgive(proc: Process): void {
    if (this.owing !== 0 && this.debts.delete(proc)) this.owing--;
  }

  /** The slice ends in the middle of `proc`'s new turn, with `budget` reductions left: it is queued first. */
  carry(proc: Process, budget: number): void {
    proc.status = 'runnable';
    proc.queued = true;
    this.queue.unshift(proc);
    this.carried = proc;
    this.carriedBudget = budget;
  }

  /** The slice was abandoned: no turn carries over. */
  forget(): void {
    this.carried = null;
  }
}
