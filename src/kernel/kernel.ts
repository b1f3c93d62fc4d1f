/**
 * The in-node kernel: the façade the node runtime, the isolate sandbox and the tests call. It runs
 * unchanged in every kind of node and uses no Node API: timers, compilation, the clock and the
 * wires to other nodes come through the small `KernelPlatform` interface.
 *
 * Vocabulary:
 *
 *  - process: a pid, a mailbox and what it does next (`proc.ts`). Its pid names its node and that
 *    node's incarnation (`creation`); it keeps the pid when it migrates.
 *  - step: one synchronous call of a process's code. A step returns what comes next: a receive
 *    to wait in, a tail call (`next(fn, ...args)`), or anything else to end normally. Steps never
 *    await, so the kernel always knows which process is running and in which version's code.
 *  - slice: one macrotask of the scheduler: it runs queued processes until the run queue is
 *    empty or `sliceMs` has passed, then yields so inbound messages and I/O interleave.
 *  - reduction: the unit of a process's budget within a slice, as on the BEAM: each step and
 *    each send costs one; a process whose budget runs out goes to the back of the run queue. A step
 *    is never cut: what its last step overran the budget by is taken off its next turn (debt).
 *  - envelope: a signal as a compact tuple (`signals.ts`): a message, a link, an exit, a monitor,
 *    a DOWN, or a migration marker. Local ones are applied in order; others cross to their node.
 *  - version: one loaded body of a module (`code-server.ts`). One is current, the others old;
 *    each knows the processes in its code, so purges and upgrades find them without a scan.
 *  - forward: what a node keeps for a process that migrated away: envelopes for its pid (or a
 *    name it left here) go on to where it lives now, so senders need not know that it moved.
 *
 * The objects behind the façade, each with its own verbs and its own tables:
 *
 *  - ProcessTable (`process-table.ts`): processes by pid (`process-index.ts`), local and global names.
 *  - Scheduler (`scheduler.ts`): run queue, slices, reductions; its timers (`timers.ts`,
 *    `receive-timeouts.ts`), its outbox (`outbox.ts`) and flow control's holds (`holds.ts`).
 *  - Signalling (`signalling.ts`): sends, applying envelopes, ending processes.
 *  - ProcessApi (`api.ts`): the 'subnode' object module code sees, per version.
 *  - SysOps (`sys.ts`): behaviour processes and the system protocol (suspend, changeCode…).
 *  - CodeOps (`code-ops.ts`): load and purge under policies, the per-version process index.
 *  - Relocation (`relocation.ts`): migration out and in, and the forwards it leaves.
 *  - `introspect.ts`: what the host sees of modules and processes (ModuleInfo, ProcessInfo).
 */
import { BadArgument, NoProcess } from '../errors.js';
import { ProcessApi } from './api.js';
import { CodeServer } from './code-server.js';
import type { KernelOptions, KernelPlatform } from './platform.js';
import type { CodePolicy, PurgeMode } from './policy.js';
import type { BehaviourKind } from './behaviours.js';
import { formatPid, NODE_NAME, ofIncarnations, type Pid } from './pid.js';
import type { Process } from './proc.js';
import { ProcessTable } from './process-table.js';
import { Scheduler } from './scheduler.js';
import { Signalling } from './signalling.js';
import { Sig, type Envelope } from './signals.js';
import { SysOps } from './sys.js';
import { UpgradeOps } from './upgrade-ops.js';
import { Relocation } from './relocation.js';
import { CodeOps, type LoadOptions } from './code-ops.js';
import { NodeTasks, type StopReport } from './tasks.js';
import type { DurableState } from './durable-spec.js';
import type { SupRequest } from './supervisor-state.js';
import { moduleInfos, processInfoOf } from './introspect.js';
import { ALL, DEFAULT_GLOBAL_NAMES, type Capabilities, type Limits } from './capabilities.js';
import type {
  ProcessInfo,
  ModuleInfo,
  SpawnOptions,
  Dest,
  LoadReport,
  PurgeReport,
  ProcessStatus,
  MigrationSnapshot,
  MigrationOutcome,
  Forward,
} from './types.js';

export { assertCloneable, errorReason, estimateSize } from './values.js';
export { HOST_SERVICE } from './api.js';
export { ExitNow } from './scheduler.js';
export type { KernelOptions, KernelPlatform } from './platform.js';

export class Kernel {
  readonly node: string;
  readonly creation: number;
  readonly code: CodeServer;
  readonly capabilities: Capabilities;
  readonly limits: Limits;

