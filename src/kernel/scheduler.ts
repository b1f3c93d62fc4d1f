/**
 * The scheduler of one node: the run queue, slices and the reductions budget. It runs steps and
 * acts on what they return (wait in a receive, tail-call, end); it knows which process is running.
 * What wakes a waiting process is in `waits.ts`; its timers (`timers.ts`, receive timeouts among
 * them) share one platform timer; its outbox (`outbox.ts`) leaves when a slice ends; its holds
 * (`holds.ts`) keep the processes sending to a node whose channel is full. Endings go to the
 * signals, version moves to the code operations.
 *
 * A turn (a schedule-in on the BEAM): a process's steps on its REDUCTIONS (`run-queue.ts`). A step is
 * never cut, as a BIF runs to its end: the overrun of a turn's last step is the process's reduction
 * debt, taken off its next turn, so over turns each runnable process gets REDUCTIONS.
 */
import { Refused } from '../errors.js';
import type { CodeServer, ModuleVersion } from './code-server.js';
import type { CodeOps } from './code-ops.js';
import { Next, Receive } from './directives.js';
import type { KernelPlatform } from './kernel.js';
import type { Process } from './proc.js';
import { Holds } from './holds.js';
import { Outbox } from './outbox.js';
import { RunQueue } from './run-queue.js';
import type { Envelope } from './signals.js';
import type { Signalling } from './signalling.js';
import { Waits } from './waits.js';
import { KernelTimers } from './timers.js';
import { errorReason } from './values.js';

/** Thrown by `exit(reason)` to end the calling process from any depth. */
export class ExitNow {
  constructor(readonly reason: unknown) {}
}

const EMPTY: unknown[] = [];
/**
 * Steps between two looks at the clock (a power of two). Few enough that a slice of heavy steps
 * (say 1 ms each) ends near its `sliceMs`, not hundreds of ms later against an isolate's CPU limit;
 * a clock read costs tens of ns, under 1% of the cheapest step at this rate.
 */
const CLOCK_EVERY = 16;

export class Scheduler {
  private readonly runQueue = new RunQueue();
  private readonly timers: KernelTimers;
  private readonly waits: Waits;
  private readonly outbox: Outbox;
  private readonly holds = new Holds();
  /** Steps run so far: the slice checks its clock every few dozen of them. */
  private steps = 0;
  /**
   * Reductions left to the running process, as on the BEAM: each step and each send costs one, so
   * a process that sends a burst yields to its receivers instead of running on with a full budget.
   */
  private budget = 0;
  /** When the running slice should yield. */
  private sliceDeadline = 0;
  private current: Process | null = null;
  /**
   * The process `step` is running, also while the kernel acts on what its step did (ending it,
   * matching its mailbox): a cut there must still end it. `current` is null at those moments.
   */
  private stepping: Process | null = null;
  /** A full node the stepping process sent to during its step: it is held after the step (`Holds`). */
  private sentToFull: string | null = null;
  private scheduled = false;
  /** True while a slice runs: it flushes the outbox when it ends. */
  private inSlice = false;
  private signals!: Signalling;
  private codeOps!: CodeOps;

  constructor(
    private readonly platform: KernelPlatform,
    private readonly sliceMs: number,
    private readonly code: CodeServer,
  ) {
    this.timers = new KernelTimers(platform);
    this.waits = new Waits(
      this.timers,
      () => platform.now(),
      (proc, fn, message) => this.wake(proc, fn, message),
      (proc, run) => this.asProcess(proc, run),
    );
    this.outbox = new Outbox(platform, (node) => this.holds.fill(node));
  }

  connect(signals: Signalling, codeOps: CodeOps): void {
    this.signals = signals;
    this.codeOps = codeOps;
  }

  // ---- who runs -------------------------------------------------------------------------------

  /** The process whose step (or guard, or callback) is running, if any. */
  running(): Process | null {
    return this.current;
  }

  /** Runs `run` as `proc`: module code called outside the run loop (init, codeChange, onMigrate) sees itself as `self()`. */
  asProcess<T>(proc: Process, run: () => T): T {
    const saved = this.current;
    this.current = proc;
    try {
      return run();
    } finally {
      this.current = saved;
    }
  }

  /** One reduction off the running process's budget (a send costs one). */
  charge(): void {
    this.budget--;
  }

  // ---- the run queue --------------------------------------------------------------------------

  /** A new process's first step: `fn(...args)` in `version`, queued. */
  start(proc: Process, fn: (...args: unknown[]) => unknown, args: unknown[], version: ModuleVersion | null): void {
    proc.stepFn = fn;
    proc.stepArgs = args.length ? args : EMPTY;
    this.codeOps.moveTo(proc, version);
    this.enqueue(proc);
  }

  enqueue(proc: Process): void {
    proc.status = 'runnable';
    if (proc.queued) return;
    proc.queued = true;
    this.runQueue.push(proc);
    this.schedule();
  }

