/**
 * The in-node kernel: processes, mailboxes, signals, names, the scheduler and the code server.
 * It runs unchanged in every kind of node and uses no Node API: timers, compilation, the clock
 * and the wires to other nodes come through the small `KernelPlatform` interface.
 */
import { fromWire, type WireError } from '../errors.js';
import { BadArgument, NameTaken, NoProcess, NotAllowed, NotInProcess, Refused, Timeout, TooLarge, UnknownFunction } from '../errors.js';
import { CodeServer, type ModuleFactory, type ModuleVersion } from './code-server.js';
import type { CodePolicy, PurgeMode } from './policy.js';
import { After, Clause, Next, OnMigrate, Receive, buildAfter, buildClause, buildReceive } from './directives.js';
import { Behaviour, deepCopy, dispatch, vsnOf, type BehaviourKind, type DispatchHost, type From } from './behaviours.js';
import { ANY } from './match.js';
import { formatPid, isPid, nodeOf, NODE_NAME, type Pid } from './pid.js';
import { Process } from './proc.js';
import { RingQueue } from './queue.js';
import { Sig, type DownMessage, type Envelope, type Target } from './signals.js';
import { TimerHeap, type TimerEntry } from './timers.js';
import { Relocation } from './relocation.js';
import { CodeOps } from './code-ops.js';
import { ALL, allows, type Capabilities, type Limits, type MailboxLimit } from './capabilities.js';
import { assertCloneable, errorReason, errorText, estimateSize, isQuietReason, safeString } from './values.js';

export { assertCloneable, errorReason, estimateSize } from './values.js';
import type { ProcessInfo, ModuleInfo, KernelEvent, SpawnOptions, Dest, LoadReport, PurgeReport, ProcessStatus, MigrationSnapshot, MigrationOutcome } from './types.js';

export interface KernelPlatform {
  /** A monotonic clock in ms, for timeouts and slices. */
  now(): number;
  /** Wall-clock time in ms since the epoch, for what people read (when a version loaded). */
  wallClock(): number;
  /** One timer at a time: the kernel arms it for its earliest receive timeout. */
  setTimer(ms: number, fire: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** Run `task` soon, after pending I/O (a macrotask), so inbound messages interleave with work. */
  schedule(task: () => void): void;
  /** Source text (CommonJS shape) to a module factory; throws on a syntax error. */
  compile(js: string, filename: string): ModuleFactory;
  /** Signals for processes on another node (or the host, node `host`), batched per slice. */
  outbound(node: string, envelopes: Envelope[]): void;
  emit(event: KernelEvent): void;
}

export interface KernelOptions {
  node: string;
  /** Incarnation of the node: 0 first, +1 per restart. Part of every pid. */
  creation?: number;
  /** How long one scheduler slice may run before yielding to I/O. */
  sliceMs?: number;
  capabilities?: Capabilities;
  limits?: Limits;
}

/** The host's service process: remote spawns and host function calls are messages to it. */
export const HOST_SERVICE = '<host.0>' as Pid;

/** Thrown by `exit(reason)` to end the calling process from any depth. */
export class ExitNow {
  constructor(readonly reason: unknown) {}
}

const EMPTY: unknown[] = [];
/** Taken before any module code runs: a sandbox may withhold or replace Math.random. */
const random = Math.random;
/** Reductions (steps and sends) a process may use before it goes to the back of the run queue. */
const REDUCTIONS = 2000;
/** Envelopes per post to another node: larger structured clones get slower per message. */
const MAX_BATCH = 4096;

export class Kernel {
  readonly node: string;
  readonly creation: number;
  readonly code: CodeServer;
  readonly capabilities: Capabilities;
  readonly limits: Limits;
  private readonly maxMessageBytes: number | undefined;
  private readonly mailboxLimit: MailboxLimit | undefined;

  private readonly procs = new Map<Pid, Process>();
  private readonly names = new Map<string, Process>();
  private readonly globals = new Map<string, Pid>();
  private readonly runQueue = new RingQueue<Process>();
  private readonly signals = new RingQueue<Envelope>();
  private readonly timers = new TimerHeap();
  private readonly outbox = new Map<string, Envelope[]>();
  private readonly sliceMs: number;
  private nextId = 0;
  /** Steps run so far: the slice checks its clock every few dozen of them. */
  private steps = 0;
  /**
   * Reductions left to the running process, as on the BEAM: each step and each send costs one, so
   * a process that sends a burst yields to its receivers instead of running on with a full budget.
   */
  private budget = 0;
  /** When the running slice should yield. */
  private sliceDeadline = 0;
  private nextRef = 0;
  private current: Process | null = null;
  private applying = false;
  private scheduled = false;
  /** True while a slice runs: it flushes the outbox when it ends. */
  private inSlice = false;
  private timerHandle: unknown = null;
  private timerDeadline = Infinity;
  /** Code operations under the node's policies. */
  private readonly codeOps: CodeOps;
  /** The node whose envelopes are being applied, or null for local signals. */
  private inboundFrom: string | null = null;
  /** Migration: what moved away from here and where it went. */
  private readonly relocation: Relocation;
  /** Behaviour processes by callback module (all modules on a statem's stack): whom an upgrade suspends. */
  private readonly behaviourIndex = new Map<string, Set<Process>>();

  constructor(private readonly host: KernelPlatform, options: KernelOptions) {
    if (!NODE_NAME.test(options.node) || options.node === 'host') throw new BadArgument(`bad node name ${JSON.stringify(options.node)}`);
    this.node = options.node;
    this.creation = options.creation ?? 0;
    this.sliceMs = options.sliceMs ?? 4;
    this.capabilities = options.capabilities ?? ALL;
    this.limits = options.limits ?? {};
    this.maxMessageBytes = this.limits.maxMessageBytes;
    this.mailboxLimit = this.limits.mailbox;
    this.code = new CodeServer({ compile: host.compile, apiFor: (v) => this.apiFor(v), now: host.wallClock }, this.node, this.capabilities.aliases);
    this.codeOps = new CodeOps({
      node: this.node,
      code: this.code,
      capabilities: this.capabilities,
      procs: this.procs,
      emit: (event) => this.host.emit(event),
      after: (ms, fire) => {
        const entry = this.timers.add(this.host.now() + ms, fire);
        this.rearm();
        return { cancel: () => this.timers.cancel(entry) };
      },
      terminate: (proc, reason) => this.terminate(proc, reason),
      drain: () => this.drain(),
      afterExternalWork: () => this.afterExternalWork(),
    });
    this.relocation = new Relocation({
      node: this.node,
      code: this.code,
      procs: this.procs,
      names: this.names,
      now: () => this.host.now(),
      post: (node, envelope) => this.post(node, envelope),
      process: (pid) => this.process(pid),
      suspend: (pid) => this.suspend(pid),
      resume: (pid) => this.resume(pid),
      asProcess: (proc, run) => this.asProcess(proc, run),
      moveTo: (proc, version) => this.moveTo(proc, version),
      disarm: (proc) => this.disarm(proc),
      enqueue: (proc) => this.enqueue(proc),
      continueWith: (proc, result) => this.continueWith(proc, result),
      behaviourLoop: (proc) => this.behaviourLoop(proc),
      indexBehaviour: (proc, from, to) => this.indexBehaviour(proc, from, to),
      deliverMessage: (proc, message) => this.deliverMessage(proc, message),
      afterExternalWork: () => this.afterExternalWork(),
    });
  }

