/**
 * The run queue of one node's scheduler: processes in the order of their turns. A turn that the
 * end of a slice cut resumes first in the next slice, with the reductions it had left: a slice
 * ends for the host's I/O, not for the process. Sent to the back instead, a receiver draining a
 * stream lost the rest of its turn at each slice end and its backlog grew to 10^5 of 10^6
 * messages, each one outliving scavenges. A turn resumes once: cut again, the process goes to
 * the back, so a process of heavy steps holds two slices at most.
 */
import type { Process } from './proc.js';
import { RingQueue } from './queue.js';

export class RunQueue {
  private readonly queue = new RingQueue<Process>();
  /** The process whose turn the running slice cut. */
  private carried: Process | null = null;
  /** The process whose cut turn the running slice resumes, until it runs. */
  private resuming: Process | null = null;
  /** The reductions the cut turn had left. */
  private carriedBudget = 0;

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

  /** The slice ends in the middle of `proc`'s new turn, with `budget` reductions left: it goes first. */
  carry(proc: Process, budget: number): void {
    this.queue.unshift(proc);
    this.carried = proc;
    this.carriedBudget = budget;
  }

  /** The slice was abandoned: no turn carries over. */
  forget(): void {
    this.carried = null;
  }
}