  /** Queues `proc` to run `fn(message)` next. */
  private wake(proc: Process, fn: (m: unknown) => unknown, message: unknown): void {
    proc.stepFn = fn as (...args: unknown[]) => unknown;
    proc.stepArg = message;
    this.enqueue(proc);
  }

  /** A message for a process waiting in a receive: true when the receive takes it (the process is then queued). */
  offer(proc: Process, message: unknown): boolean {
    return this.waits.offer(proc, message);
  }

  /** Acts on what a step returned, for callers outside the run loop. */
  continueWith(proc: Process, result: unknown): void {
    if (this.advance(proc, result)) this.enqueue(proc);
  }

  private readonly runSlice = (): void => {
    this.scheduled = false;
    this.inSlice = true;
    const deadline = (this.sliceDeadline = this.platform.now() + this.sliceMs);
    let checked = this.steps;
    this.runQueue.beginSlice();
    for (let proc = this.runQueue.shift(); proc; proc = this.runQueue.shift()) {
      if (proc.status === 'runnable' && this.holds.keeps(proc)) continue;
      proc.queued = false;
      if (proc.status === 'runnable') this.step(proc);
      if (this.runQueue.cut) break;
      if (this.steps - checked >= CLOCK_EVERY) {
        checked = this.steps;
        if (this.platform.now() >= deadline) break;
      }
    }
    this.inSlice = false;
    this.timers.settle();
    this.outbox.flush();
    if (this.runQueue.length) this.schedule();
  };

  /**
   * Runs a process for up to REDUCTIONS consecutive steps while it has one ready (a message
   * already queued, a tail call), as the BEAM runs a process for its reductions: a receiver
   * drains its backlog in one go instead of one message per trip through the run queue.
   */
  private step(proc: Process): void {
    this.stepping = proc;
    this.runSteps(proc);
    this.stepping = null;
    // Set by the signals of an ending (the process is gone): not for whoever steps next.
    this.sentToFull = null;
  }

  private runSteps(proc: Process): void {
    proc.status = 'running';
    const left = this.runQueue.beginTurn(proc);
    this.budget = left < 0 ? this.runQueue.newBudget(proc) : left;
    let result: unknown;
    for (;;) {
      const fn = proc.stepFn!;
      const args = proc.stepArgs;
      const arg = proc.stepArg;
      proc.stepFn = null;
      proc.stepArgs = null;
      proc.stepArg = undefined;
      this.current = proc;
      this.steps++;
      try {
        result = args === null ? fn(arg) : fn(...args);
      } catch (thrown) {
        this.current = null;
        // An exit that reached the process during its step (exit(self(), 'kill')…) wins over what it threw after.
        const reason = proc.pendingExit ? proc.pendingExit.reason : thrown instanceof ExitNow ? thrown.reason : errorReason(thrown);
        this.signals.terminate(proc, reason);
        this.signals.drain();
        return;
      }
      this.current = null;
      if (proc.pendingExit) {
        this.signals.terminate(proc, proc.pendingExit.reason);
        this.signals.drain();
        return;
      }
      const ready = this.advance(proc, result);
      if (this.sentToFull !== null) {
        // It sent to a node whose channel is full: it waits for credit, as at a busy distribution port.
        if ((proc.status as Process['status']) !== 'exited') this.holds.hold(proc, this.sentToFull, ready);
        this.sentToFull = null;
        if (ready) return;
      }
      if (!ready) return;
      if (--this.budget <= 0) {
        this.runQueue.owe(proc, this.budget);
        return this.enqueue(proc);
      }
      // Heavy steps use up the slice before the budget: look at the clock now and then.
      if ((this.steps & (CLOCK_EVERY - 1)) === 0 && this.platform.now() >= this.sliceDeadline)
        return left < 0 ? this.runQueue.carry(proc, this.budget) : this.enqueue(proc);
    }
  }

  /**
   * Acts on what a step returned: wait, tail-call or end. True when the process has its next step
   * ready right now (the caller runs or queues it); false when it waits, ended, or is queued.
   */
  private advance(proc: Process, result: unknown): boolean {
    if (result instanceof Receive) {
      if (proc.version !== result.version) {
        if (result.version?.draining) return this.refuseDrained(proc, result.version);
        this.codeOps.moveTo(proc, result.version);
      }
      if (proc.mailbox.length) {
        if (result.anyHandler) {
          proc.stepFn = result.anyHandler as (...args: unknown[]) => unknown;
          proc.stepArg = proc.mailbox.shift();
          return true;
        }
        const found = proc.mailbox.takeFirst((m) => this.waits.select(proc, result, m));
        if (found) {
          proc.stepFn = found.picked as (...args: unknown[]) => unknown;
          proc.stepArg = found.value;
          return true;
        }
      }
      const after = result.after;
      if (after && after.ms === 0) {
        proc.stepFn = result.timeoutStep() as (...args: unknown[]) => unknown;
        proc.stepArg = undefined;
        return true;
      }
      // A receive that takes any message, untimed, is kept as its handler alone (see `Process.wait`).
      proc.wait = result.anyHandler !== null && after === null && result.onMigrate === null ? result.anyHandler : result;
      proc.status = 'waiting';
      if (after && after.ms !== Infinity) this.waits.arm(proc, after.ms, this.inSlice);
      return false;
    }
    if (result instanceof Next) {
      const target = this.code.versionOf(result.fn) ?? result.version;
      if (target?.draining && proc.version !== target) return this.refuseDrained(proc, target);
      if (proc.version !== target) this.codeOps.moveTo(proc, target);
      proc.stepFn = result.fn;
      proc.stepArgs = result.args;
      return true;
    }
    if (result !== null && typeof (result as { then?: unknown })?.then === 'function') {
      this.signals.terminate(
        proc,
        errorReason(new TypeError('a process step returned a Promise: steps are synchronous; return receive(...) or next(fn, ...args) to wait or loop')),
      );
    } else {
      this.signals.terminate(proc, 'normal');
    }
    this.signals.drain();
    return false;
  }

