/**
 * Behaviour processes (server, statem) and the system protocol on them, as OTP's sys: start one,
 * suspend and resume any process, change a suspended behaviour's code (codeChange on a copy of
 * its state), read or replace its state. Keeps the index of behaviour processes by callback
 * module (every module on a statem's stack), which says whom an upgrade must suspend.
 */
import { BadArgument, Refused, Timeout, UnknownFunction } from '../errors.js';
import { Behaviour, deepCopy, dispatch, pinnedVersion, vsnOf, type BehaviourKind, type DispatchHost } from './behaviours.js';
import type { CodeOps } from './code-ops.js';
import type { CodeServer, ModuleVersion } from './code-server.js';
import { Receive } from './directives.js';
import type { KernelPlatform } from './kernel.js';
import type { Pid } from './pid.js';
import type { Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import { ExitNow, type Scheduler } from './scheduler.js';
import type { Signalling } from './signalling.js';
import { Supervisors } from './supervisor.js';
import { SpecError } from './supervisor-spec.js';
import type { SpawnOptions } from './types.js';
import { errorReason, errorText, safeString } from './values.js';
import { Durables } from './durable.js';
import type { Capabilities, Limits } from './capabilities.js';

/** What an upgrade saves of a behaviour before converting it, to put back on rollback. */
export interface BehaviourSnapshot {
  state: unknown;
  vsn: unknown;
  pinned: ModuleVersion | null;
}

export class SysOps {
  /** Behaviour processes by callback module (all modules on a statem's stack). */
  private readonly index = new Map<string, Set<Process>>();
  private readonly dispatchHost: DispatchHost;
  readonly supervisors: Supervisors;
  readonly durables: Durables;

  constructor(
    node: string,
    private readonly platform: KernelPlatform,
    private readonly code: CodeServer,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
    private readonly signals: Signalling,
    capabilities: Capabilities,
    limits: Limits,
    private readonly codeOps: CodeOps,
  ) {
    this.durables = new Durables(node, platform, capabilities, limits, scheduler, (pid, message) => this.signals.send(pid, message));
    this.dispatchHost = {
      current: (module) => this.code.current(module),
      send: (pid, message) => this.signals.send(pid, message),
      reply: (b, from, value) => {
        if (b.durable === null || !this.durables.reply(b, from, value)) this.signals.send(from.pid, { $reply: from.ref, value });
      },
      exit: (reason) => {
        throw new ExitNow(reason);
      },
      index: (proc, from, to) => {
        const b = proc.behaviour!;
        const modules = new Set([b.module, ...b.stack]);
        if (from !== null && !modules.has(from)) this.reindex(proc, from, null);
        if (to !== null) this.reindex(proc, null, to);
      },
    };
    this.supervisors = new Supervisors(
      node,
      code,
      table,
      scheduler,
      signals,
      () => platform.now(),
      (kind, module, args, options, parent) => this.startOrIgnore(kind, module, args, options, parent),
    );
  }

  /**
   * Starts a server or statem process with `module` as its callback module. Its `init(...args)`
   * runs now, in the new process, so a failing init is an error here and no process is left.
   */
  start(kind: BehaviourKind, module: string, args: unknown[], options: SpawnOptions, parent: Process | null): Pid {
    return this.startOrIgnore(kind, module, args, options, parent) as Pid;
  }

  /**
   * As `start`; a supervisor whose init returns 'ignore' ends normally and this returns undefined
   * (OTP's `ignore`). A supervisor's init also starts its children, as the new process.
   */
  startOrIgnore(kind: BehaviourKind, module: string, args: unknown[], options: SpawnOptions, parent: Process | null): Pid | undefined {
    if (kind !== 'server' && kind !== 'statem' && kind !== 'supervisor') throw new BadArgument(`unknown behaviour ${JSON.stringify(kind)}`);
    if (!Array.isArray(args)) throw new BadArgument('behaviour args must be an array');
    const version = this.code.current(module);
    const init = version.exports.init;
    if (typeof init !== 'function') throw new UnknownFunction(`callback module '${module}' exports no init()`, { module, function: 'init' });
    if (options.name !== undefined) this.table.checkName(options.name);
    const durable = this.durables.declare(kind, options);
    // The process exists while init runs (init may register it, link, spawn): if init fails, it
    // ends like any process, so its names are freed and its links told.
    const proc = this.table.create(`${kind}:${module}`);
    proc.status = 'running';
    let state: unknown;
    let failure: { reason: unknown; message: string } | undefined;
    try {
      state = this.scheduler.asProcess(proc, () => {
        const result = init(...args);
        return kind === 'supervisor' ? this.supervisors.init(proc, module, args, result) : result;
      });
      if (kind === 'statem' && (typeof state !== 'object' || state === null || !('state' in state))) {
        failure = { reason: 'bad_init', message: `init of statem ${module} must return { state, data }` };
      }
    } catch (error) {
      const reason = error instanceof ExitNow || error instanceof SpecError ? error.reason : errorReason(error);
      failure = { reason, message: `init of ${module} failed: ${error instanceof SpecError ? safeString(reason) : errorText(error)}` };
    }
    if (failure || proc.pendingExit) {
      const reason = proc.pendingExit ? proc.pendingExit.reason : failure!.reason;
      this.signals.terminate(proc, reason);
      this.signals.drain();
      throw new Refused(failure?.message ?? `init of ${module} was ended: ${safeString(reason)}`, { module, reason });
    }
    if (state === 'ignore' && kind === 'supervisor') {
      this.signals.terminate(proc, 'normal');
      this.signals.drain();
      return undefined;
    }
    if (kind === 'statem') state = { state: (state as { state: unknown }).state, data: (state as { data?: unknown }).data };
    if (durable) {
      // A durable server's init runs as always (its names, links and helpers exist again); the saved state then replaces what it returned.
      try {
        const restored = this.durables.restore(proc, durable, version);
        if (restored) state = restored.state;
      } catch (error) {
        throw this.failedStart(proc, error as Refused);
      }
    }
    proc.behaviour = new Behaviour(kind, module, state, vsnOf(version), [], parent && options.link ? parent.pid : null);
    if (durable) {
      proc.behaviour.durable = durable;
      this.durables.claim(proc, proc.behaviour);
    }
    this.reindex(proc, null, module);
    this.table.setUp(proc, options, parent);
    this.scheduler.continueWith(proc, this.loop(proc));
    this.signals.drain();
    this.scheduler.afterExternalWork();
    return proc.pid;
  }

  /** A start that failed after its process existed: it ends (names freed, links told), and the error is the start's. */
  private failedStart(proc: Process, error: Refused): Refused {
    this.signals.terminate(proc, { restore_failed: (error.details as { reason?: unknown } | undefined)?.reason ?? error.message });
    this.signals.drain();
    return error;
  }

  /** A behaviour process that arrived by migration: indexed, and waiting in its loop. */
  adopt(proc: Process): void {
    const b = proc.behaviour!;
    for (const m of new Set([b.module, ...b.stack])) this.reindex(proc, null, m);
    this.scheduler.continueWith(proc, this.loop(proc));
  }

  /** A behaviour process ended or moved away: out of the index. */
  forget(proc: Process): void {
    const b = proc.behaviour!;
    if (b.durable) this.durables.release(proc);
    for (const m of new Set([b.module, ...b.stack])) this.reindex(proc, m, null);
  }

  /** The one receive a behaviour process waits in, built once: no allocation per message. */
  private loop(proc: Process): Receive {
    const loop: Receive = new Receive(
      null,
      (message) => {
        const b = proc.behaviour!;
        if (b.kind === 'supervisor') return this.supervisors.handle(proc, message, loop);
        if (!b.durable) {
          dispatch(this.dispatchHost, proc, b, message);
          return loop;
        }
        const before = b.state;
        dispatch(this.dispatchHost, proc, b, message);
        return this.durables.after(proc, before, loop);
      },
      null,
      null,
    );
    proc.behaviour!.loop = loop;
    return loop;
  }

  private reindex(proc: Process, from: string | null, to: string | null): void {
    if (from !== null) {
      const set = this.index.get(from);
      set?.delete(proc);
      if (set && !set.size) this.index.delete(from);
    }
    if (to !== null) {
      let set = this.index.get(to);
      if (!set) this.index.set(to, (set = new Set()));
      set.add(proc);
    }
  }

  /** Behaviour processes that use `module` as a callback module. O(result). */
  behavioursOf(module: string): Pid[] {
    return Array.from(this.index.get(module) ?? [], (p) => p.pid);
  }

  /**
   * Behaviour processes that use `module` (whose `current` version they run: the kernel's loop calls
   * the current version at each message) and are not in one of its versions' own index (a process
   * pinned by a rolling upgrade is in the index of the version it is pinned to).
   */
  usersOf(module: string, current: ModuleVersion): Process[] {
    const out: Process[] = [];
    for (const p of this.index.get(module) ?? []) if (p.version?.module !== current.module) out.push(p);
    return out;
  }

  /**
   * Pins a behaviour process to `version` of its callback module (null: unpins it): its messages
   * go to that version, and the version's process index counts it, so `lingering`, purges and
   * `checkProcessCode` see it in old code while it waits for its conversion.
   */
  pin(pid: Pid, version: ModuleVersion | null): void {
    const proc = this.table.require(pid);
    const loop = this.behaviourOf(proc, 'pin').loop;
    if (!loop) return;
    loop.version = version;
    this.codeOps.moveTo(proc, version);
  }

  /** A behaviour process's callback module (the top of a statem's stack). */
  callbackModule(pid: Pid): string | undefined {
    return this.table.get(pid)?.behaviour?.module;
  }

  /** The version a behaviour process is pinned to (null when it runs its callback module's current version). */
  pinnedTo(pid: Pid): ModuleVersion | null {
    const b = this.table.get(pid)?.behaviour;
    return b ? pinnedVersion(b) : null;
  }

  /** Whether a behaviour process has `module` as its callback module (or on its statem stack). */
  usesModule(pid: Pid, module: string): boolean {
    const b = this.table.get(pid)?.behaviour;
    return b !== null && b !== undefined && (b.module === module || b.stack.includes(module));
  }

  /** Suspends any process (erlang:suspend_process). */
  suspend(pid: Pid): void {
    this.scheduler.suspend(this.table.require(pid));
  }

  resume(pid: Pid): void {
    this.scheduler.resume(this.table.require(pid));
  }

  /**
   * OTP's `sys:change_code`: runs the current version's `codeChange(oldVsn, state, extra)` on a
   * suspended behaviour process. It works on a copy of the state; if it throws, returns undefined
   * or runs longer than `timeoutMs`, the process keeps its state exactly and the error says why.
   */
  changeCode(pid: Pid, module: string, oldVsn: unknown, extra: unknown, timeoutMs: number): { from: unknown; to: unknown } {
    const proc = this.table.require(pid);
    const b = this.behaviourOf(proc, 'changeCode');
    if (b.module !== module && !b.stack.includes(module)) throw new BadArgument(`${pid} does not use '${module}' as a callback module`, { pid, module });
    return this.changeCodeOf(proc, b, module, oldVsn, extra, timeoutMs);
  }

  // ---- the same, for upgrade transactions: one lookup per process and step, however many processes

  /** Suspends a process for an upgrade: 'held' when it was suspended already (it stays so), undefined when it is gone. */
  hold(pid: Pid): 'suspended' | 'held' | undefined {
    const proc = this.table.get(pid);
    if (!proc) return undefined;
    if (proc.status === 'suspended') return 'held';
    this.scheduler.suspend(proc);
    return 'suspended';
  }

  /** Resumes a process an upgrade suspended, if it is still there. */
  release(pid: Pid): void {
    const proc = this.table.get(pid);
    if (proc) this.scheduler.resume(proc);
  }

  /**
   * changeCode on a suspended process that uses `module` (undefined when it does not, or is gone),
   * returning what a rollback puts back.
   */
  convert(pid: Pid, module: string, oldVsn: unknown, extra: unknown, timeoutMs: number): BehaviourSnapshot | undefined {
    const proc = this.table.get(pid);
    const b = proc?.behaviour;
    if (!b || (b.module !== module && !b.stack.includes(module))) return undefined;
    const saved = { state: b.state, vsn: b.stateVsn, pinned: pinnedVersion(b) };
    this.changeCodeOf(proc, b, module, oldVsn, extra, timeoutMs);
    return saved;
  }

  private changeCodeOf(proc: Process, b: Behaviour, module: string, oldVsn: unknown, extra: unknown, timeoutMs: number): { from: unknown; to: unknown } {
    const pid = proc.pid;
    if (proc.status !== 'suspended') throw new Refused(`${pid} must be suspended before changeCode`, { pid });
    const version = this.code.current(module);
    const from = oldVsn === undefined ? b.stateVsn : oldVsn;
    const to = vsnOf(version);
    const convert = version.exports.codeChange;
    if (b.kind === 'supervisor') {
      // OTP's supervisor code_change: the new init runs again and its specs update the children.
      try {
        this.supervisors.codeChange(proc, version);
      } catch (error) {
        const reason = error instanceof SpecError ? error.reason : errorReason(error);
        throw new Refused(`code change of supervisor ${pid} (${version}) failed: ${error instanceof SpecError ? safeString(reason) : errorText(error)}`, {
          pid,
          module,
          reason,
        });
      }
    } else if (typeof convert === 'function') {
      const started = this.platform.now();
      let state: unknown;
      try {
        state = this.scheduler.asProcess(proc, () => convert(from, deepCopy(b.state), extra));
      } catch (error) {
        throw new Refused(`codeChange of ${version} failed for ${pid}: ${errorText(error)}`, { pid, module, reason: errorReason(error) });
      }
      const took = this.platform.now() - started;
      if (took > timeoutMs)
        throw new Timeout(`codeChange of ${version} took ${took.toFixed(1)} ms for ${pid}, over its ${timeoutMs} ms limit: state kept`, { pid, module });
      if (state === undefined) throw new Refused(`codeChange of ${version} returned undefined for ${pid}: return the new state`, { pid, module });
      if (b.kind === 'statem' && (typeof state !== 'object' || state === null || !('state' in state))) {
        throw new Refused(`codeChange of statem ${version} must return { state, data } for ${pid}`, { pid, module });
      }
      b.state = state;
    }
    b.stateVsn = to;
    // Converted to the current version: a process a rolling upgrade pinned runs it from now on.
    if (b.loop?.version?.name === module) this.pin(pid, null);
    return { from, to };
  }

  getState(pid: Pid): unknown {
    return this.behaviourOf(this.table.require(pid), 'getState').state;
  }

  replaceState(pid: Pid, state: unknown): void {
    this.behaviourOf(this.table.require(pid), 'replaceState').state = state;
  }

  /** Puts back a behaviour's saved state, vsn and pin (upgrade rollback); nothing if it is gone. */
  restoreState(pid: Pid, saved: BehaviourSnapshot): void {
    const b = this.table.get(pid)?.behaviour;
    if (!b) return;
    b.state = saved.state;
    b.stateVsn = saved.vsn;
    if (pinnedVersion(b) !== saved.pinned) this.pin(pid, saved.pinned);
  }

  snapshot(pid: Pid): BehaviourSnapshot | undefined {
    const b = this.table.get(pid)?.behaviour;
    return b ? { state: b.state, vsn: b.stateVsn, pinned: pinnedVersion(b) } : undefined;
  }

  private behaviourOf(proc: Process, what: string): Behaviour {
    if (!proc.behaviour) throw new BadArgument(`${what}: ${proc.pid} is not a server or statem process`, { pid: proc.pid });
    return proc.behaviour;
  }
}
