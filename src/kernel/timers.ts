/**
 * Receive timeouts and timers for many processes on one host timer (KernelTimers): a binary min-heap of deadlines.
 * Cancelling is lazy (a stale entry is skipped when it surfaces), so arming and disarming a
 * timeout in every receive stays O(log n) with no search.
 */

/**
 * `fire(entry)` runs when the entry is due; `owner` and `data` are for it to read, so a receive
 * timeout needs no closure of its own (one is armed per call in a request/reply path).
 */
export interface TimerEntry {
  deadline: number;
  seq: number;
  fire: (entry: TimerEntry) => void;
  cancelled: boolean;
  owner: unknown;
  data: unknown;
}

export class TimerHeap {
  private heap: TimerEntry[] = [];
  private seq = 0;
  private cancelledCount = 0;

  get size(): number {
    return this.heap.length;
  }

  /**
   * Cancels an entry. A receive that gets its message in time cancels its timeout, so at high
   * message rates most entries are cancelled long before they surface: once they are the
   * majority, the heap is rebuilt without them, keeping memory bounded by the live timeouts.
   */
  cancel(entry: TimerEntry): void {
    if (entry.cancelled) return;
    entry.cancelled = true;
    if (++this.cancelledCount > 1024 && this.cancelledCount * 2 > this.heap.length) this.compact();
  }

  private compact(): void {
    this.heap = this.heap.filter((e) => !e.cancelled);
    this.cancelledCount = 0;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  add(deadline: number, fire: (entry: TimerEntry) => void, owner: unknown = null, data: unknown = null): TimerEntry {
    const entry: TimerEntry = { deadline, seq: this.seq++, fire, cancelled: false, owner, data };
    this.heap.push(entry);
    this.up(this.heap.length - 1);
    return entry;
  }

  /** The earliest live deadline, dropping cancelled entries on the way. */
  peek(): number | undefined {
    while (this.heap.length && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.deadline;
  }

  /** Removes and returns every live entry due at `now`, earliest first. */
  due(now: number): TimerEntry[] {
    const out: TimerEntry[] = [];
    while (this.heap.length && (this.heap[0]!.cancelled || this.heap[0]!.deadline <= now)) {
      const entry = this.pop();
      if (!entry.cancelled) out.push(entry);
    }
    return out;
  }

  private pop(): TimerEntry {
    const top = this.heap[0]!;
    if (top.cancelled) this.cancelledCount--;
    const last = this.heap.pop()!;
    if (this.heap.length) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private less(a: TimerEntry, b: TimerEntry): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let min = i;
      if (l < h.length && this.less(h[l]!, h[min]!)) min = l;
      if (r < h.length && this.less(h[r]!, h[min]!)) min = r;
      if (min === i) return;
      [h[i], h[min]] = [h[min]!, h[i]!];
      i = min;
    }
  }
}

/** What the kernel's timers need of the platform: its clock and one host timer. */
export interface TimerPlatform {
  now(): number;
  setTimer(ms: number, fire: () => void): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * Every timer of a node (receive timeouts, `after`) on one host timer. The host timer follows the
 * earliest deadline only when that moves earlier: a request/reply arms a later deadline and
 * cancels it on every call, and re-arming a Node timer each time was a large part of a call. A
 * timer that fires early finds nothing due and re-arms for what is left.
 */
export class KernelTimers {
  private readonly heap = new TimerHeap();
  private handle: unknown = null;
  /** When the host timer is set to fire (Infinity when it is not set). */
  private armedFor = Infinity;

  constructor(private readonly platform: TimerPlatform) {}

  /** An entry due at `deadline` (the kernel's clock): `fire(entry)` runs then unless it is cancelled. */
  add(deadline: number, fire: (entry: TimerEntry) => void, owner: unknown = null, data: unknown = null): TimerEntry {
    const entry = this.heap.add(deadline, fire, owner, data);
    this.rearm();
    return entry;
  }

  cancel(entry: TimerEntry): void {
    this.heap.cancel(entry);
  }

  /** Sets the host timer for the earliest deadline, if that is earlier than it is set for. */
  rearm(): void {
    const next = this.heap.peek();
    if (next === undefined) return;
    if (this.handle !== null) {
      if (next >= this.armedFor) return;
      this.platform.clearTimer(this.handle);
    }
    this.armedFor = next;
    this.handle = this.platform.setTimer(Math.max(0, next - this.platform.now()), this.fire);
  }

  private readonly fire = (): void => {
    this.handle = null;
    this.armedFor = Infinity;
    for (const entry of this.heap.due(this.platform.now())) entry.fire(entry);
    this.rearm();
  };
}