  private readonly table: ProcessTable;
  private readonly scheduler: Scheduler;
  private readonly signals: Signalling;
  private readonly api: ProcessApi;
  private readonly sys: SysOps;
  private readonly codeOps: CodeOps;
  private readonly relocation: Relocation;
  private readonly tasks: NodeTasks;
  /** @internal what upgrade transactions do to processes (upgrade.ts, rolling.ts). */
  readonly upgrades: UpgradeOps;

  constructor(
    private readonly host: KernelPlatform,
    options: KernelOptions,
  ) {
    if (!NODE_NAME.test(options.node) || options.node === 'host') throw new BadArgument(`bad node name ${JSON.stringify(options.node)}`);
    const node = (this.node = options.node);
    const creation = (this.creation = options.creation ?? 0);
    const capabilities = (this.capabilities = options.capabilities ?? ALL);
    this.limits = options.limits ?? {};
    const code = (this.code = new CodeServer(
      { compile: host.compile, apiFor: (v) => this.api.apiFor(v), now: host.wallClock },
      node,
      capabilities.aliases,
      options.natives,
    ));
    // The objects call each other's verbs; the few cycles (a step ends a process, an ending moves
    // it out of its version, …) are closed by `connect` once all exist.
    const table = (this.table = new ProcessTable(node, creation));
    const scheduler = (this.scheduler = new Scheduler(host, options.sliceMs ?? 4, code));
    const signals = (this.signals = new Signalling(node, host, capabilities, this.limits, table, scheduler));
    const codeOps = (this.codeOps = new CodeOps(node, code, capabilities, host, table, scheduler));
    const sys = (this.sys = new SysOps(node, host, code, table, scheduler, signals, capabilities, this.limits, codeOps));
    this.relocation = new Relocation(node, host, code, table, scheduler, signals, codeOps, sys);
    this.api = new ProcessApi(node, creation, capabilities, host, code, table, scheduler, signals, sys, this.limits.globalNames ?? DEFAULT_GLOBAL_NAMES);
    this.upgrades = new UpgradeOps(node, host, sys);
    this.tasks = new NodeTasks(node, table, scheduler, signals, () => host.now());
    scheduler.connect(signals, codeOps);
    signals.connect(this.relocation, codeOps, sys);
    codeOps.connect(signals);
  }

  // ---- code operations (CodeOps) --------------------------------------------------------------

  setPolicy(policy: CodePolicy, module?: string): void {
    this.codeOps.setPolicy(policy, module);
  }
  policyFor(module: string): CodePolicy {
    return this.codeOps.policyFor(module);
  }
  load(name: string, js: string, options: LoadOptions = {}): LoadReport | Promise<LoadReport> {
    this.upgrades.notUpgrading([name]);
    return this.codeOps.load(name, js, options);
  }
  /** `code:atomic_load`: all the modules' new versions current at once, or none. */
  loadAtomic(modules: Record<string, string>, options: { purge?: PurgeMode; vsns?: Record<string, unknown> } = {}): LoadReport[] {
    this.upgrades.notUpgrading(Object.keys(modules));
    return this.codeOps.loadAtomic(modules, options);
  }
  purge(module: string, mode: PurgeMode = 'kill'): PurgeReport | Promise<PurgeReport> {
    return this.codeOps.purge(module, mode);
  }
  softPurge(module: string): PurgeReport {
    return this.codeOps.softPurge(module);
  }
  checkProcessCode(pid: Pid, module: string): boolean {
    return this.codeOps.checkProcessCode(pid, module);
  }
  /** The processes in old code of `module` (or one version): O(lingering), from the per-version index. */
  lingering(module: string, version?: number): Pid[] {
    const pids = this.codeOps.lingering(module, version);
    // Asked for the current version: the behaviour processes using it run it too (as modules() counts them).
    const current = version === undefined ? undefined : this.code.module(module)?.current;
    if (current && current.version === version) for (const p of this.sys.usersOf(module, current)) pids.push(p.pid);
    return pids;
  }
  deleteModule(module: string): PurgeReport {
    this.upgrades.notUpgrading([module]);
    return this.codeOps.deleteModule(module);
  }

  modules(): ModuleInfo[] {
    return moduleInfos(this.code, this.sys, (module) => this.policyFor(module));
  }

  // ---- processes and signals (ProcessTable, Scheduler, Signalling) ----------------------------

