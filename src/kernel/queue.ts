/**
 * Queues that stay O(1) under backlog (`Array.prototype.shift` is O(n) past ~16k elements).
 */

interface Link<T> { value: T; next: Link<T> | null }

/**
 * A process mailbox: FIFO with removal during a scan, which selective receive needs. A singly
 * linked list keeps push, shift and "take the first match" O(1) per message looked at.
 */
export class Mailbox<T> {
  private head: Link<T> | null = null;
  private tail: Link<T> | null = null;
  length = 0;

  push(value: T): void {
    const link: Link<T> = { value, next: null };
    if (this.tail) this.tail.next = link; else this.head = link;
    this.tail = link;
    this.length++;
  }

  /**
   * Removes the first element (in arrival order) for which `pick` returns something, and returns
   * both. Selective receive: `pick` returns the handler of the first clause that matches.
   */
  takeFirst<R>(pick: (value: T) => R | undefined): { value: T; picked: R } | undefined {
    let prev: Link<T> | null = null;
    for (let link = this.head; link; prev = link, link = link.next) {
      const picked = pick(link.value);
      if (picked === undefined) continue;
      if (prev) prev.next = link.next; else this.head = link.next;
      if (this.tail === link) this.tail = prev;
      this.length--;
      return { value: link.value, picked };
    }
    return undefined;
  }

  shift(): T | undefined {
    const link = this.head;
    if (!link) return undefined;
    this.head = link.next;
    if (!this.head) this.tail = null;
    this.length--;
    return link.value;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let link = this.head; link; link = link.next) yield link.value;
  }

  clear(): void {
    this.head = this.tail = null;
    this.length = 0;
  }
}

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
