/**
 * The kernel's timers on one platform timer: receive timeouts of many processes and one-shot
 * timers (a purge's drain), in a binary min-heap of deadlines. Each entry knows its place in
 * the heap, so cancelling removes it at once (O(log n)) and an entry can be armed again: a
 * process keeps one entry for all its timed receives, and a request/reply allocates no timer.
 */
import type { KernelPlatform } from './kernel.js';

/**
 * `fire(entry)` runs when the entry is due; `owner` and `data` are for it to read, so a receive
 * timeout needs no closure of its own.
 */
export interface TimerEntry {
  /** Absolute, on the kernel's clock; Infinity while not armed. */
  deadline: number;
  seq: number;
  /** Its slot in the heap, or -1 when it is not in it. */
  index: number;
  /** Armed with `armSoon`, not in the heap yet: in how many ms (-1: not pending). */
  pendingMs: number;
  /** In the list `settle` goes through (pending, or was and then cancelled). */
  listed: boolean;
  fire: (entry: TimerEntry) => void;
  owner: unknown;
  data: unknown;
}

export function timerEntry(fire: (entry: TimerEntry) => void, owner: unknown = null, data: unknown = null): TimerEntry {
  return { deadline: Infinity, seq: 0, index: -1, pendingMs: -1, listed: false, fire, owner, data };
}

export class TimerHeap {
  private readonly heap: TimerEntry[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Puts `entry` in at `deadline` (moving it if it is in already). */
  add(entry: TimerEntry, deadline: number): void {
    if (entry.index >= 0) this.remove(entry);
    entry.deadline = deadline;
    entry.seq = this.seq++;
    entry.index = this.heap.length;
    this.heap.push(entry);
    this.up(entry.index);
  }

  /** Takes `entry` out; its deadline stays (a suspended receive keeps its remaining time). */
  remove(entry: TimerEntry): void {
    const i = entry.index;
    if (i < 0) return;
    entry.index = -1;
    const last = this.heap.pop()!;
    if (last === entry) return;
    this.heap[i] = last;
    last.index = i;
    this.down(i);
    this.up(last.index);
  }

  /** The earliest deadline, if any. */
  peek(): number | undefined {
    return this.heap[0]?.deadline;
  }

  /** Takes out and returns the earliest entry if it is due at `now`. */
  popDue(now: number): TimerEntry | undefined {
    const top = this.heap[0];
    if (top === undefined || top.deadline > now) return undefined;
    this.remove(top);
    return top;
  }

  private less(a: TimerEntry, b: TimerEntry): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    b.index = i;
    h[j] = a;
    a.index = j;
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      this.swap(i, parent);
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
      this.swap(i, min);
      i = min;
    }
  }
}

/**
 * The heap behind one platform timer. The platform timer follows the earliest deadline only when
 * that moves earlier: a request/reply arms a later deadline and cancels it on every call, and
 * re-arming a Node timer each time was a large part of a call. A timer that fires early finds
 * nothing due and re-arms for what is left.
 *
 * Inside a slice, a receive timeout is armed with `armSoon`: it enters the heap when the slice
 * ends (`settle`), counted from then. Most are cancelled before that (a call's reply comes in
 * the same slice), so they cost neither a clock read nor a heap operation; the others fire at
 * most one slice late, never early.
 */
export class KernelTimers {
  private readonly heap = new TimerHeap();
  private handle: unknown = null;
  private handleDeadline = Infinity;
  private pending: TimerEntry[] = [];

  constructor(private readonly platform: Pick<KernelPlatform, 'now' | 'setTimer' | 'clearTimer'>) {}

  /** A one-shot timer in `ms`. */
  after(ms: number, fire: () => void): { cancel(): void } {
    const entry = timerEntry(fire);
    this.arm(entry, this.platform.now() + ms);
    return { cancel: () => this.heap.remove(entry) };
  }

  /** Arms (or moves) `entry` for the absolute `deadline`. */
  arm(entry: TimerEntry, deadline: number): void {
    this.heap.add(entry, deadline);
    if (deadline < this.handleDeadline) this.rearm();
  }

  /** Arms `entry` for `ms` from when the running slice ends (`settle`). */
  armSoon(entry: TimerEntry, ms: number): void {
    if (entry.index >= 0) this.heap.remove(entry);
    entry.deadline = Infinity;
    entry.pendingMs = ms;
    if (entry.listed) return;
    entry.listed = true;
    this.pending.push(entry);
  }

  /** Every entry armed with `armSoon` and not cancelled since goes into the heap, counted from now. */
  settle(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    const now = this.platform.now();
    for (const entry of pending) {
      entry.listed = false;
      if (entry.pendingMs < 0) continue;
      const ms = entry.pendingMs;
      entry.pendingMs = -1;
      this.arm(entry, now + ms);
    }
  }

  /** Takes `entry` out (it will not fire); its deadline is kept for whoever reads it. */
  cancel(entry: TimerEntry): void {
    entry.pendingMs = -1;
    this.heap.remove(entry);
  }

  /** Arms the platform timer for the earliest deadline, unless it is armed for that or earlier. */
  rearm(): void {
    const next = this.heap.peek();
    if (next === undefined) return;
    if (this.handle !== null) {
      if (next >= this.handleDeadline) return;
      this.platform.clearTimer(this.handle);
    }
    this.handleDeadline = next;
    this.handle = this.platform.setTimer(Math.max(0, next - this.platform.now()), this.fire);
  }

  /** Due entries fire one at a time: one that fires may cancel or re-arm the others. */
  private readonly fire = (): void => {
    this.handle = null;
    this.handleDeadline = Infinity;
    const now = this.platform.now();
    for (let entry = this.heap.popDue(now); entry; entry = this.heap.popDue(now)) entry.fire(entry);
    this.rearm();
  };
}
