/**
 * Queues that stay O(1) under backlog (`Array.prototype.shift` is O(n) past ~16k elements).
 */

/**
 * A process mailbox: a ring buffer (no allocation per message) that also removes from the middle,
 * which selective receive needs. Taking the i-th message moves the i messages before it by one
 * slot; a receive has already looked at those i messages, so the cost is within the scan's.
 * The buffer is allocated on the first message and given back when a large backlog has drained,
 * so an idle process pays only for this object.
 */
export class Mailbox<T> {
  private items: (T | undefined)[] | null = null;
  private head = 0;
  length = 0;

  push(value: T): void {
    let items = this.items;
    if (items === null) items = this.items = new Array(4);
    else if (this.length === items.length) items = this.grow(items);
    items[(this.head + this.length) & (items.length - 1)] = value;
    this.length++;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const items = this.items!;
    const value = items[this.head];
    items[this.head] = undefined;
    this.head = (this.head + 1) & (items.length - 1);
    if (--this.length === 0) this.emptied(items);
    return value;
  }

  /**
   * Removes the first element (in arrival order) for which `pick` returns something, and returns
   * both. Selective receive: `pick` returns the handler of the first clause that matches.
   */
  takeFirst<R>(pick: (value: T) => R | undefined): { value: T; picked: R } | undefined {
    const items = this.items;
    if (items === null) return undefined;
    const mask = items.length - 1;
    for (let i = 0; i < this.length; i++) {
      const value = items[(this.head + i) & mask] as T;
      const picked = pick(value);
      if (picked === undefined) continue;
      for (let j = i; j > 0; j--) items[(this.head + j) & mask] = items[(this.head + j - 1) & mask];
      items[this.head] = undefined;
      this.head = (this.head + 1) & mask;
      if (--this.length === 0) this.emptied(items);
      return { value, picked };
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.length; i++) yield this.items![(this.head + i) & (this.items!.length - 1)] as T;
  }

  clear(): void {
    this.items = null;
    this.head = 0;
    this.length = 0;
  }

  private grow(items: (T | undefined)[]): (T | undefined)[] {
    const bigger: (T | undefined)[] = new Array(items.length * 2);
    for (let i = 0; i < this.length; i++) bigger[i] = items[(this.head + i) & (items.length - 1)];
    this.head = 0;
    return (this.items = bigger);
  }

  private emptied(items: (T | undefined)[]): void {
    this.head = 0;
    // Keep the buffer for the next burst (regrowing it each time is costly); give back only a huge one.
    if (items.length > 65536) this.items = null;
  }
}

/**
 * The mailbox of every process that has not had a message yet: frozen, so nothing can be put in
 * it (a process gets a mailbox of its own with its first message: `Process.queue`).
 */
export const NO_MAIL: Mailbox<unknown> = Object.freeze(new Mailbox<unknown>()) as Mailbox<unknown>;

/** A growable ring buffer: the scheduler's run queue. */
export class RingQueue<T> {
  private items: (T | undefined)[] = new Array(16);
  private first = 0;
  length = 0;

  push(value: T): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.first + this.length) & (this.items.length - 1)] = value;
    this.length++;
  }

  /** Puts `value` first. */
  unshift(value: T): void {
    if (this.length === this.items.length) this.grow();
    this.first = (this.first - 1) & (this.items.length - 1);
    this.items[this.first] = value;
    this.length++;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const value = this.items[this.first];
    this.items[this.first] = undefined;
    this.first = (this.first + 1) & (this.items.length - 1);
    this.length--;
    return value;
  }

  private grow(): void {
    const bigger: (T | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.length; i++) bigger[i] = this.items[(this.first + i) & (this.items.length - 1)];
    this.items = bigger;
    this.first = 0;
  }
}