  /** A drained version takes no newcomers: a process trying to enter it ends with the reason. */
  private refuseDrained(proc: Process, version: ModuleVersion): false {
    this.signals.terminate(proc, errorReason(new Refused(`cannot enter ${version}: it is being drained`)));
    this.signals.drain();
    return false;
  }

  // ---- suspension ----------------------------------------------------------------------------

  /** It runs nothing until resumed; messages queue and a pending receive timeout keeps its remaining time. */
  suspend(proc: Process): void {
    if (proc.status === 'suspended') return;
    if (proc.status === 'waiting') this.waits.pause(proc);
    proc.status = 'suspended';
  }

  resume(proc: Process): void {
    if (proc.status !== 'suspended') return;
    if (proc.wait) this.waits.resume(proc, proc.wait);
    else this.enqueue(proc);
  }

  // ---- timers ---------------------------------------------------------------------------------

  /** A one-shot timer on the kernel's clock. */
  after(ms: number, fire: () => void): { cancel(): void } {
    return this.timers.after(ms, fire);
  }

  /** The process's receive timeout, if any, is off; it leaves the node (ended or moved away), so it is held no more and owes nothing. */
  disarm(proc: Process): void {
    this.waits.disarm(proc);
    this.holds.forget(proc);
    this.runQueue.forgive(proc);
  }

  // ---- the outbox ----------------------------------------------------------------------------

  /** An envelope for another node (or the host), batched until the slice ends. Costs a reduction. */
  post(node: string, envelope: Envelope): void {
    this.budget--;
    // The envelope is in the outbox before anything is scheduled: whatever runs next flushes it.
    // Flushed at the end of the running slice, or on the next macrotask if none runs.
    if (this.outbox.add(node, envelope) && !this.inSlice) this.schedule();
    if (this.stepping !== null && this.holds.isFull(node)) this.sentToFull = node;
  }

  /** The channel to `node` has room again (or `node` went down): the processes held for it run again. */
  credit(node: string): void {
    for (const proc of this.holds.credit(node)) this.runQueue.push(proc);
    if (this.runQueue.length) this.schedule();
  }

  /** Processes held for full nodes, per node. */
  holding(): Record<string, number> {
    return this.holds.holding();
  }

  /**
   * Signals from another node (`deliver` applies them): the processes they wake run now, in this
   * macrotask (a cross-node round trip paid a `setImmediate` per hop), queuing no slice of their
   * own (one per `system.call` ran empty after the reply). Only from outside any slice or step.
   */
  runInbound(deliver: () => void): void {
    const now = !this.inSlice && this.current === null;
    const scheduled = this.scheduled;
    if (now) this.scheduled = true;
    try {
      deliver();
    } finally {
      if (now) this.scheduled = scheduled;
      if (now && this.runQueue.length) this.runSlice();
      else this.afterExternalWork();
    }
  }

  /** After work that did not come through a slice, make sure timers and batches move. */
  afterExternalWork(): void {
    if (!this.outbox.empty) this.schedule();
  }

  /** Queues a slice on the platform, unless one is queued already. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.platform.schedule(this.runSlice);
  }

  // ---- recovery -------------------------------------------------------------------------------

  /**
   * A step was stopped from outside: forget the slice. Returns the process whose code was running
   * (a guard runs as its receiver), and the process whose step the kernel was in, if another:
   * its step did not finish either, so it cannot go on.
   */
  abandonSlice(): { culprit: Process | null; cut: Process | null } {
    const culprit = this.current ?? this.stepping;
    const cut = this.stepping !== culprit ? this.stepping : null;
    this.current = null;
    this.stepping = null;
    this.sentToFull = null;
    this.runQueue.forget();
    this.inSlice = false;
    this.scheduled = false;
    return { culprit, cut };
  }

  /** After an abandoned slice: flush, queue the next slice if work waits, re-arm the timer. */
  restart(): void {
    this.timers.settle();
    this.outbox.flush();
    if (this.runQueue.length) this.schedule();
    this.timers.rearm();
  }
}