  // ---- control operations (the host calls these) ------------------------------------------

  // Code operations (src/kernel/code-ops.ts).
  setPolicy(policy: CodePolicy, module?: string): void { this.codeOps.setPolicy(policy, module); }
  policyFor(module: string): CodePolicy { return this.codeOps.policyFor(module); }
  load(name: string, js: string, options: { purge?: PurgeMode } = {}): LoadReport | Promise<LoadReport> { return this.codeOps.load(name, js, options); }
  purge(module: string, mode: PurgeMode = 'kill'): PurgeReport | Promise<PurgeReport> { return this.codeOps.purge(module, mode); }
  softPurge(module: string): PurgeReport { return this.codeOps.softPurge(module); }
  checkProcessCode(pid: Pid, module: string): boolean { return this.codeOps.checkProcessCode(pid, module); }
  /** The processes in old code of `module` (or one version): O(lingering), from the per-version index. */
  lingering(module: string, version?: number): Pid[] { return this.codeOps.lingering(module, version); }
  deleteModule(module: string): PurgeReport { return this.codeOps.deleteModule(module); }

  /** Spawns `module.fn(...args)` in the module's current version. */
  spawn(module: string, fn: string, args: unknown[] = [], options: SpawnOptions = {}): Pid {
    if (!Array.isArray(args)) throw new BadArgument('spawn args must be an array');
    const entry = this.code.entry(module, fn);
    if (options.name !== undefined) this.checkName(options.name);
    const proc = this.newProcess(entry.fn, args, entry.version, `${module}.${fn}`);
    this.applySpawnOptions(proc, options, null);
    this.afterExternalWork();
    return proc.pid;
  }

  /** Signals from other nodes (or the host), in order. */
  /** Signals from another node (or the host: `from` 'host'), in order. */
  deliver(envelopes: Envelope[], from = 'host'): void {
    // Applied at once, with their source known: a process that just arrived by migration takes
    // only its previous node's forwards until that node says it is done.
    this.drain();
    const saved = this.inboundFrom;
    this.inboundFrom = from;
    try {
      for (const envelope of envelopes) {
        this.signals.push(envelope);
        this.drain();
      }
    } finally {
      this.inboundFrom = saved;
    }
    this.afterExternalWork();
  }

  /** `exit(pid, reason)` from outside any process. */
  exit(pid: Pid, reason: unknown): void {
    if (!this.procs.has(pid)) throw new NoProcess(`no process ${pid} on node '${this.node}'`, { pid });
    this.signal([Sig.Exit, pid, formatPid('host', 0, 0), reason, 0]);
    this.afterExternalWork();
  }

  /** A node went away: links and monitors to its processes fire with `noconnection`. */
  nodeDown(node: string, lost: Pid[] = []): void {
    const prefix = `<${node}.`;
    // Gone with it: processes whose pids name it (unless they migrated here) and processes that
    // had migrated to it (`lost`, from the host's registry).
    const lostSet = new Set(lost);
    const gone = (pid: Pid): boolean => lostSet.has(pid) || (pid.startsWith(prefix) && !this.procs.has(pid));
    for (const proc of this.procs.values()) {
      if (proc.links) for (const pid of proc.links) if (gone(pid)) this.signals.push([Sig.Exit, proc.pid, pid, 'noconnection', 1]);
      if (proc.monitors) for (const [ref, pid] of proc.monitors) if (gone(pid)) this.signals.push([Sig.Down, proc.pid, pid, ref, 'noconnection']);
      if (proc.watchers) for (const [ref, pid] of proc.watchers) if (gone(pid)) proc.watchers.delete(ref);
    }
    // Forwarding into the dead node leads nowhere: drop it, so messages are dropped here.
    for (const [pid, entry] of this.relocation.moved) if (entry.node === node || lostSet.has(pid)) this.relocation.moved.delete(pid);
    for (const [name, pid] of this.relocation.movedNames) if (!this.relocation.moved.has(pid)) this.relocation.movedNames.delete(name);
    // Migration markers that can no longer come: don't wait for them.
    for (const [pid, target] of this.relocation.pendingFlush) {
      if (target === node) this.relocation.pendingFlush.delete(pid);
      else if (pid.startsWith(prefix)) {
        this.relocation.pendingFlush.delete(pid);
        this.post(target, [Sig.Flushed, pid]);
      }
    }
    for (const proc of this.procs.values()) if (proc.heldLocal !== null && proc.cameFrom === node) this.relocation.flushed(proc.pid);
    this.drain();
    this.afterExternalWork();
  }

  /** The host's replica of the system-wide name registry. */
  setGlobal(name: string, pid: Pid | null): void {
    if (pid) this.globals.set(name, pid); else this.globals.delete(name);
    const local = pid === null ? undefined : this.procs.get(pid);
    if (local) local.globalName = name;
  }

  /** The pid registered under `name` here (also when that process migrated away: sends still reach it). */
  whereis(name: string): Pid | undefined { return this.names.get(name)?.pid ?? this.relocation.movedNames.get(name); }

  processes(): ProcessInfo[] {
    return Array.from(this.procs.values(), (p) => this.info(p));
  }

  processInfo(pid: Pid): ProcessInfo | undefined {
    const proc = this.procs.get(pid);
    return proc && this.info(proc);
  }

  modules(): ModuleInfo[] {
    const out: ModuleInfo[] = [];
    for (const record of this.code.all()) {
      if (!record.versions.length) continue;
      out.push({
        name: record.name,
        versions: record.versions.map((v) => ({ version: v.version, state: v.state, processes: v.processes.size, loadedAt: v.loadedAt, draining: v.draining })),
        policy: this.policyFor(record.name),
      });
    }
    return out;
  }

  get processCount(): number { return this.procs.size; }

  /** A process's status, or undefined when it is gone. */
  statusOf(pid: Pid): ProcessStatus | undefined { return this.procs.get(pid)?.status; }

  /** Whether a behaviour process has `module` as its callback module (or on its statem stack). */
  usesModule(pid: Pid, module: string): boolean {
    const b = this.procs.get(pid)?.behaviour;
    return b !== null && b !== undefined && (b.module === module || b.stack.includes(module));
  }

  /** Every live pid (erlang:processes/0). */
  pids(): Pid[] { return Array.from(this.procs.keys()); }

  /**
   * After the embedder stopped a step from outside (an isolate's CPU limit cuts a slice, and no
   * `finally` runs): the process that was running dies with `reason` and the scheduler's state is
   * made whole again, so the node and its other processes go on.
   */
  recover(reason: unknown): Pid | undefined {
    const culprit = this.current;
    this.current = null;
    this.applying = false;
    this.inSlice = false;
    this.scheduled = false;
    if (culprit) {
      culprit.pendingExit = null;
      this.terminate(culprit, reason);
    }
    this.drain();
    this.flush();
    if (this.runQueue.length) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
    this.rearm();
    return culprit?.pid;
  }

