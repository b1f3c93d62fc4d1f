/**
 * Calls from the host to server and statem processes (`gen_server:call` from outside any node), all
 * on one long-lived host mailbox. As in OTP, a call's tag is the ref of a monitor on the callee,
 * and the call is one envelope (`Router.call`: the node sets up the monitor and hands the callee
 * the request). The reply, the callee's DOWN or the deadline settles the call. The callee's node
 * ends the monitor when the callee replies (OTP's reply-demonitor), so a replied call costs no
 * demonitor; a call that times out (or whose reply another process sent) still sends one, so
 * nothing is left behind on either side.
 */
import { BadArgument, NoProcess, Timeout } from '../errors.js';
import type { Pid } from '../kernel/pid.js';
import type { Dest } from '../kernel/types.js';
import { timerEntry, type TimerEntry } from '../kernel/timers.js';
import { hostDeadlines } from './deadlines.js';
import type { HostMailbox, Router } from './router.js';

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
  /** Its deadline, or null for a call that waits without one. */
  deadline: TimerEntry | null;
  dest: Dest;
}

/** What a call needs from the system: where a destination is. */
export interface CallRoutes {
  /**
   * The pid or name to call, the node it runs on (where it is monitored) and the node its messages
   * go to (`home`: a pid's own node, which forwards them if it moved), or a NoProcess error.
   */
  resolve(dest: Dest): { target: string; node: string; home: string };
}

export class Caller implements HostMailbox {
  private readonly waiters = new Map<string, Waiter>();
  private readonly deadlines = hostDeadlines();

  constructor(
    readonly pid: Pid,
    private readonly router: Router,
    private readonly routes: CallRoutes,
  ) {}

  /** Resolves with the reply; rejects with Timeout, or NoProcess when the callee is or goes away first. */
  call<R>(dest: Dest, request: unknown, timeoutMs: number): Promise<R> {
    if (!(timeoutMs > 0)) throw new BadArgument(`a call's timeout must be a positive number of ms (or Infinity), got ${String(timeoutMs)}`);
    const { target, node, home } = this.routes.resolve(dest);
    // The waiter first: the router may settle the call at once (a DOWN noproc for a callee it
    // knows is not there), and that DOWN must find it.
    const ref = this.router.callRef();
    let waiter!: Waiter;
    const settled = new Promise<R>((resolve, reject) => {
      waiter = { resolve: resolve as (value: unknown) => void, reject, deadline: null, dest };
      this.waiters.set(ref, waiter);
    });
    try {
      this.router.call(ref, this.pid, target, node, home, request);
    } catch (error) {
      // An uncloneable request or an unknown node: nothing was sent.
      this.waiters.delete(ref);
      throw error;
    }
    if (timeoutMs !== Infinity && this.waiters.get(ref) === waiter) {
      waiter.deadline = timerEntry(this.expire, ref, timeoutMs);
      this.deadlines.arm(waiter.deadline, performance.now() + timeoutMs);
    }
    return settled;
  }

  /** @internal the router delivers replies and DOWN messages here. */
  deliver(message: unknown): void {
    const m = message as { $reply?: unknown; value?: unknown; type?: unknown; ref?: unknown; reason?: unknown } | null;
    if (!m || typeof m !== 'object') return;
    if (typeof m.$reply === 'string') {
      const waiter = this.take(m.$reply);
      if (!waiter) return;
      waiter.resolve(m.value);
      // Usually a no-op: the callee's node ended the monitor with the reply (see `Router.call`). A
      // reply from another process still needs it; after the resolve, a caller that calls this
      // node again at once takes the demonitor along.
      this.router.demonitor(m.$reply);
    } else if (m.type === 'DOWN' && typeof m.ref === 'string') {
      // The monitor fired: there is none left to remove.
      const waiter = this.take(m.ref);
      if (!waiter) return;
      const dest = JSON.stringify(waiter.dest);
      waiter.reject(
        m.reason === 'noproc'
          ? new NoProcess(`no process ${dest}`, { dest: waiter.dest })
          : new NoProcess(`${dest} ended before replying: ${JSON.stringify(m.reason)}`, { dest: waiter.dest, reason: m.reason }),
      );
    }
  }

  /** Calls waiting for an answer. */
  get pending(): number {
    return this.waiters.size;
  }

  /** Fails every waiting call (the system is stopping). */
  close(error: Error): void {
    for (const ref of [...this.waiters.keys()]) this.settle(ref)?.reject(error);
  }

  /** A call's deadline passed (the entry's owner is its ref, its data its timeout). */
  private readonly expire = (entry: TimerEntry): void => {
    const waiter = this.settle(entry.owner as string);
    const timeoutMs = entry.data as number;
    waiter?.reject(new Timeout(`call to ${JSON.stringify(waiter.dest)} got no reply within ${timeoutMs} ms`, { dest: waiter.dest, timeoutMs }));
  };

  /** The call no longer waits: its waiter, its monitor removed. */
  private settle(ref: string): Waiter | undefined {
    const waiter = this.take(ref);
    if (waiter) this.router.demonitor(ref);
    return waiter;
  }

  /** Takes the call's waiter (if it still waits) and its deadline out. */
  private take(ref: string): Waiter | undefined {
    const waiter = this.waiters.get(ref);
    if (!waiter) return undefined;
    this.waiters.delete(ref);
    if (waiter.deadline) this.deadlines.cancel(waiter.deadline);
    return waiter;
  }
}
