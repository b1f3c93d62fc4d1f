/**
 * The process table of one node: its live processes by pid, the names registered here, and the
 * host's replica of the global names. A name stays registered here after its process migrated
 * away (sends to it are forwarded), so it cannot be taken meanwhile. The scheduler, signals,
 * relocation, code operations and the process API share this one object; none sees its maps.
 */
import { BadArgument, NameTaken, NoProcess, Refused } from '../errors.js';
import { formatPid, isPid, type Pid } from './pid.js';
import { newProcess, type Process } from './proc.js';
import { ProcessIndex } from './process-index.js';
import type { Target } from './signals.js';
import type { SpawnOptions } from './types.js';

export class ProcessTable {
  private readonly procs: ProcessIndex;
  private readonly names = new Map<string, Process>();
  /** Names registered here by processes that migrated away: name → pid. */
  private readonly movedNames = new Map<string, Pid>();
  private readonly globals = new Map<string, Pid>();
  /** Global names held (in the replica) by processes of this node: what `limits.globalNames` bounds. */
  private readonly claimed = new Set<string>();
  private nextId = 0;

  constructor(
    private readonly node: string,
    private readonly creation: number,
  ) {
    this.procs = new ProcessIndex(`<${node}.`);
  }

  // ---- processes ------------------------------------------------------------------------------

  /** A new process under a fresh pid of this node, already in the table. */
  create(initial: string): Process {
    const id = ++this.nextId;
    const proc = newProcess(formatPid(this.node, id, this.creation), initial);
    this.procs.addOwn(proc, id);
    return proc;
  }

  /** A process that arrived by migration under its own pid; the names it left here are its again. */
  admit(proc: Process): void {
    this.procs.addForeign(proc);
    for (const [name, pid] of this.movedNames) {
      if (pid !== proc.pid) continue;
      this.movedNames.delete(name);
      this.names.set(name, proc);
      proc.name = name;
    }
  }

  /** A process ended: its pid and its local name go. */
  remove(proc: Process): void {
    this.procs.delete(proc);
    if (proc.name !== null) this.names.delete(proc.name);
  }

  /** A process migrated away: its pid goes, its name stays registered here for forwarding. */
  moveAway(proc: Process): void {
    this.procs.delete(proc);
    if (proc.name !== null) {
      this.names.delete(proc.name);
      this.movedNames.set(proc.name, proc.pid);
    }
  }

  get(pid: Pid): Process | undefined {
    return this.procs.get(pid);
  }
  has(pid: Pid): boolean {
    return this.procs.get(pid) !== undefined;
  }

  /** The live process `pid`, or NoProcess. */
  require(pid: Pid): Process {
    const proc = this.procs.get(pid);
    if (!proc) throw new NoProcess(`no process ${pid} on node '${this.node}'`, { pid });
    return proc;
  }

  /** A live process by pid or by local name. */
  lookup(target: Target): Process | undefined {
    return isPid(target) ? this.procs.get(target) : this.names.get(target);
  }

  get size(): number {
    return this.procs.size;
  }
  values(): IterableIterator<Process> {
    return this.procs.values();
  }
  pids(): Pid[] {
    return Array.from(this.procs.values(), (p) => p.pid);
  }

  // ---- local names ----------------------------------------------------------------------------

  /** The live local process registered as `name`. */
  named(name: string): Process | undefined {
    return this.names.get(name);
  }

  /** The pid registered as `name` here, also when that process migrated away. */
  whereis(name: string): Pid | undefined {
    return this.names.get(name)?.pid ?? this.movedNames.get(name);
  }

  /** After a restart: `name` here is held again by its process that migrated away (unless something here took it). */
  restoreMovedName(name: string, pid: Pid): void {
    if (!this.names.has(name) && !this.movedNames.has(name)) this.movedNames.set(name, pid);
  }

  /** The pid of a process that migrated away and left `name` here. */
  movedName(name: string): Pid | undefined {
    return this.movedNames.get(name);
  }

  /** Throws unless `name` is a valid name that nothing here holds. */
  checkName(name: unknown): void {
    if (typeof name !== 'string' || !name || isPid(name) || name.length > 255) throw new BadArgument(`bad registered name ${JSON.stringify(name)}`);
    if (this.names.has(name) || this.movedNames.has(name)) throw new NameTaken(`the name '${name}' is already registered on node '${this.node}'`, { name });
  }

  register(name: string, proc: Process): void {
    this.checkName(name);
    if (proc.name !== null) throw new BadArgument(`process ${proc.pid} is already registered as '${proc.name}'`);
    proc.name = name;
    this.names.set(name, proc);
  }

  unregister(name: string): void {
    const proc = this.names.get(name);
    if (!proc) throw new NoProcess(`no process registered as '${name}'`, { name });
    this.names.delete(name);
    proc.name = null;
  }

  /** Forgets the names left here by migrated processes for which `keep(pid)` is false. */
  forgetMovedNames(keep: (pid: Pid) => boolean): void {
    for (const [name, pid] of this.movedNames) if (!keep(pid)) this.movedNames.delete(name);
  }

  /** What spawn options say about the table and the new process: trap exits, a name, a link to its parent. */
  setUp(proc: Process, options: SpawnOptions, parent: Process | null): void {
    if (options.trapExit) proc.trapExit = true;
    if (options.name !== undefined) this.register(options.name, proc);
    if (parent && options.link) {
      (parent.links ??= new Set()).add(proc.pid);
      (proc.links ??= new Set()).add(parent.pid);
    }
  }

  // ---- global names (the host's replica) ------------------------------------------------------

  /** The host's word on global names, in one batch (a name with `null` is free). */
  setGlobals(entries: [string, Pid | null][]): void {
    for (const [name, pid] of entries) {
      if (pid) this.globals.set(name, pid);
      else this.globals.delete(name);
      const local = pid === null ? undefined : this.procs.get(pid);
      if (local) {
        local.globalName = name;
        this.claimed.add(name);
      } else {
        this.claimed.delete(name);
      }
    }
  }

  global(name: string): Pid | undefined {
    return this.globals.get(name);
  }

  /**
   * Registers `proc` globally in the replica (the host hears of it by an event, and may still
   * refuse it). One name per process, at most `max` held by this node's processes at once.
   */
  claimGlobal(name: string, proc: Process, max: number): void {
    if (typeof name !== 'string' || !name || name.length > 255) throw new BadArgument(`bad global name ${JSON.stringify(name)}`);
    if (this.globals.has(name)) throw new NameTaken(`the global name '${name}' is already registered`, { name });
    if (proc.globalName !== null && this.globals.get(proc.globalName) === proc.pid) {
      throw new BadArgument(`process ${proc.pid} is already registered globally as '${proc.globalName}'`);
    }
    if (this.claimed.size >= max) {
      throw new Refused(`node '${this.node}' already holds ${this.claimed.size} global names, its limit`, { limit: max, name });
    }
    this.globals.set(name, proc.pid);
    this.claimed.add(name);
    proc.globalName = name;
  }

  /** An ending process gives its global name up: true when it still held it. */
  releaseGlobal(proc: Process): boolean {
    if (proc.globalName === null || this.globals.get(proc.globalName) !== proc.pid) return false;
    this.globals.delete(proc.globalName);
    this.claimed.delete(proc.globalName);
    return true;
  }
}