  // ---- migration (src/kernel/relocation.ts) ----------------------------------------------------

  /** Takes snapshots of processes to move; each is suspended until commit or abort. */
  migrateOut(pids: Pid[]): MigrationOutcome<MigrationSnapshot>[] { return this.relocation.out(pids); }
  /** Starts moved processes here under their own pids, their states converted by this node's code. */
  migrateIn(snapshots: MigrationSnapshot[], extra?: unknown, timeoutMs = 5_000): MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean }>[] {
    return this.relocation.in(snapshots, extra, timeoutMs);
  }
  /** The moves are done: forward what queued since the snapshots, then keep forwarding. */
  migrateCommit(pids: Pid[], to: string, awaitDrain: Pid[] = []): void { this.relocation.commit(pids, to, awaitDrain); }
  /** The moves failed: the processes go on here exactly as they were. */
  migrateAbort(pids: Pid[]): void { this.relocation.abort(pids); }
  /** After a restart: the host tells the home node where its migrated processes live now. */
  restoreForwards(entries: [Pid, string][]): void { this.relocation.restoreForwards(entries); }

  // ---- behaviours and the system protocol (OTP's sys) -----------------------------------------

  /**
   * Starts a server or statem process with `module` as its callback module. Its `init(...args)`
   * runs now, in the new process, so a failing init is an error here and no process is left.
   */
  startBehaviour(kind: BehaviourKind, module: string, args: unknown[] = [], options: SpawnOptions = {}, parent: Process | null = null): Pid {
    if (kind !== 'server' && kind !== 'statem') throw new BadArgument(`unknown behaviour ${JSON.stringify(kind)}`);
    if (!Array.isArray(args)) throw new BadArgument('behaviour args must be an array');
    const version = this.code.current(module);
    const init = version.exports.init;
    if (typeof init !== 'function') throw new UnknownFunction(`callback module '${module}' exports no init()`, { module, function: 'init' });
    if (options.name !== undefined) this.checkName(options.name);
    const proc = new Process(formatPid(this.node, ++this.nextId, this.creation), `${kind}:${module}`);
    // The process exists while init runs (init may register it, link, spawn): if init fails, it
    // ends like any process, so its names are freed and its links told.
    this.procs.set(proc.pid, proc);
    proc.status = 'running';
    const saved = this.current;
    this.current = proc;
    let state: unknown;
    let failure: { reason: unknown; message: string } | undefined;
    try {
      state = init(...args);
      if (kind === 'statem' && (typeof state !== 'object' || state === null || !('state' in state))) {
        failure = { reason: 'bad_init', message: `init of statem ${module} must return { state, data }` };
      }
    } catch (error) {
      const reason = error instanceof ExitNow ? error.reason : errorReason(error);
      failure = { reason, message: `init of ${module} failed: ${errorText(error)}` };
    } finally {
      this.current = saved;
    }
    if (failure || proc.pendingExit) {
      const reason = proc.pendingExit ? proc.pendingExit.reason : failure!.reason;
      this.terminate(proc, reason);
      this.drain();
      throw new Refused(failure?.message ?? `init of ${module} was ended: ${safeString(reason)}`, { module, reason });
    }
    if (kind === 'statem') state = { state: (state as { state: unknown }).state, data: (state as { data?: unknown }).data };
    proc.behaviour = new Behaviour(kind, module, state, vsnOf(version));
    this.indexBehaviour(proc, null, module);
    this.applySpawnOptions(proc, options, parent);
    this.continueWith(proc, this.behaviourLoop(proc));
    this.drain();
    this.afterExternalWork();
    return proc.pid;
  }

  /** The one receive a behaviour process waits in, built once: no allocation per message. */
  private behaviourLoop(proc: Process): Receive {
    const loop: Receive = new Receive(null, (message) => {
      dispatch(this.dispatchHost, proc, proc.behaviour!, message);
      return loop;
    }, null, null);
    proc.behaviour!.loop = loop;
    return loop;
  }

  private readonly dispatchHost: DispatchHost = {
    current: (module) => this.code.current(module),
    send: (pid, message) => this.send(pid, message),
    exit: (reason) => { throw new ExitNow(reason); },
    index: (proc, from, to) => {
      const b = proc.behaviour!;
      const modules = new Set([b.module, ...b.stack]);
      if (from !== null && !modules.has(from)) this.indexBehaviour(proc, from, null);
      if (to !== null) this.indexBehaviour(proc, null, to);
    },
  };

  private indexBehaviour(proc: Process, from: string | null, to: string | null): void {
    if (from !== null) {
      const set = this.behaviourIndex.get(from);
      set?.delete(proc);
      if (set && !set.size) this.behaviourIndex.delete(from);
    }
    if (to !== null) {
      let set = this.behaviourIndex.get(to);
      if (!set) this.behaviourIndex.set(to, (set = new Set()));
      set.add(proc);
    }
  }

  /** Behaviour processes that use `module` as a callback module. O(result). */
  behavioursOf(module: string): Pid[] {
    return Array.from(this.behaviourIndex.get(module) ?? [], (p) => p.pid);
  }

  /**
   * Suspends a process (any process, like erlang:suspend_process): it runs nothing until resumed;
   * messages queue in its mailbox and a pending receive timeout keeps its remaining time.
   */
  suspend(pid: Pid): void {
    const proc = this.process(pid);
    if (proc.status === 'suspended') return;
    if (proc.status === 'waiting' && proc.timer) {
      this.timers.cancel(proc.timer);
      proc.timer = null;
    }
    proc.status = 'suspended';
  }

  resume(pid: Pid): void {
    const proc = this.process(pid);
    if (proc.status !== 'suspended') return;
    const wait = proc.wait;
    if (!wait) return this.enqueue(proc);
    proc.status = 'waiting';
    if (proc.mailbox.length) {
      const found = proc.mailbox.takeFirst((m) => this.selectAs(proc, wait, m));
      if (found) {
        proc.wait = null;
        proc.deadline = Infinity;
        return this.runNext(proc, found.picked, found.value);
      }
    }
    if (proc.deadline !== Infinity) {
      const remaining = proc.deadline - this.host.now();
      if (remaining <= 0) {
        proc.wait = null;
        proc.deadline = Infinity;
        return this.runNext(proc, wait.after!.handler as (m: unknown) => unknown, undefined);
      }
      proc.timer = this.armTimeout(proc, remaining);
    }
  }

