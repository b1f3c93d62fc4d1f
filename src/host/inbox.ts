/**
 * A mailbox on the host thread with a pid of node `host`, so code outside any node (tests, a CLI,
 * an application's main thread) can talk with processes: receive replies, monitor processes.
 */
import { Mailbox } from '../kernel/queue.js';
import { matches, type Pattern } from '../kernel/match.js';
import type { Pid } from '../kernel/pid.js';
import { Timeout } from '../errors.js';

export interface InboxHooks {
  monitor(inbox: Inbox, pid: Pid): string;
  close(inbox: Inbox): void;
}

const MAX_QUEUED = 100_000;

interface Waiter {
  pattern: Pattern;
  resolve: (message: unknown) => void;
  timer?: NodeJS.Timeout;
}

export class Inbox {
  private readonly mailbox = new Mailbox<unknown>();
  private readonly waiters: Waiter[] = [];
  closed = false;

  constructor(
    readonly pid: Pid,
    private readonly hooks: InboxHooks,
  ) {}

  /** Monitors a process: `{ type: 'DOWN', ref, pid, reason }` arrives here when it ends. */
  monitor(pid: Pid): string {
    return this.hooks.monitor(this, pid);
  }

  /** The first message matching `pattern` (all messages by default), waiting up to `timeoutMs`. */
  receive<T = unknown>(pattern: Pattern = () => true, timeoutMs = 5_000): Promise<T> {
    const found = this.mailbox.takeFirst((m) => (safeMatch(pattern, m) ? true : undefined));
    if (found) return Promise.resolve(found.value as T);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = { pattern, resolve: resolve as (m: unknown) => void };
      if (timeoutMs !== Infinity) {
        waiter.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Timeout(`inbox ${this.pid}: no matching message within ${timeoutMs} ms`, { pid: this.pid }));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** Messages received and not yet taken. */
  get size(): number {
    return this.mailbox.length;
  }
  drain(): unknown[] {
    const out: unknown[] = [];
    for (let m = this.mailbox.shift(); m !== undefined; m = this.mailbox.shift()) out.push(m);
    return out;
  }

  /** Messages dropped because the inbox held `MAX_QUEUED` unread ones. */
  dropped = 0;

  /** @internal the router delivers here. */
  deliver(message: unknown): void {
    const index = this.waiters.findIndex((w) => safeMatch(w.pattern, message));
    if (index < 0) {
      // Bounded: nobody reading an inbox must not let senders fill the host's memory.
      if (this.mailbox.length >= MAX_QUEUED) {
        this.dropped++;
        return;
      }
      return this.mailbox.push(message);
    }
    const [waiter] = this.waiters.splice(index, 1);
    clearTimeout(waiter!.timer);
    waiter!.resolve(message);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) clearTimeout(w.timer);
    this.mailbox.clear();
    this.hooks.close(this);
  }
}

function safeMatch(pattern: Pattern, message: unknown): boolean {
  try {
    return matches(pattern, message);
  } catch {
    return false;
  }
}
