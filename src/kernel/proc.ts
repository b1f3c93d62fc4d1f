/**
 * A process: a pid, a mailbox, and what it does next. Kept small (links and monitors are
 * allocated on first use) because a node holds hundreds of thousands of idle ones.
 */
import { Mailbox } from './queue.js';
import type { Pid } from './pid.js';
import type { Receive } from './directives.js';
import type { ModuleVersion } from './code-server.js';
import type { TimerEntry } from './timers.js';
import type { Behaviour } from './behaviours.js';

export type ProcessStatus = 'runnable' | 'running' | 'waiting' | 'suspended' | 'exited';

export class Process {
  status: ProcessStatus = 'runnable';
  /** In the run queue already (a suspended-then-resumed process must not be queued twice). */
  queued = false;
  readonly mailbox = new Mailbox<unknown>();

  /** The next step when runnable: `stepFn(...stepArgs)`, or `stepFn(stepArg)` when stepArgs is null. */
  stepFn: ((...args: unknown[]) => unknown) | null = null;
  stepArgs: unknown[] | null = null;
  stepArg: unknown = undefined;

  /** The receive it waits in, and that receive's timeout. */
  wait: Receive | null = null;
  timer: TimerEntry | null = null;
  /** When the current receive times out (absolute); kept so a resumed process gets its remaining time. */
  deadline = Infinity;
  /** Set for server and statem processes. */
  behaviour: Behaviour | null = null;

  /** The module version whose code the process is in; the code server indexes processes by it. */
  version: ModuleVersion | null = null;

  links: Set<Pid> | null = null;
  /** Monitors this process holds: ref → watched. */
  monitors: Map<string, Pid> | null = null;
  /** Monitors on this process: ref → watcher. */
  watchers: Map<string, Pid> | null = null;

  trapExit = false;
  name: string | null = null;
  globalName: string | null = null;
  /** Migration: the node it came from (if it arrived by migration), and how many moves so far. */
  cameFrom: string | null = null;
  moves = 0;
  /** Arrived by migration and its previous node has not flushed yet: local messages wait here. */
  heldLocal: unknown[] | null = null;
  /** Being moved out: the mailbox length when its snapshot was taken. */
  snapshotAt = -1;
  /** Being moved out to a node that used to forward to it: that node's Drained marker has come. */
  drainSeen = false;
  /** Messages dropped because its mailbox was full. */
  dropped = 0;
  /** An exit that reached the process while it was running; applied when its step returns. */
  pendingExit: { reason: unknown } | null = null;

  constructor(readonly pid: Pid, readonly initial: string) {}
}