  /**
   * OTP's `sys:change_code`: runs the current version's `codeChange(oldVsn, state, extra)` on a
   * suspended behaviour process. It works on a copy of the state; if it throws, returns undefined
   * or runs longer than `timeoutMs`, the process keeps its state exactly and the error says why.
   */
  changeCode(pid: Pid, module: string, oldVsn?: unknown, extra?: unknown, timeoutMs = 5_000): { from: unknown; to: unknown } {
    const proc = this.process(pid);
    const b = this.behaviourOf(proc, 'changeCode');
    if (b.module !== module && !b.stack.includes(module)) throw new BadArgument(`${pid} does not use '${module}' as a callback module`, { pid, module });
    if (proc.status !== 'suspended') throw new Refused(`${pid} must be suspended before changeCode`, { pid });
    const version = this.code.current(module);
    const from = oldVsn === undefined ? b.stateVsn : oldVsn;
    const to = vsnOf(version);
    const convert = version.exports.codeChange;
    if (typeof convert === 'function') {
      const saved = this.current;
      const started = this.host.now();
      let state: unknown;
      this.current = proc;
      try {
        state = convert(from, deepCopy(b.state), extra);
      } catch (error) {
        throw new Refused(`codeChange of ${version} failed for ${pid}: ${errorText(error)}`, { pid, module, reason: errorReason(error) });
      } finally {
        this.current = saved;
      }
      const took = this.host.now() - started;
      if (took > timeoutMs) throw new Timeout(`codeChange of ${version} took ${took.toFixed(1)} ms for ${pid}, over its ${timeoutMs} ms limit: state kept`, { pid, module });
      if (state === undefined) throw new Refused(`codeChange of ${version} returned undefined for ${pid}: return the new state`, { pid, module });
      if (b.kind === 'statem' && (typeof state !== 'object' || state === null || !('state' in state))) {
        throw new Refused(`codeChange of statem ${version} must return { state, data } for ${pid}`, { pid, module });
      }
      b.state = state;
    }
    b.stateVsn = to;
    this.host.emit({ type: 'code_changed', node: this.node, pid, module, from, to });
    return { from, to };
  }

  getState(pid: Pid): unknown {
    return this.behaviourOf(this.process(pid), 'getState').state;
  }

  replaceState(pid: Pid, state: unknown): void {
    this.behaviourOf(this.process(pid), 'replaceState').state = state;
  }

  /** @internal */
  emitUpgradeStep(step: number, op: string, module?: string): void {
    this.host.emit({ type: 'upgrade_step', node: this.node, step, op, module });
  }

  /** @internal */
  emitRollback(step: number, op: string, reason: string): void {
    this.host.emit({ type: 'upgrade_rollback', node: this.node, step, op, reason });
  }

  /** @internal restores a behaviour's saved state and vsn (upgrade rollback). */
  restoreState(pid: Pid, state: unknown, vsn: unknown): void {
    const proc = this.procs.get(pid);
    if (!proc?.behaviour) return;
    proc.behaviour.state = state;
    proc.behaviour.stateVsn = vsn;
  }

  /** @internal */
  behaviourSnapshot(pid: Pid): { state: unknown; vsn: unknown } | undefined {
    const b = this.procs.get(pid)?.behaviour;
    return b ? { state: b.state, vsn: b.stateVsn } : undefined;
  }

  private process(pid: Pid): Process {
    const proc = this.procs.get(pid);
    if (!proc) throw new NoProcess(`no process ${pid} on node '${this.node}'`, { pid });
    return proc;
  }

  private behaviourOf(proc: Process, what: string): Behaviour {
    if (!proc.behaviour) throw new BadArgument(`${what}: ${proc.pid} is not a server or statem process`, { pid: proc.pid });
    return proc.behaviour;
  }

  /** A CPS call: sends `{ $call }` and waits for the reply (or the callee's death, or the timeout). */
  private callStep(version: ModuleVersion | null, dest: Dest, request: unknown, then: (reply: unknown) => unknown,
    options: { timeout?: number; onTimeout?: () => unknown } = {}): Receive {
    const proc = this.self('call');
    if (typeof then !== 'function') throw new BadArgument('call(dest, request, then): then must be a function of the reply');
    const ref = this.makeRef();
    const target = isPid(dest) ? dest : typeof dest === 'string' ? this.names.get(dest)?.pid : undefined;
    const mref = target ? this.monitor(target) : undefined;
    const from: From = { pid: proc.pid, ref };
    this.send(dest, { $call: request, from });
    const done = (): void => { if (mref) this.demonitor(mref, true); };
    const clauses = [new Clause((m: unknown) => (m as { $reply?: unknown })?.$reply === ref, (m) => { done(); return then((m as { value: unknown }).value); })];
    if (mref) {
      clauses.push(new Clause((m: unknown) => (m as { type?: string; ref?: string })?.type === 'DOWN' && (m as { ref: string }).ref === mref, (m) => {
        throw new ExitNow({ call_failed: { dest, reason: (m as { reason: unknown }).reason } });
      }));
    }
    const timeout = options.timeout ?? 5_000;
    const after = timeout === Infinity ? null : new After(timeout, () => {
      done();
      if (options.onTimeout) return options.onTimeout();
      throw new ExitNow({ call_timeout: { dest, request, timeout } });
    });
    return new Receive(version, null, clauses, after);
  }

  // ---- the scheduler --------------------------------------------------------------------------

  private enqueue(proc: Process): void {
    proc.status = 'runnable';
    if (proc.queued) return;
    proc.queued = true;
    this.runQueue.push(proc);
    if (!this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  }

  private readonly runSlice = (): void => {
    this.scheduled = false;
    this.inSlice = true;
    const deadline = (this.sliceDeadline = this.host.now() + this.sliceMs);
    let checked = this.steps;
    for (let proc = this.runQueue.shift(); proc; proc = this.runQueue.shift()) {
      proc.queued = false;
      if (proc.status === 'runnable') this.step(proc);
      if (this.steps - checked >= 64) {
        checked = this.steps;
        if (this.host.now() >= deadline) break;
      }
    }
    this.inSlice = false;
    this.flush();
    if (this.runQueue.length && !this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  };

  /**
   * Runs a process for up to REDUCTIONS consecutive steps while it has one ready (a message
   * already queued, a tail call), as the BEAM runs a process for its reductions: a receiver
   * drains its backlog in one go instead of one message per trip through the run queue.
   */
  private step(proc: Process): void {
    proc.status = 'running';
    this.budget = REDUCTIONS;
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
        this.terminate(proc, reason);
        this.drain();
        return;
      }
      this.current = null;
      if (proc.pendingExit) {
        this.terminate(proc, proc.pendingExit.reason);
        this.drain();
        return;
      }
      if (!this.advance(proc, result)) return;
      if (--this.budget <= 0) return this.enqueue(proc);
      // Heavy steps use up the slice before the budget: look at the clock now and then.
      if ((this.steps & 255) === 0 && this.host.now() >= this.sliceDeadline) return this.enqueue(proc);
    }
  }

  /** Acts on what a step returned, for callers outside the run loop. */
  private continueWith(proc: Process, result: unknown): void {
    if (this.advance(proc, result)) this.enqueue(proc);
  }