  /** Spawns `module.fn(...args)` in the module's current version. */
  spawn(module: string, fn: string, args: unknown[] = [], options: SpawnOptions = {}): Pid {
    if (!Array.isArray(args)) throw new BadArgument('spawn args must be an array');
    if (options.durable !== undefined) throw new BadArgument('durable state is for servers (startServer, server.start), not a spawned process');
    const entry = this.code.entry(module, fn);
    if (options.name !== undefined) this.table.checkName(options.name);
    const proc = this.table.create(`${module}.${fn}`);
    this.scheduler.start(proc, entry.fn, args, entry.version);
    this.table.setUp(proc, options, null);
    this.scheduler.afterExternalWork();
    return proc.pid;
  }

  /** Signals from another node (or the host: `from` 'host'), in order. */
  deliver(envelopes: Envelope[], from = 'host'): void {
    this.scheduler.runInbound(() => this.signals.deliverFrom(from, envelopes));
  }

  /** Flow control (holds.ts): the channel to `node` has room again, or `node` is gone; its held senders run again. */
  credit(node: string): void {
    this.scheduler.credit(node);
  }
  /** Processes held for sending to a full node, per node. */
  holding(): Record<string, number> {
    return this.scheduler.holding();
  }

  /** `exit(pid, reason)` from outside any process. */
  exit(pid: Pid, reason: unknown): void {
    if (!this.table.has(pid)) throw new NoProcess(`no process ${pid} on node '${this.node}'`, { pid });
    // Here, even for a process that moved in (its pid names another node): not through its home.
    this.signals.signalHere([Sig.Exit, pid, formatPid('host', 0, 0), reason, 0]);
    this.scheduler.afterExternalWork();
  }

  /**
   * A node went away: links and monitors to its processes fire with `noconnection`. `upTo`: only
   * its incarnations up to this creation (a node of another host, whose next incarnation may have
   * spoken here before this news came).
   */
  nodeDown(node: string, lost: Pid[] = [], alive: Pid[] = [], upTo?: number): void {
    // Gone with it: processes whose pids name it (unless they migrated here, or live elsewhere:
    // `alive`) and processes that had migrated to it (`lost`, from the host's registry).
    const lostSet = new Set(lost);
    const aliveSet = new Set(alive);
    const ofIt = ofIncarnations(node, upTo);
    this.signals.nodeDown((pid) => lostSet.has(pid) || (ofIt(pid) && !this.table.has(pid) && !aliveSet.has(pid)));
    this.relocation.nodeDown(node, lostSet);
    this.signals.drain();
    this.scheduler.afterExternalWork();
  }

  /** Sends from module code: by pid, by local name, `{ name, node }` or `{ global }`. */
  send(dest: Dest, message: unknown): void {
    this.signals.send(dest, message);
  }

  /** The host's replica of the system-wide name registry: many changes in one call. */
  setGlobals(entries: [string, Pid | null][]): void {
    this.table.setGlobals(entries);
  }

  /** The pid registered under `name` here (also when that process migrated away: sends still reach it). */
  whereis(name: string): Pid | undefined {
    return this.table.whereis(name);
  }

  processes(): ProcessInfo[] {
    return Array.from(this.table.values(), (p) => processInfoOf(p));
  }

  processInfo(pid: Pid): ProcessInfo | undefined {
    const proc = this.table.get(pid);
    return proc && processInfoOf(proc);
  }

  get processCount(): number {
    return this.table.size;
  }

  /** A process's status, or undefined when it is gone. */
  statusOf(pid: Pid): ProcessStatus | undefined {
    return this.table.get(pid)?.status;
  }

  /** Every live pid (erlang:processes/0). */
  pids(): Pid[] {
    return this.table.pids();
  }

  /**
   * After the embedder stopped a step from outside (an isolate's CPU limit cuts a slice, and no
   * `finally` runs): the process that was running dies with `reason` (and the one whose step the
   * guard of the first ran in, if another), an ending the cut interrupted is reported in full, and
   * the scheduler's state is made whole again, so the node and its other processes go on.
   */
  recover(reason: unknown): Pid | undefined {
    const { culprit, cut } = this.scheduler.abandonSlice();
    this.signals.abandon();
    for (const proc of [culprit, cut]) {
      if (!proc) continue;
      proc.pendingExit = null;
      this.signals.terminate(proc, reason);
    }
    this.signals.finishEndings();
    this.signals.drain();
    this.scheduler.restart();
    return culprit?.pid;
  }

  // ---- migration (Relocation) -----------------------------------------------------------------

