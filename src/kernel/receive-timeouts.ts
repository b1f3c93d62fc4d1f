/**
 * The timeouts of the receives processes wait in, on the kernel's timers. A process keeps one
 * timer entry for all its timed receives (a call allocates none); inside a slice a timeout enters
 * the heap only when the slice ends. A suspended process keeps its deadline, so it gets its
 * remaining time when resumed.
 */
import type { Receive } from './directives.js';
import type { Process } from './proc.js';
import { timerEntry, type KernelTimers, type TimerEntry } from './timers.js';

export class ReceiveTimeouts {
  constructor(
    private readonly timers: KernelTimers,
    private readonly now: () => number,
    /** The receive `proc` waits in timed out: it is no longer waiting in it; run its timeout step. */
    private readonly timedOut: (proc: Process, receive: Receive) => void,
  ) {}

  /** Arms the timeout of the receive `proc` waits in, `ms` from now (`inSlice`: from the end of the running slice). */
  arm(proc: Process, ms: number, inSlice: boolean): void {
    const entry = (proc.timer ??= timerEntry(this.fire, proc));
    entry.data = proc.wait;
    if (inSlice) this.timers.armSoon(entry, ms);
    else this.timers.arm(entry, this.now() + ms);
  }

  /** Arms it again for the deadline it kept while suspended. */
  armAt(proc: Process, deadline: number): void {
    const entry = proc.timer!;
    entry.data = proc.wait;
    this.timers.arm(entry, deadline);
  }

  /** The process's receive timeout, if any, is off. */
  disarm(proc: Process): void {
    const entry = proc.timer;
    if (entry === null) return;
    this.timers.cancel(entry);
    entry.deadline = Infinity;
    entry.data = null;
  }

  /** Stops the clock of a suspended process's timeout; `deadline` still says when it was due. */
  pause(proc: Process): void {
    if (proc.timer === null) return;
    // A timeout armed in a running slice gets its deadline now.
    this.timers.settle();
    this.timers.cancel(proc.timer);
  }

  /** When the receive `proc` waits in times out (Infinity: never). */
  deadline(proc: Process): number {
    return proc.timer === null ? Infinity : proc.timer.deadline;
  }

  /** No closure per armed timeout: the entry names the process and its receive. */
  private readonly fire = (entry: TimerEntry): void => {
    const proc = entry.owner as Process;
    const receive = entry.data as Receive;
    entry.deadline = Infinity;
    entry.data = null;
    if (proc.wait !== receive || proc.status !== 'waiting') return;
    this.timedOut(proc, receive);
  };
}
