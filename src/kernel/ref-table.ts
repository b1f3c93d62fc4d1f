/**
 * A process's monitors (ref → the process it watches) or watchers (ref → the process watching
 * it). Every `server.call` adds one entry to each side and removes it when the reply comes, so
 * this is on the hottest path: a V8 `Map` re-allocates its table whenever a delete leaves it
 * nearly empty (measured: ~130 ns per set + delete with a fresh ref, and most of a call's
 * garbage). While small, the entries live in one flat array searched linearly (a call's ref is
 * the very string stored, so `===` is a pointer compare); past SMALL entries, a Map.
 */
import type { Pid } from './pid.js';

const SMALL = 8;

export class RefTable {
  /**
   * [ref0, pid0, ref1, pid1, …] in insertion order, while small; `count` entries are used. The
   * array never shrinks: popping it empty made V8 trim and regrow its store on every call.
   */
  private flat: (string | undefined)[] | null = new Array<string | undefined>(4);
  private count = 0;
  private map: Map<string, Pid> | null = null;

  static of(entries: Iterable<[string, Pid]>): RefTable {
    const table = new RefTable();
    for (const [ref, pid] of entries) table.set(ref, pid);
    return table;
  }

  get size(): number {
    return this.map !== null ? this.map.size : this.count;
  }

  get(ref: string): Pid | undefined {
    if (this.map !== null) return this.map.get(ref);
    const flat = this.flat!;
    const end = this.count * 2;
    for (let i = 0; i < end; i += 2) if (flat[i] === ref) return flat[i + 1] as Pid;
    return undefined;
  }

  has(ref: string): boolean {
    return this.get(ref) !== undefined;
  }

  set(ref: string, pid: Pid): void {
    if (this.map !== null) {
      this.map.set(ref, pid);
      return;
    }
    let flat = this.flat!;
    const end = this.count * 2;
    for (let i = 0; i < end; i += 2) {
      if (flat[i] !== ref) continue;
      flat[i + 1] = pid;
      return;
    }
    if (end === flat.length) {
      if (this.count >= SMALL) return this.toMap(ref, pid);
      const bigger = new Array<string | undefined>(flat.length * 2);
      for (let i = 0; i < end; i++) bigger[i] = flat[i];
      flat = this.flat = bigger;
    }
    flat[end] = ref;
    flat[end + 1] = pid;
    this.count++;
  }

  /** Removes `ref`; true when it was there. */
  delete(ref: string): boolean {
    if (this.map !== null) return this.map.delete(ref);
    const flat = this.flat!;
    const end = this.count * 2;
    for (let i = 0; i < end; i += 2) {
      if (flat[i] !== ref) continue;
      // Keep the order (DOWNs and listings follow it).
      for (let j = i + 2; j < end; j++) flat[j - 2] = flat[j];
      flat[end - 2] = undefined;
      flat[end - 1] = undefined;
      this.count--;
      return true;
    }
    return false;
  }

  /** [ref, pid] pairs in insertion order. Deleting the entry being visited is allowed. */
  *[Symbol.iterator](): IterableIterator<[string, Pid]> {
    if (this.map !== null) {
      yield* this.map;
      return;
    }
    const flat = this.flat!;
    for (let i = 0; i < this.count * 2;) {
      const ref = flat[i]!;
      yield [ref, flat[i + 1] as Pid];
      // The visited entry may have been deleted meanwhile: step only if it is still here.
      if (flat[i] === ref) i += 2;
    }
  }

  *values(): IterableIterator<Pid> {
    for (const [, pid] of this) yield pid;
  }

  private toMap(ref: string, pid: Pid): void {
    const flat = this.flat!;
    const map = (this.map = new Map<string, Pid>());
    for (let i = 0; i < this.count * 2; i += 2) map.set(flat[i]!, flat[i + 1] as Pid);
    map.set(ref, pid);
    this.flat = null;
    this.count = 0;
  }
}
