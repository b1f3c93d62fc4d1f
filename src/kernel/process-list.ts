/**
 * The processes in one module version's code: an intrusive doubly linked list through the
 * processes themselves (a process is in one version at a time), so moving a process between
 * versions allocates nothing and costs O(1). A Set of 10^6 processes rehashed as it grew, a
 * tenth of a spawn at that scale.
 */
import type { Process } from './proc.js';

export class ProcessList implements Iterable<Process> {
  private head: Process | null = null;
  private tail: Process | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `proc`, which is in no list, at the end (the order is the order of arrival, as a Set's). */
  add(proc: Process): void {
    proc.versionPrev = this.tail;
    proc.versionNext = null;
    if (this.tail !== null) this.tail.versionNext = proc;
    else this.head = proc;
    this.tail = proc;
    this.count++;
  }

  /** Removes `proc`, which is in this list. */
  delete(proc: Process): void {
    const prev = proc.versionPrev;
    const next = proc.versionNext;
    if (prev !== null) prev.versionNext = next;
    else this.head = next;
    if (next !== null) next.versionPrev = prev;
    else this.tail = prev;
    proc.versionPrev = null;
    proc.versionNext = null;
    this.count--;
  }

  /** Removing the process being visited is allowed. */
  *[Symbol.iterator](): IterableIterator<Process> {
    for (let proc = this.head; proc !== null;) {
      const next = proc.versionNext;
      yield proc;
      proc = next;
    }
  }
}