  /**
   * Acts on what a step returned: wait, tail-call or end. True when the process has its next step
   * ready right now (the caller runs or queues it); false when it waits, ended, or is queued.
   */
  private advance(proc: Process, result: unknown): boolean {
    if (result instanceof Receive) {
      if (proc.version !== result.version) {
        if (result.version?.draining) return this.refuseDrained(proc, result.version);
        this.moveTo(proc, result.version);
      }
      if (proc.mailbox.length) {
        if (result.anyHandler) {
          proc.stepFn = result.anyHandler as (...args: unknown[]) => unknown;
          proc.stepArg = proc.mailbox.shift();
          return true;
        }
        const found = proc.mailbox.takeFirst((m) => this.selectAs(proc, result, m));
        if (found) {
          proc.stepFn = found.picked as (...args: unknown[]) => unknown;
          proc.stepArg = found.value;
          return true;
        }
      }
      const after = result.after;
      if (after && after.ms === 0) {
        proc.stepFn = after.handler as (...args: unknown[]) => unknown;
        proc.stepArg = undefined;
        return true;
      }
      proc.wait = result;
      proc.status = 'waiting';
      if (after && after.ms !== Infinity) proc.timer = this.armTimeout(proc, after.ms);
      return false;
    }
    if (result instanceof Next) {
      const target = this.code.versionOf(result.fn) ?? result.version;
      if (target?.draining && proc.version !== target) return this.refuseDrained(proc, target);
      this.moveTo(proc, target);
      proc.stepFn = result.fn;
      proc.stepArgs = result.args;
      return true;
    }
    if (result !== null && typeof (result as { then?: unknown })?.then === 'function') {
      this.terminate(proc, errorReason(new TypeError(
        'a process step returned a Promise: steps are synchronous; return receive(...) or next(fn, ...args) to wait or loop')));
    } else {
      this.terminate(proc, 'normal');
    }
    this.drain();
    return false;
  }

  /** A drained version takes no newcomers: a process trying to enter it ends with the reason. */
  private refuseDrained(proc: Process, version: ModuleVersion): false {
    this.terminate(proc, errorReason(new Refused(`cannot enter ${version}: it is being drained`)));
    this.drain();
    return false;
  }

  private runNext(proc: Process, fn: (m: unknown) => unknown, message: unknown): void {
    proc.stepFn = fn as (...args: unknown[]) => unknown;
    proc.stepArg = message;
    this.enqueue(proc);
  }

  /** Keeps the per-version process index exact as a process moves between versions. */
  private moveTo(proc: Process, version: ModuleVersion | null): void {
    const from = proc.version;
    if (from === version) return;
    if (from) {
      from.processes.delete(proc);
      if (from.state === 'old' && from.processes.size === 0) this.codeOps.versionEmptied(from);
    }
    proc.version = version;
    if (version) version.processes.add(proc);
  }



  // ---- receive timeouts -----------------------------------------------------------------------

  private armTimeout(proc: Process, ms: number): TimerEntry {
    const receive = proc.wait;
    proc.deadline = this.host.now() + ms;
    const entry = this.timers.add(proc.deadline, () => {
      if (proc.wait !== receive || proc.status !== 'waiting') return;
      proc.wait = null;
      proc.timer = null;
      proc.deadline = Infinity;
      this.runNext(proc, receive!.after!.handler as (m: unknown) => unknown, undefined);
    });
    this.rearm();
    return entry;
  }

  private rearm(): void {
    const next = this.timers.peek();
    if (next === this.timerDeadline) return;
    if (this.timerHandle !== null) this.host.clearTimer(this.timerHandle);
    this.timerHandle = null;
    this.timerDeadline = next ?? Infinity;
    if (next === undefined) return;
    this.timerHandle = this.host.setTimer(Math.max(0, next - this.host.now()), this.fireTimers);
  }

  private readonly fireTimers = (): void => {
    this.timerHandle = null;
    this.timerDeadline = Infinity;
    for (const entry of this.timers.due(this.host.now())) entry.fire();
    this.rearm();
  };

  private disarm(proc: Process): void {
    proc.deadline = Infinity;
    if (proc.timer) {
      this.timers.cancel(proc.timer);
      proc.timer = null;
    }
  }

  // ---- processes and signals ------------------------------------------------------------------

  private newProcess(fn: (...args: unknown[]) => unknown, args: unknown[], version: ModuleVersion | null, initial: string): Process {
    const proc = new Process(formatPid(this.node, ++this.nextId, this.creation), initial);
    this.procs.set(proc.pid, proc);
    proc.stepFn = fn;
    proc.stepArgs = args.length ? args : EMPTY;
    this.moveTo(proc, version);
    this.enqueue(proc);
    return proc;
  }

  private applySpawnOptions(proc: Process, options: SpawnOptions, parent: Process | null): void {
    if (options.trapExit) proc.trapExit = true;
    if (options.name !== undefined) this.registerName(options.name, proc);
    if (parent && options.link) {
      (parent.links ??= new Set()).add(proc.pid);
      (proc.links ??= new Set()).add(parent.pid);
    }
  }

  /** Ends a process: links get exit signals, watchers get DOWN, names and timers are freed. */
  private terminate(proc: Process, reason: unknown): void {
    if (proc.status === 'exited') return;
    if (proc === this.current) {
      proc.pendingExit ??= { reason };
      return;
    }
    proc.status = 'exited';
    this.procs.delete(proc.pid);
    this.disarm(proc);
    proc.wait = null;
    proc.stepFn = null;
    proc.stepArgs = null;
    proc.mailbox.clear();
    this.moveTo(proc, null);
    if (proc.behaviour) for (const m of new Set([proc.behaviour.module, ...proc.behaviour.stack])) this.indexBehaviour(proc, m, null);
    if (proc.name !== null) this.names.delete(proc.name);
    if (proc.globalName !== null && this.globals.get(proc.globalName) === proc.pid) {
      this.globals.delete(proc.globalName);
      this.host.emit({ type: 'global_unregister', node: this.node, name: proc.globalName, pid: proc.pid });
    }
    if (proc.links) for (const pid of proc.links) this.signal([Sig.Exit, pid, proc.pid, reason, 1]);
    if (proc.watchers) for (const [ref, watcher] of proc.watchers) this.signal([Sig.Down, watcher, proc.pid, ref, reason]);
    if (proc.monitors) for (const [ref, watched] of proc.monitors) this.signal([Sig.Demonitor, watched, proc.pid, ref]);
    if (proc.cameFrom !== null) {
      this.post(proc.cameFrom, [Sig.Gone, proc.pid]);
      this.host.emit({ type: 'migrated_exit', node: this.node, pid: proc.pid });
    }
    if (!isQuietReason(reason)) this.host.emit({ type: 'process_exit', node: this.node, pid: proc.pid, initial: proc.initial, reason });
  }

  /** Routes a signal: local ones are queued and applied in order, remote ones batched per node. */
  private signal(envelope: Envelope): void {
    const to = envelope[1];
    if (isPid(to)) {
      const node = nodeOf(to);
      if (node !== this.node) return this.post(node, envelope);
    }
    this.signals.push(envelope);
    this.drain();
  }

  private drain(): void {
    if (this.applying) return;
    this.applying = true;
    try {
      for (let e = this.signals.shift(); e; e = this.signals.shift()) this.apply(e);
    } finally {
      this.applying = false;
    }
  }

