/**
 * A process: a pid, a mailbox, and what it does next. Kept small (links and monitors are
 * allocated on first use) because a node holds hundreds of thousands of idle ones.
 */
import { Mailbox, NO_MAIL } from './queue.js';
import type { Pid } from './pid.js';
import type { Handler, Receive } from './directives.js';
import type { ModuleVersion } from './code-server.js';
import type { TimerEntry } from './timers.js';
import type { Behaviour } from './behaviours.js';
import type { RefTable } from './ref-table.js';

export type ProcessStatus = 'runnable' | 'running' | 'waiting' | 'suspended' | 'exited';

export class Process {
  // The fields are declared here and written by `newProcess` (below), not by a constructor.
  declare status: ProcessStatus;
  /** In the run queue already (a suspended-then-resumed process must not be queued twice). */
  declare queued: boolean;
  /** Shared and empty (NO_MAIL) until its first message: most idle processes never get one. */
  declare mailbox: Mailbox<unknown>;

  /** The next step when runnable: `stepFn(...stepArgs)`, or `stepFn(stepArg)` when stepArgs is null. */
  declare stepFn: ((...args: unknown[]) => unknown) | null;
  declare stepArgs: unknown[] | null;
  declare stepArg: unknown;

  /**
   * What it waits in: the receive, or only its handler when the receive takes any message (the
   * common case: the receive object is then garbage at once instead of living as long as the wait).
   */
  declare wait: Receive | Handler | null;
  /**
   * Its receive timeout, made on its first timed receive and reused by the next ones. The entry's
   * deadline (Infinity when none) is kept while suspended, so a resumed process gets its remaining time.
   */
  declare timer: TimerEntry | null;

  /** The module version whose code the process is in; the code server indexes processes by it. */
  declare version: ModuleVersion | null;
  /** Its neighbours in that version's process list (`process-list.ts`). */
  declare versionPrev: Process | null;
  declare versionNext: Process | null;

  declare readonly pid: Pid;
  /** The name of the function it was spawned with. */
  declare readonly initial: string;

  private constructor() {}

  /**
   * Links, monitors, name, trap_exit and behaviour, made on the first write of any of them: an
   * idle process spawned by the million has none (six fields fewer to copy in every scavenge).
   * The accessors below read and write them as if they were the process's own.
   */
  declare private more: ProcessMore | null;

  get links(): Set<Pid> | null {
    return this.more === null ? null : this.more.links;
  }
  set links(value: Set<Pid> | null) {
    (this.more ??= new ProcessMore()).links = value;
  }
  /** Monitors this process holds: ref → watched. */
  get monitors(): RefTable | null {
    return this.more === null ? null : this.more.monitors;
  }
  set monitors(value: RefTable | null) {
    (this.more ??= new ProcessMore()).monitors = value;
  }
  /** Monitors on this process: ref → watcher. */
  get watchers(): RefTable | null {
    return this.more === null ? null : this.more.watchers;
  }
  set watchers(value: RefTable | null) {
    (this.more ??= new ProcessMore()).watchers = value;
  }
  get trapExit(): boolean {
    return this.more === null ? false : this.more.trapExit;
  }
  set trapExit(value: boolean) {
    (this.more ??= new ProcessMore()).trapExit = value;
  }
  get name(): string | null {
    return this.more === null ? null : this.more.name;
  }
  set name(value: string | null) {
    (this.more ??= new ProcessMore()).name = value;
  }
  /** Set for server, statem and supervisor processes. */
  get behaviour(): Behaviour | null {
    return this.more === null ? null : this.more.behaviour;
  }
  set behaviour(value: Behaviour | null) {
    (this.more ??= new ProcessMore()).behaviour = value;
  }

  // Written for few processes (migrated, globally named, dropping messages, exiting mid-step):
  // their defaults live on the prototype (below), so an idle process does not carry them.
  declare globalName: string | null;
  /** Migration: the node it came from (if it arrived by migration), and how many moves so far. */
  declare cameFrom: string | null;
  declare moves: number;
  /** Arrived by migration and its previous node has not flushed yet: local messages wait here. */
  declare heldLocal: unknown[] | null;
  /** Being moved out: the mailbox length when its snapshot was taken. */
  declare snapshotAt: number;
  /** Being moved out to a node that used to forward to it: that node's Drained marker has come. */
  declare drainSeen: boolean;
  /** Messages dropped because its mailbox was full. */
  declare dropped: number;
  /** An exit that reached the process while it was running; applied when its step returns. */
  declare pendingExit: { reason: unknown } | null;

  /** Puts a message at the end of its mailbox (made on the first one). */
  queue(message: unknown): void {
    if (this.mailbox === NO_MAIL) this.mailbox = new Mailbox<unknown>();
    this.mailbox.push(message);
  }

  /** Empties its mailbox, giving the buffer back. */
  dropMail(): void {
    this.mailbox = NO_MAIL;
  }
}

/**
 * A new process. Made by an object literal, not by `new`: V8 allocates the objects of a literal
 * straight in the old generation once most of them outlive their first scavenges (allocation-site
 * pretenuring), and it does this only for literals. A node spawning 10^6 idle processes otherwise
 * copies each process twice (young generation, then old) before it settles.
 */
export function newProcess(pid: Pid, initial: string): Process {
  return {
    __proto__: Process.prototype,
    status: 'runnable',
    queued: false,
    mailbox: NO_MAIL,
    stepFn: null,
    stepArgs: null,
    stepArg: undefined,
    wait: null,
    timer: null,
    version: null,
    versionPrev: null,
    versionNext: null,
    pid,
    initial,
    more: null,
  } as unknown as Process;
}

/** What a process has once it links, monitors, is monitored, is named, traps exits or is a behaviour. */
class ProcessMore {
  links: Set<Pid> | null = null;
  monitors: RefTable | null = null;
  watchers: RefTable | null = null;
  trapExit = false;
  name: string | null = null;
  behaviour: Behaviour | null = null;
}

Object.assign(Process.prototype, {
  globalName: null,
  cameFrom: null,
  moves: 0,
  heldLocal: null,
  snapshotAt: -1,
  drainSeen: false,
  dropped: 0,
  pendingExit: null,
});
