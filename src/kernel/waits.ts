/**
 * Processes waiting in a receive, for the scheduler: what wakes one — a message its receive takes,
 * its timeout, being resumed after a suspension with a match already in its mailbox or its time
 * up — and the receive timeouts (`receive-timeouts.ts`) it keeps meanwhile. A woken process goes
 * back to the scheduler through `wake`, its next step the handler that took the message.
 *
 * Vocabulary: a process *waits* in a receive (`Process.wait`, status `waiting`); it is *woken*
 * with the step to run next.
 */
import type { Handler, Receive } from './directives.js';
import type { Process } from './proc.js';
import { ReceiveTimeouts } from './receive-timeouts.js';
import type { KernelTimers } from './timers.js';

export class Waits {
  private readonly timeouts: ReceiveTimeouts;

  constructor(
    timers: KernelTimers,
    private readonly now: () => number,
    /** Queues `proc` to run `fn(message)` next. */
    private readonly wake: (proc: Process, fn: (m: unknown) => unknown, message: unknown) => void,
    /** Runs `run` as `proc` (its `self()`). */
    private readonly asProcess: <T>(proc: Process, run: () => T) => T,
  ) {
    this.timeouts = new ReceiveTimeouts(timers, now, (proc, receive) => {
      proc.wait = null;
      this.wake(proc, receive.timeoutStep(), undefined);
    });
  }

  /**
   * Matches as the receiving process: a guard that calls self() sees the receiver, as in Erlang.
   * `receive` is only its handler when it takes any message (`Process.wait`).
   */
  select(proc: Process, receive: Receive | Handler, message: unknown): Handler | undefined {
    if (typeof receive === 'function') return receive;
    if (receive.anyHandler) return receive.anyHandler;
    if (!receive.runsModuleCode) return receive.select(message);
    return this.asProcess(proc, () => receive.select(message));
  }

  /** A message for a process waiting in a receive: true when the receive takes it (the process is then woken). */
  offer(proc: Process, message: unknown): boolean {
    const handler = this.select(proc, proc.wait!, message);
    if (!handler) return false;
    proc.wait = null;
    this.disarm(proc);
    this.wake(proc, handler, message);
    return true;
  }

  /** `proc` begins to wait with a timeout of `ms` (`inSlice`: armed when the slice ends). */
  arm(proc: Process, ms: number, inSlice: boolean): void {
    this.timeouts.arm(proc, ms, inSlice);
  }

  /** The process's receive timeout, if any, is off. */
  disarm(proc: Process): void {
    this.timeouts.disarm(proc);
  }

  /** A waiting process is suspended: its timeout keeps its remaining time. */
  pause(proc: Process): void {
    this.timeouts.pause(proc);
  }

  /**
   * A suspended process that waited in `wait` is resumed: a message that arrived meanwhile and its
   * receive takes wakes it, so does a timeout that ran out meanwhile; else it waits on, its timeout re-armed.
   */
  resume(proc: Process, wait: Receive | Handler): void {
    proc.status = 'waiting';
    if (proc.mailbox.length) {
      const found = proc.mailbox.takeFirst((m) => this.select(proc, wait, m));
      if (found) {
        proc.wait = null;
        this.disarm(proc);
        return this.wake(proc, found.picked, found.value);
      }
    }
    const deadline = this.timeouts.deadline(proc);
    if (deadline === Infinity) return;
    if (deadline <= this.now()) {
      proc.wait = null;
      this.disarm(proc);
      return this.wake(proc, (wait as Receive).timeoutStep(), undefined);
    }
    this.timeouts.armAt(proc, deadline);
  }
}