  /** Applies one signal to a process of this node. */
  private apply(e: Envelope): void {
    if (e[0] === Sig.Gone) return this.relocation.gone(e[1]);
    if (e[0] === Sig.Drained && this.relocation.drained(e[1])) return;
    const to = e[1];
    if (!(isPid(to) ? this.procs.has(to) : this.names.has(to))) {
      const forward = this.relocation.forwardOf(to);
      if (forward) {
        const copy = e.slice() as Envelope;
        copy[1] = forward.pid;
        return this.post(forward.node, copy);
      }
    }
    switch (e[0]) {
      case Sig.Flushed:
        return this.relocation.flushed(e[1]);
      case Sig.Message: {
        const proc = this.lookup(e[1]);
        if (proc) this.deliverMessage(proc, e[2]);
        return;
      }
      case Sig.Link: {
        const proc = this.procs.get(e[1]);
        if (proc) (proc.links ??= new Set()).add(e[2]);
        else this.signal([Sig.Exit, e[2], e[1], 'noproc', 1]);
        return;
      }
      case Sig.Unlink:
        this.procs.get(e[1])?.links?.delete(e[2]);
        return;
      case Sig.Exit: {
        const proc = this.procs.get(e[1]);
        if (proc) this.exitSignal(proc, e[2], e[3], e[4] === 1);
        return;
      }
      case Sig.Monitor: {
        const proc = this.lookup(e[1]);
        if (proc) (proc.watchers ??= new Map()).set(e[3], e[2]);
        else this.signal([Sig.Down, e[2], (isPid(e[1]) ? e[1] : e[1]) as Pid, e[3], 'noproc']);
        return;
      }
      case Sig.Demonitor:
        this.lookup(e[1])?.watchers?.delete(e[3]);
        return;
      case Sig.Down: {
        // Only the watched process's own DOWN counts: a ref alone proves nothing.
        const watcher = this.procs.get(e[1]);
        if (watcher?.monitors?.get(e[3]) === e[2] || (watcher?.monitors?.has(e[3]) && !isPid(watcher.monitors.get(e[3])))) {
          watcher!.monitors!.delete(e[3]);
          this.deliverMessage(watcher!, { type: 'DOWN', ref: e[3], pid: e[2], reason: e[4] });
        }
        return;
      }
    }
  }

  private exitSignal(proc: Process, from: Pid, reason: unknown, linked: boolean): void {
    if (linked) {
      // A link's exit only counts while the link exists; it ends the link either way.
      if (!proc.links?.delete(from)) return;
    }
    if (!linked && reason === 'kill') return this.terminate(proc, 'killed');
    if (proc.trapExit) return this.deliverMessage(proc, { type: 'EXIT', from, reason });
    if (reason === 'normal' && !(from === proc.pid && !linked)) return;
    this.terminate(proc, reason);
  }

  private deliverMessage(proc: Process, message: unknown): void {
    // Just arrived by migration: local senders wait until the previous node has forwarded all it held.
    if (proc.heldLocal !== null && this.inboundFrom !== proc.cameFrom) {
      proc.heldLocal.push(message);
      return;
    }
    if (proc.status === 'waiting') {
      const handler = this.selectAs(proc, proc.wait!, message);
      if (handler) {
        proc.wait = null;
        this.disarm(proc);
        return this.runNext(proc, handler, message);
      }
    }
    const limit = this.mailboxLimit;
    if (limit !== undefined && proc.mailbox.length >= limit.max) return this.overflow(proc, limit.overflow);
    proc.mailbox.push(message);
  }

  /** A full mailbox: drop the newcomer (reported once per 1000 drops) or end the receiver. */
  private overflow(proc: Process, how: 'drop' | 'kill'): void {
    if (how === 'kill') {
      this.host.emit({ type: 'mailbox_overflow', node: this.node, pid: proc.pid, action: 'killed', dropped: 0 });
      return this.terminate(proc, { mailbox_overflow: this.limits.mailbox!.max });
    }
    if (proc.dropped++ % 1000 === 0) this.host.emit({ type: 'mailbox_overflow', node: this.node, pid: proc.pid, action: 'dropped', dropped: proc.dropped });
  }

  /** Matches as the receiving process: a guard that calls self() sees the receiver, as in Erlang. */
  private selectAs(proc: Process, receive: Receive, message: unknown): ((m: unknown) => unknown) | undefined {
    if (receive.anyHandler) return receive.anyHandler;
    const saved = this.current;
    this.current = proc;
    try {
      return receive.select(message);
    } finally {
      this.current = saved;
    }
  }

  private lookup(target: Target): Process | undefined {
    return isPid(target) ? this.procs.get(target) : this.names.get(target);
  }

