/**
 * Baseline for intra-node messaging: the smallest useful in-thread actor (PLATFORM.md,
 * "in-thread actor (async loop)"). A mailbox that stays O(1) under backlog (a linked queue) and an
 * async loop that drains it synchronously, then awaits the next arrival. No pids, no scheduler, no selective receive, no fairness: the ceiling of messaging on one
 * thread.
 */
import { performance } from 'node:perf_hooks';

interface Link {
  value: unknown;
  next: Link | null;
}

export class BareActor {
  private head: Link | null = null;
  private tail: Link | null = null;
  private waiter: (() => void) | null = null;

  send(message: unknown): void {
    const link: Link = { value: message, next: null };
    if (this.tail) this.tail.next = link;
    else this.head = link;
    this.tail = link;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter();
    }
  }

  /** The oldest queued message, or undefined. */
  take(): unknown {
    const link = this.head;
    if (!link) return undefined;
    this.head = link.next;
    if (!this.head) this.tail = null;
    return link.value;
  }

  /** A queued message, or a promise of the next one. */
  receive(): unknown {
    const m = this.take();
    return m !== undefined ? m : this.wait().then(() => this.take());
  }

  /** Resolves when a message arrives. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

/** The actor's loop: drain the mailbox, then sleep until something arrives. */
async function consume(actor: BareActor, n: number): Promise<number> {
  let sum = 0;
  let got = 0;
  for (;;) {
    for (let m = actor.take(); m !== undefined; m = actor.take()) {
      sum += (m as { n: number }).n;
      got++;
    }
    if (got >= n) return sum;
    await actor.wait();
  }
}

/** The same actor written `for (;;) { const m = await receive(); ... }`: one wake-up per message. */
async function consumeEach(actor: BareActor, n: number): Promise<number> {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += ((await actor.receive()) as { n: number }).n;
  return sum;
}

async function produce(actor: BareActor, n: number, yieldEvery: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    actor.send({ n: i });
    if ((i + 1) % yieldEvery === 0) await null;
  }
}

/**
 * Milliseconds for a sender to pass `n` messages to a bare actor, yielding every `yieldEvery`.
 * `drain`: the actor empties its mailbox in one go per wake-up (the baseline); `each`: it awaits
 * every message, which is closer to what a process does (one scheduled step per message).
 */
export async function bareActorRun(n: number, yieldEvery: number, mode: 'drain' | 'each' = 'drain'): Promise<number> {
  const actor = new BareActor();
  const t0 = performance.now();
  const consumed = mode === 'drain' ? consume(actor, n) : consumeEach(actor, n);
  await produce(actor, n, yieldEvery);
  const sum = await consumed;
  const ms = performance.now() - t0;
  if (sum !== (n * (n - 1)) / 2 && yieldEvery > 0) throw new Error(`bare actor lost messages (sum ${sum})`);
  return ms;
}

/** The leanest awaitable mailbox: a queued message is taken at once, else a waiter is resolved with the next. */
class PingBox {
  private queue: unknown[] = [];
  private waiter: ((m: unknown) => void) | null = null;
  send(m: unknown): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w(m);
    } else this.queue.push(m);
  }
  receive(): unknown {
    return this.queue.length
      ? this.queue.shift()
      : new Promise((resolve) => {
          this.waiter = resolve;
        });
  }
}

/**
 * Two bare actors ping-ponging `n` round trips, each awaiting the other's message (the baseline
 * of a request/reply inside a node). Milliseconds for all `n`.
 */
export async function barePingPong(n: number): Promise<number> {
  const a = new PingBox();
  const b = new PingBox();
  const t0 = performance.now();
  const ponger = (async () => {
    for (let i = 0; i < n; i++) a.send({ n: ((await b.receive()) as { n: number }).n });
  })();
  let sum = 0;
  for (let i = 0; i < n; i++) {
    b.send({ n: i });
    sum += ((await a.receive()) as { n: number }).n;
  }
  await ponger;
  const ms = performance.now() - t0;
  if (sum !== (n * (n - 1)) / 2) throw new Error(`bare ping-pong lost messages (sum ${sum})`);
  return ms;
}