  /** Takes snapshots of processes to move; each is suspended until commit or abort. */
  migrateOut(pids: Pid[]): MigrationOutcome<MigrationSnapshot>[] {
    return this.relocation.out(pids);
  }
  /** Starts moved processes here under their own pids, their states converted by this node's code. */
  migrateIn(snapshots: MigrationSnapshot[], extra?: unknown, timeoutMs = 5_000): MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean }>[] {
    return this.relocation.in(snapshots, extra, timeoutMs);
  }
  /** The moves are done: forward what queued since the snapshots, then keep forwarding. */
  migrateCommit(pids: Pid[], to: string, awaitDrain: Pid[] = []): void {
    this.relocation.commit(pids, to, awaitDrain);
  }
  /** The moves failed: the processes go on here exactly as they were. */
  migrateAbort(pids: Pid[]): void {
    this.relocation.abort(pids);
  }
  /** A move whose answer was lost is abandoned: the copies that came from `from` leave without dying. */
  migrateWithdraw(pids: Pid[], from: string): Pid[] {
    return this.relocation.withdraw(pids, from);
  }
  /** After a restart: the host tells the home node where its migrated processes live now. */
  restoreForwards(entries: Forward[]): void {
    this.relocation.restoreForwards(entries);
  }

  // ---- behaviours and the system protocol (SysOps) ---------------------------------------------

  /**
   * Starts a server or statem process with `module` as its callback module. Its `init(...args)`
   * runs now, in the new process, so a failing init is an error here and no process is left.
   */
  startBehaviour(kind: BehaviourKind, module: string, args: unknown[] = [], options: SpawnOptions = {}, parent: Process | null = null): Pid {
    return this.sys.start(kind, module, args, options, parent);
  }

  /** Starts a supervisor (its init starts its children); undefined when its init returns 'ignore'. */
  startSupervisor(module: string, args: unknown[] = [], options: SpawnOptions = {}): Pid | undefined {
    return this.sys.startOrIgnore('supervisor', module, args, options, null);
  }

  /** A call to a supervisor from outside any process: which/count/start/restart/terminate/delete child. */
  supervisorCall(pid: Pid, request: SupRequest, timeoutMs?: number): Promise<unknown> {
    return this.tasks.supervisorCall(pid, request, timeoutMs);
  }

  /** Stops every process from the top of its tree within `timeoutMs`, then kills what is left. */
  orderlyStop(timeoutMs: number): Promise<StopReport> {
    return this.tasks.orderlyStop(timeoutMs);
  }

  /** Behaviour processes that use `module` as a callback module. O(result). */
  behavioursOf(module: string): Pid[] {
    return this.sys.behavioursOf(module);
  }

  /** Whether a behaviour process has `module` as its callback module (or on its statem stack). */
  usesModule(pid: Pid, module: string): boolean {
    return this.sys.usesModule(pid, module);
  }

  /**
   * Suspends a process (any process, like erlang:suspend_process): it runs nothing until resumed;
   * messages queue in its mailbox and a pending receive timeout keeps its remaining time.
   */
  suspend(pid: Pid): void {
    this.sys.suspend(pid);
  }
  resume(pid: Pid): void {
    this.sys.resume(pid);
  }

  /**
   * OTP's `sys:change_code`: runs the current version's `codeChange(oldVsn, state, extra)` on a
   * suspended behaviour process. It works on a copy of the state; if it throws, returns undefined
   * or runs longer than `timeoutMs`, the process keeps its state exactly and the error says why.
   */
  changeCode(pid: Pid, module: string, oldVsn?: unknown, extra?: unknown, timeoutMs = 5_000): { from: unknown; to: unknown } {
    const changed = this.sys.changeCode(pid, module, oldVsn, extra, timeoutMs);
    this.host.emit({ type: 'code_changed', node: this.node, pid, module, ...changed });
    return changed;
  }

  getState(pid: Pid): unknown {
    return this.sys.getState(pid);
  }
  replaceState(pid: Pid, state: unknown): void {
    this.sys.replaceState(pid, state);
  }

  /** The host's stored durable states for this node, given when it boots (before any start). */
  restoreDurable(states: DurableState[]): void {
    this.sys.durables.restoreAll(states);
  }

  /** Forgets a durable state's key on this node (refused while a server holds it). */
  forgetDurable(key: string): void {
    this.sys.durables.forget(key);
  }

  /** Durable states reached and not yet saved (an orderly stop collects them once processes stopped). */
  takeCheckpoints(): DurableState[] {
    return this.sys.durables.take();
  }
}