  private post(node: string, envelope: Envelope): void {
    this.budget--;
    const batch = this.outbox.get(node);
    if (batch) {
      batch.push(envelope);
      if (batch.length >= MAX_BATCH) {
        this.outbox.delete(node);
        this.host.outbound(node, batch);
      }
      return;
    }
    // The envelope is in the outbox before anything is scheduled: whatever runs next flushes it.
    this.outbox.set(node, [envelope]);
    // Flushed at the end of the running slice, or on the next macrotask if none runs.
    if (!this.inSlice && !this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  }

  private flush(): void {
    if (!this.outbox.size) return;
    for (const [node, batch] of this.outbox) this.host.outbound(node, batch);
    this.outbox.clear();
  }

  /** After work that did not come through a slice, make sure timers and batches move. */
  private afterExternalWork(): void {
    if (this.outbox.size && !this.scheduled) {
      this.scheduled = true;
      this.host.schedule(this.runSlice);
    }
  }

  private registerName(name: string, proc: Process): void {
    this.checkName(name);
    if (proc.name !== null) throw new BadArgument(`process ${proc.pid} is already registered as '${proc.name}'`);
    proc.name = name;
    this.names.set(name, proc);
  }

  private checkName(name: unknown): void {
    if (typeof name !== 'string' || !name || isPid(name) || name.length > 255) throw new BadArgument(`bad registered name ${JSON.stringify(name)}`);
    if (this.names.has(name) || this.relocation.movedNames.has(name)) throw new NameTaken(`the name '${name}' is already registered on node '${this.node}'`, { name });
  }

  private info(p: Process): ProcessInfo {
    return {
      pid: p.pid,
      name: p.name ?? undefined,
      status: p.status,
      mailbox: p.mailbox.length,
      initial: p.initial,
      versions: p.version ? [{ module: p.version.name, version: p.version.version, state: p.version.state }] : [],
      links: p.links ? [...p.links] : [],
      trapExit: p.trapExit,
      behaviour: p.behaviour ? { kind: p.behaviour.kind, module: p.behaviour.module, stack: [...p.behaviour.stack], vsn: p.behaviour.stateVsn } : undefined,
      migration: p.moves ? { moves: p.moves, cameFrom: p.cameFrom! } : undefined,
    };
  }

  // ---- the API module code imports as 'subnode' --------------------------------------------

  private self(what: string): Process {
    if (!this.current) throw new NotInProcess(`${what}() can only be called from inside a process`);
    return this.current;
  }

  /** Sends from module code: by pid, by local name, `{ name, node }` or `{ global }`. */
  send(dest: Dest, message: unknown): void {
    if (typeof dest === 'string') {
      // The hot path: a live local pid, found without parsing it.
      const proc = this.procs.get(dest as Pid);
      if (proc) return this.deliverLocal(proc, message);
    }
    if (isPid(dest)) return this.sendPid(dest, message);
    if (typeof dest === 'string') {
      const proc = this.names.get(dest);
      if (proc) return this.deliverLocal(proc, message);
      const forward = this.relocation.forwardOf(dest);
      if (!forward) throw new NoProcess(`no process registered as '${dest}' on node '${this.node}'`, { name: dest });
      this.checkMessage(message);
      return this.post(forward.node, [Sig.Message, forward.pid, message]);
    }
    if (dest && typeof dest === 'object') {
      if ('global' in dest && typeof dest.global === 'string') {
        const pid = this.globals.get(dest.global);
        if (!pid) throw new NoProcess(`no process registered globally as '${dest.global}'`, { global: dest.global });
        return this.sendPid(pid, message);
      }
      if ('name' in dest && typeof dest.name === 'string' && typeof dest.node === 'string') {
        if (dest.node === this.node) return this.send(dest.name, message);
        this.checkReach(dest.node, 'send to');
        this.checkMessage(message);
        return this.post(dest.node, [Sig.Message, dest.name, message]);
      }
    }
    throw new BadArgument(`cannot send to ${safeString(dest)}: use a pid, a name, { name, node } or { global }`);
  }

  private sendPid(pid: Pid, message: unknown): void {
    const proc = this.procs.get(pid);
    if (proc) return this.deliverLocal(proc, message);
    const node = nodeOf(pid);
    if (node === this.node) {
      const forward = this.relocation.moved.get(pid);
      if (!forward) return; // a dead local process: dropped, as in Erlang
      this.checkMessage(message);
      return this.post(forward.node, [Sig.Message, pid, message]);
    }
    this.checkReach(node, 'send to');
    this.checkMessage(message);
    this.post(node, [Sig.Message, pid, message]);
  }

  /** A process may only address nodes its capabilities name (its own node and the host always). */
  private checkReach(node: string, what: string): void {
    if (node === this.node || node === 'host' || allows(this.capabilities.sendTo, node)) return;
    this.host.emit({ type: 'capability_denied', node: this.node, pid: this.current?.pid, what: `${what} node '${node}'` });
    throw new NotAllowed(`node '${this.node}' may not ${what} node '${node}'`, { node });
  }

  /** A message for another node: cloneable, and within the size limit. */
  private checkMessage(message: unknown): void {
    assertCloneable(message);
    const max = this.limits.maxMessageBytes;
    if (max !== undefined && estimateSize(message, max) > max) {
      throw new TooLarge(`message is larger than this node's limit of ${max} bytes`, { limit: max });
    }
  }

  private deliverLocal(proc: Process, message: unknown): void {
    this.budget--;
    const max = this.maxMessageBytes;
    if (max !== undefined && estimateSize(message, max) > max) {
      throw new TooLarge(`message is larger than this node's limit of ${max} bytes`, { limit: max });
    }
    // While signals are queued, a message must queue behind them to keep per-pair order.
    if (this.applying) this.signals.push([Sig.Message, proc.pid, message]);
    else this.deliverMessage(proc, message);
  }

  private apiFor(version: ModuleVersion | null): object {
    const k = this;
    const spawnWith = (options: SpawnOptions, fn: unknown, args: unknown[]): Process => {
      if (typeof fn !== 'function') throw new BadArgument('spawn() takes a function (a module export or a closure) and its arguments');
      const parent = k.current;
      if (options.name !== undefined) k.checkName(options.name);
      const f = fn as (...a: unknown[]) => unknown;
      const target = k.code.versionOf(f) ?? version;
      if (target?.draining) throw new Refused(`cannot spawn into ${target}: it is being drained`, { module: target.name, version: target.version });
      const proc = k.newProcess(f, args, target, f.name || 'anonymous');
      k.applySpawnOptions(proc, options, parent);
      return proc;
    };
    return Object.freeze({
      ANY,
      // The one-handler form is the hot path: no rest array, no clause objects.
      receive: function receive(first?: unknown) {
        // `arguments`, not a rest parameter: no array is allocated on the one-handler path.
        if (arguments.length === 1 && typeof first === 'function') return new Receive(version, first as (m: unknown) => unknown, null, null);
        return buildReceive(version, Array.prototype.slice.call(arguments));
      },
      on: buildClause,
      onMigrate: (handler: () => unknown) => {
        if (typeof handler !== 'function') throw new TypeError('onMigrate(): handler must be a function returning next(exportedFn, ...state)');
        return new OnMigrate(handler);
      },
      after: buildAfter,
      next: (fn: (...args: unknown[]) => unknown, ...args: unknown[]) => {
        if (typeof fn !== 'function') throw new TypeError('next() takes a function and its arguments');
        return new Next(version, fn, args);
      },
      self: () => k.self('self').pid,
      node: () => k.node,
      send: (dest: Dest, message: unknown) => { k.send(dest, message); return message; },
      spawn: (fn: unknown, ...args: unknown[]) => spawnWith({}, fn, args).pid,
      spawnLink: (fn: unknown, ...args: unknown[]) => spawnWith({ link: true }, fn, args).pid,
      spawnMonitor: (fn: unknown, ...args: unknown[]) => {
        k.self('spawnMonitor');
        const pid = spawnWith({}, fn, args).pid;
        return [pid, k.monitor(pid)];
      },
      spawnOpt: (fn: unknown, args: unknown[] = [], options: SpawnOptions = {}) => {
        const proc = spawnWith(options, fn, args);
        return options.monitor ? [proc.pid, k.monitor(proc.pid)] : proc.pid;
      },
      link: (pid: Pid) => k.link(pid),
      unlink: (pid: Pid) => k.unlink(pid),
      monitor: (target: Pid | string) => k.monitor(target),
      demonitor: (ref: string, options?: { flush?: boolean }) => k.demonitor(ref, options?.flush === true),
      exit: (...args: unknown[]) => {
        if (args.length < 2) throw new ExitNow(args[0] ?? 'normal');
        k.exitOther(args[0] as Pid, args[1]);
        return true;
      },
      trapExit: (on: boolean) => {
        const proc = k.self('trapExit');
        const was = proc.trapExit;
        proc.trapExit = Boolean(on);
        return was;
      },
      register: (name: string, pid?: Pid) => {
        const proc = pid === undefined ? k.self('register') : k.procs.get(pid);
        if (!proc) throw new NoProcess(`no process ${pid} on node '${k.node}'`, { pid });
        k.registerName(name, proc);
        return true;
      },
      unregister: (name: string) => {
        const proc = k.names.get(name);
        if (!proc) throw new NoProcess(`no process registered as '${name}'`, { name });
        k.names.delete(name);
        proc.name = null;
        return true;
      },
      whereis: (name: string) => k.whereis(name),
      registerGlobal: (name: string) => {
        const proc = k.self('registerGlobal');
        if (typeof name !== 'string' || !name) throw new BadArgument(`bad global name ${JSON.stringify(name)}`);
        if (k.globals.has(name)) throw new NameTaken(`the global name '${name}' is already registered`, { name });
        k.globals.set(name, proc.pid);
        proc.globalName = name;
        k.host.emit({ type: 'global_register', node: k.node, name, pid: proc.pid });
        return true;
      },
      whereisGlobal: (name: string) => k.globals.get(name),
      makeRef: () => k.makeRef(),
      isPid,
      spawnOn: (node: string, module: string, fn: string, args: unknown[], then: (pid: Pid) => unknown, options?: { timeout?: number }) =>
        k.serviceCall(version, 'spawn', { node, module, fn, args: args ?? [] }, then as (v: unknown) => unknown, options?.timeout),
      callHost: (name: string, args: unknown[], then: (value: unknown) => unknown, options?: { timeout?: number }) =>
        k.serviceCall(version, 'host', { name, args: args ?? [] }, then, options?.timeout),
      server: Object.freeze({
        start: (module: unknown, args: unknown[] = [], options: SpawnOptions = {}) => k.startBehaviour('server', k.moduleName(module), args, options, k.current),
        call: (dest: Dest, request: unknown, then: (reply: unknown) => unknown, options?: { timeout?: number; onTimeout?: () => unknown }) =>
          k.callStep(version, dest, request, then, options),
        cast: (dest: Dest, message: unknown) => { k.send(dest, { $cast: message }); return true; },
        reply: (from: From, value: unknown) => { k.send(from.pid, { $reply: from.ref, value }); return true; },
      }),
      statem: Object.freeze({
        start: (module: unknown, args: unknown[] = [], options: SpawnOptions = {}) => k.startBehaviour('statem', k.moduleName(module), args, options, k.current),
        call: (dest: Dest, request: unknown, then: (reply: unknown) => unknown, options?: { timeout?: number; onTimeout?: () => unknown }) =>
          k.callStep(version, dest, request, then, options),
        cast: (dest: Dest, message: unknown) => { k.send(dest, { $cast: message }); return true; },
      }),
    });
  }

  /**
   * A request to the host's service process (a spawn on another node, a host function), as a step:
   * the reply continues the process with `then(value)`; a refusal ends it with the error.
   */
  private serviceCall(version: ModuleVersion | null, service: 'spawn' | 'host', request: Record<string, unknown>,
    then: (value: unknown) => unknown, timeout = 5_000): Receive {
    const proc = this.self(service === 'spawn' ? 'spawnOn' : 'callHost');
    if (typeof then !== 'function') throw new BadArgument(`${service === 'spawn' ? 'spawnOn' : 'callHost'}: the last argument must be a function of the result`);
    if (service === 'spawn') {
      const node = request.node as string;
      const granted = this.capabilities.spawnRemote;
      if (granted === false || (Array.isArray(granted) && !granted.includes(node))) {
        this.host.emit({ type: 'capability_denied', node: this.node, pid: proc.pid, what: `spawn on node '${node}'` });
        throw new NotAllowed(`node '${this.node}' may not spawn on node '${node}'`, { node });
      }
    } else if (!allows(this.capabilities.services.functions, request.name as string)) {
      this.host.emit({ type: 'capability_denied', node: this.node, pid: proc.pid, what: `host function '${String(request.name)}'` });
      throw new NotAllowed(`node '${this.node}' may not call host function '${String(request.name)}'`, { name: request.name });
    }
    this.checkMessage(request.args);
    const ref = this.makeRef();
    this.post('host', [Sig.Message, HOST_SERVICE, { $service: service, ref, from: proc.pid, ...request }]);
    const reply = new Clause((m: unknown) => (m as { $serviceReply?: string })?.$serviceReply === ref, (m) => {
      const r = m as { ok?: unknown; error?: WireError };
      if (r.error) throw fromWire(r.error);
      return then(r.ok);
    });
    const after = new After(timeout, () => { throw new Timeout(`${service} request timed out after ${timeout} ms`, { service }); });
    return new Receive(version, null, [reply], after);
  }

  /** Runs `run` as `proc`: module code called outside the run loop (init, codeChange, onMigrate) sees itself as `self()`. */
  private asProcess<T>(proc: Process, run: () => T): T {
    const saved = this.current;
    this.current = proc;
    try {
      return run();
    } finally {
      this.current = saved;
    }
  }

  /** A callback module given by name or by its namespace object. */
  private moduleName(module: unknown): string {
    if (typeof module === 'string') return module;
    const name = module && typeof module === 'object' ? this.code.nameOfNamespace(module) : undefined;
    if (!name) throw new BadArgument('a behaviour takes its callback module by name or as an imported namespace');
    return name;
  }

  private link(pid: Pid): true {
    const proc = this.self('link');
    if (!isPid(pid)) throw new BadArgument(`link() takes a pid, got ${safeString(pid)}`);
    if (pid === proc.pid || proc.links?.has(pid)) return true;
    this.checkReach(nodeOf(pid), 'link to');
    (proc.links ??= new Set()).add(pid);
    this.signal([Sig.Link, pid, proc.pid]);
    return true;
  }

  private unlink(pid: Pid): true {
    const proc = this.self('unlink');
    if (proc.links?.delete(pid)) this.signal([Sig.Unlink, pid, proc.pid]);
    return true;
  }

  private monitor(target: Pid | string): string {
    const proc = this.self('monitor');
    const ref = this.makeRef();
    const pid = isPid(target) ? target : this.names.get(target)?.pid;
    if (pid) this.checkReach(nodeOf(pid), 'monitor');
    (proc.monitors ??= new Map()).set(ref, pid ?? (target as Pid));
    if (!pid) this.signal([Sig.Down, proc.pid, target as Pid, ref, 'noproc']);
    else this.signal([Sig.Monitor, pid, proc.pid, ref]);
    return ref;
  }

  /** Removes a monitor; with `flush`, also a DOWN for it already in the mailbox (erlang:demonitor/2's flush). */
  private demonitor(ref: string, flush = false): true {
    const proc = this.self('demonitor');
    const watched = proc.monitors?.get(ref);
    if (watched !== undefined) {
      proc.monitors!.delete(ref);
      this.signal([Sig.Demonitor, watched, proc.pid, ref]);
    }
    if (flush) proc.mailbox.takeFirst((m) => ((m as DownMessage | null)?.type === 'DOWN' && (m as DownMessage).ref === ref ? true : undefined));
    return true;
  }

  private exitOther(pid: Pid, reason: unknown): void {
    if (!isPid(pid)) throw new BadArgument(`exit() takes a pid, got ${safeString(pid)}`);
    this.checkReach(nodeOf(pid), 'send an exit signal to');
    const from = this.current?.pid ?? formatPid('host', 0, 0);
    this.signal([Sig.Exit, pid, from, reason, 0]);
  }

  /** Unique on this node and hard to guess: a reply or DOWN must not be forgeable by ref. */
  private makeRef(): string {
    return `#Ref<${this.node}.${this.creation}.${++this.nextRef}.${Math.floor(random() * 2 ** 32).toString(36)}>`;
  }
}
