/**
 * The host's handle on one virtual node: its control operations, each a call of the node's op
 * table (src/kernel/control-ops.ts) over the wire, issued in order and bounded by a deadline (its ControlQueue). Its
 * life (start, restarts, stop) is the NodeSupervision's; what it must get back after a restart is
 * its NodeRelease's.
 */
import type { Pid } from '../kernel/pid.js';
import type { Envelope } from '../kernel/signals.js';
import type { LoadReport, MigrationOutcome, MigrationSnapshot, ModuleInfo, ProcessInfo, PurgeReport, SpawnOptions } from '../kernel/types.js';
import { checkPolicy, type CodePolicy, type PurgeMode } from '../kernel/policy.js';
import type { NodeUpgradeReport, UpgradeStep } from '../kernel/upgrade.js';
import type { RollingOptions } from '../kernel/rolling.js';
import { checkCapabilities, checkLimits, type Capabilities, type Limits } from '../kernel/capabilities.js';
import type { ControlArgs, ControlOp, ControlReply } from '../wire/node.js';
import type { ChildCounts, ChildInfo, ChildSpec } from '../kernel/supervisor-spec.js';
import type { SupRequest } from '../kernel/supervisor-state.js';
import type { StopReport } from '../kernel/tasks.js';
import type { ModuleSource } from './source.js';
import { ModuleSources } from './module-sources.js';
import type { NodeKind } from './node-backend.js';
import { NodeRelease } from './node-release.js';
import { resolveImports } from './imports.js';
import { NodeSupervision, type NodeContext, type NodeStatus } from './node-supervision.js';
import { ControlQueue } from './control-queue.js';
import { checkKind, startProcesses, unresponsiveMsOf, type NodeSpec, type NodeSummary } from './node-spec.js';
import { publishSpawn } from './telemetry.js';

export type { NodeStatus } from './node-supervision.js';

export type { NodeSpec, NodeSummary, ServerStart, SpawnStart, StartSpec, SupervisorStart } from './node-spec.js';

export class NodeHandle {
  readonly name: string;
  readonly kind: NodeKind;
  readonly capabilities: Capabilities;
  readonly limits: Limits;
  /** @internal */
  readonly supervision: NodeSupervision;
  private readonly release: NodeRelease;
  /** What it may load, read and compiled on this side; in a cluster, published. */
  private readonly sources: ModuleSources;
  private readonly durable: NodeContext['durable'];
  /** Requests leave in the order issued, each with a deadline. */
  private readonly control: ControlQueue;

  constructor(spec: NodeSpec, context: NodeContext) {
    this.name = spec.name;
    this.kind = checkKind(spec);
    this.capabilities = checkCapabilities(spec.capabilities, this.kind);
    this.limits = checkLimits(spec.limits, this.kind);
    this.release = new NodeRelease(spec.name, spec.code, spec.modulePolicies);
    this.sources = new ModuleSources(spec.name, this.capabilities, context);
    this.durable = context.durable;
    this.supervision = new NodeSupervision(
      {
        name: spec.name,
        kind: this.kind,
        dense: spec.dense === true,
        capabilities: this.capabilities,
        limits: this.limits,
        resourceLimits: spec.resourceLimits,
        restart: spec.restart,
        intensity: spec.intensity,
        period: spec.period,
        unresponsiveMs: unresponsiveMsOf(spec, this.kind, this.limits),
        imports: resolveImports(spec.name, this.kind, spec.imports, spec.importsFrom),
        faults: spec.faults,
        firstBoot: async (call) => {
          for (const [module, source] of Object.entries(spec.modules ?? {})) {
            const { js, text } = await this.sources.compile(module, source);
            this.release.loaded(module, js, await call('load', module, js, { vsn: this.release.vsnOf(module, js) }));
            await this.sources.published(module, source, text);
          }
        },
        start: (call) => startProcesses(spec.start, call),
      },
      this.release,
      context,
    );
    this.control = new ControlQueue(spec.name, () => this.supervision);
  }

  get status(): NodeStatus {
    return this.supervision.status;
  }

  get creation(): number {
    return this.supervision.creation;
  }

  /**
   * Compiles `source` (TypeScript or JavaScript) and loads it as the module's new version on this
   * node. If the retention has no room for another old version, the oldest is purged first with
   * `purge` (default: the node's policy); a refused purge rejects with NotPurged, changing nothing.
   * The report lists hazards found in the source (loops that can never leave this version…).
   * Loads (like every operation) reach the node in the order they were issued.
   */
  async load(module: string, source: ModuleSource, options: { purge?: PurgeMode; onLoadTimeoutMs?: number } = {}): Promise<LoadReport> {
    const compiled = this.sources.compile(module, source);
    const report = await this.control.issue(
      'load',
      compiled.then(({ js }) => [module, js, { ...options, vsn: this.release.vsnOf(module, js) }]),
    );
    const { js, hazards, text } = await compiled;
    this.release.loaded(module, js, report);
    await this.sources.published(module, source, text);
    // With a release store, a load has answered once it would survive a restart.
    await this.release.durable();
    return { ...report, warnings: hazards };
  }

  /**
   * `code:atomic_load`: compiles every source, then makes all the new versions current at once on
   * the node, or none (a LoadError, or NotPurged when old code still running would have to go
   * under a purge mode that keeps it). A module exporting `onLoad` is refused, as OTP refuses
   * -on_load modules here. The reports come in the order given.
   */
  async loadAtomic(sources: Record<string, ModuleSource>, options: { purge?: PurgeMode } = {}): Promise<LoadReport[]> {
    const names = Object.keys(sources ?? {});
    const compiled = Promise.all(names.map((module) => this.sources.compile(module, sources[module]!)));
    const reports = await this.control.issue(
      'loadAtomic',
      compiled.then((all) => [
        Object.fromEntries(all.map((c, i) => [names[i]!, c.js])),
        { ...options, vsns: Object.fromEntries(all.map((c, i) => [names[i]!, this.release.vsnOf(names[i]!, c.js)])) },
      ]),
    );
    const all = await compiled;
    names.forEach((module, i) => this.release.loaded(module, all[i]!.js, reports[i]!));
    return reports.map((r, i) => ({ ...r, warnings: all[i]!.hazards }));
  }

  /** Loads JavaScript already in the kernel's module shape (see `transpile`). @internal */
  async loadCompiled(module: string, js: string, options: { purge?: PurgeMode } = {}): Promise<LoadReport> {
    const report = await this.call('load', module, js, { ...options, vsn: this.release.vsnOf(module, js) });
    this.release.loaded(module, js, report);
    return report;
  }

  /** Purges the module's old versions; `'kill'` (default) kills processes still running them. */
  purge(module: string, mode: PurgeMode = 'kill'): Promise<PurgeReport> {
    return this.call('purge', module, mode);
  }

  /** Purges old versions only if no process runs them; otherwise `ok: false` with the lingering pids. */
  softPurge(module: string): Promise<PurgeReport> {
    return this.purge(module, 'soft');
  }

  checkProcessCode(pid: Pid, module: string): Promise<boolean> {
    return this.callOnPid('checkProcessCode', pid, module);
  }

  /** Processes running old code of `module` (or the given version). Costs O(lingering). */
  lingering(module: string, version?: number): Promise<Pid[]> {
    return this.call('lingering', module, version);
  }

  /** The current version becomes old: new spawns and qualified calls fail. */
  deleteModule(module: string): Promise<PurgeReport> {
    return this.call('deleteModule', module);
  }

  /** The node's code policy, or one module's (retention and purge mode). Kept across restarts. */
  async setPolicy(policy: CodePolicy, module?: string): Promise<void> {
    const checked = checkPolicy(policy);
    await this.call('setPolicy', checked, module);
    this.release.policyChanged(checked, module);
    await this.release.durable();
  }

  /** Starts a server (gen_server-like) process; its `init(...args)` runs before this resolves. */
  startServer(module: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid> {
    return this.spawned(this.call('startBehaviour', 'server', module, args, options), module, 'init', 'server');
  }

  /** Starts a statem (gen_statem-like) process; `init(...args)` returns `{ state, data }`. */
  startStatem(module: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid> {
    return this.spawned(this.call('startBehaviour', 'statem', module, args, options), module, 'init', 'statem');
  }

  /** Behaviour processes using `module` as a callback module. */
  behavioursOf(module: string): Promise<Pid[]> {
    return this.call('behavioursOf', module);
  }

  /** `sys:suspend`: the process runs nothing until resumed; its messages wait. Any process can be suspended. */
  suspend(pid: Pid): Promise<void> {
    return this.callOnPid('suspend', pid);
  }
  resume(pid: Pid): Promise<void> {
    return this.callOnPid('resume', pid);
  }

  /**
   * `sys:change_code`: on a suspended behaviour process, runs the current version's
   * `codeChange(oldVsn, state, extra)`. If it throws, returns nothing or takes longer than
   * `timeoutMs`, the process keeps its old state and the error says why. `oldVsn` defaults to
   * the vsn its state came from; pass `{ down: vsn }` for a downgrade.
   */
  changeCode(pid: Pid, module: string, options: { oldVsn?: unknown; extra?: unknown; timeoutMs?: number } = {}): Promise<{ from: unknown; to: unknown }> {
    return this.callOnPid('changeCode', pid, module, options.oldVsn, options.extra, options.timeoutMs);
  }

  getState<S = unknown>(pid: Pid): Promise<S> {
    return this.callOnPid('getState', pid) as Promise<S>;
  }
  replaceState(pid: Pid, state: unknown): Promise<void> {
    return this.callOnPid('replaceState', pid, state);
  }

  /** Starts a supervisor; its init starts its children. Undefined if init returned 'ignore'. */
  startSupervisor(module: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid | undefined> {
    return this.call('startSupervisor', module, args, options);
  }

  /** A supervisor's children, newest first: `{ id, pid, type, modules }` (pid null when not running). */
  whichChildren(sup: Pid): Promise<ChildInfo[]> {
    return this.supCall(sup, { $sup: 'which_children' }) as Promise<ChildInfo[]>;
  }
  countChildren(sup: Pid): Promise<ChildCounts> {
    return this.supCall(sup, { $sup: 'count_children' }) as Promise<ChildCounts>;
  }
  /** A child spec (or for simple_one_for_one the extra args) → `{ ok: pid }` or `{ error }`, as OTP's start_child. */
  startChild(sup: Pid, specOrArgs: ChildSpec | unknown[]): Promise<{ ok: Pid | null } | { error: unknown }> {
    return this.supCall(sup, { $sup: 'start_child', arg: specOrArgs }) as Promise<{ ok: Pid | null } | { error: unknown }>;
  }
  restartChild(sup: Pid, id: string): Promise<{ ok: Pid | null } | { error: unknown }> {
    return this.supCall(sup, { $sup: 'restart_child', arg: id }) as Promise<{ ok: Pid | null } | { error: unknown }>;
  }
  terminateChild(sup: Pid, idOrPid: string): Promise<{ ok: true } | { error: unknown }> {
    return this.supCall(sup, { $sup: 'terminate_child', arg: idOrPid }) as Promise<{ ok: true } | { error: unknown }>;
  }
  deleteChild(sup: Pid, id: string): Promise<{ ok: true } | { error: unknown }> {
    return this.supCall(sup, { $sup: 'delete_child', arg: id }) as Promise<{ ok: true } | { error: unknown }>;
  }
  /** @internal */
  supCall(sup: Pid, request: SupRequest): Promise<unknown> {
    return this.call('supervisorCall', sup, request);
  }

  /**
   * Stops the node's processes from the top of their trees (the node keeps running): each root,
   * newest first, gets `shutdown`; supervisors end their children in reverse start order with
   * their shutdown timeouts; trapping servers run `terminate`. What is left at `timeoutMs` is killed.
   */
  async orderlyStop(timeoutMs = 5000): Promise<StopReport> {
    const report = await this.call('orderlyStop', timeoutMs);
    // Durable servers' states not saved yet (checkpoint 'shutdown', or everyMs between two saves).
    await this.durable.save(this.name, await this.call('takeCheckpoints'));
    return report;
  }

  /** @internal the node forgets a durable state's key (system.durable.forget); refused while a server holds it. */
  forgetDurable(key: string): Promise<void> {
    return this.call('forgetDurable', key);
  }

  /** @internal the three steps of migration (see src/host/migration.ts). */
  migrateOut(pids: Pid[]): Promise<MigrationOutcome<MigrationSnapshot>[]> {
    return this.call('migrateOut', pids);
  }
  /** @internal */
  migrateIn(
    snapshots: MigrationSnapshot[],
    extra: unknown,
    timeoutMs?: number,
  ): Promise<MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean }>[]> {
    return this.call('migrateIn', snapshots, extra, timeoutMs);
  }
  /** @internal */
  migrateCommit(pids: Pid[], to: string, awaitDrain: Pid[]): Promise<void> {
    return this.call('migrateCommit', pids, to, awaitDrain);
  }
  /** @internal */
  migrateAbort(pids: Pid[]): Promise<void> {
    return this.call('migrateAbort', pids);
  }
  /** @internal */
  migrateWithdraw(pids: Pid[], from: string): Promise<Pid[]> {
    return this.call('migrateWithdraw', pids, from);
  }

  /**
   * @internal one node's part of an upgrade plan, as a transaction in the node. A load of code
   * this node had before (a rollback, a downgrade) gets the vsn that code had.
   */
  applyUpgrade(steps: UpgradeStep[]): Promise<NodeUpgradeReport> {
    return this.call('applyUpgrade', this.withVsns(steps));
  }

  /** @internal one node's part of a rolling upgrade plan: one load, then processes converted in chunks (vsns as applyUpgrade). */
  rollingUpgrade(steps: UpgradeStep[], options: RollingOptions = {}): Promise<NodeUpgradeReport> {
    return this.call('rollingUpgrade', this.withVsns(steps), options);
  }

  private withVsns(steps: UpgradeStep[]): UpgradeStep[] {
    return steps.map((step) => (step.op === 'load' ? { ...step, vsn: this.release.vsnOf(step.module, step.js) } : step));
  }

  /** @internal the compiled source of each module's current version, for plans and restarts. */
  releaseOf(module: string): string | undefined {
    return this.release.sourceOf(module);
  }
  /** @internal a plan loaded this version here. */
  released(module: string, js: string, report: Pick<LoadReport, 'version' | 'vsn' | 'purged'>): void {
    this.release.loaded(module, js, report);
  }

  /** @internal the node's release, for the release journal. */
  get releaseState(): NodeRelease {
    return this.release;
  }

  /** Spawns `module.fn(...args)` in the module's current version. */
  spawn(module: string, fn: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid> {
    return this.spawned(this.call('spawn', module, fn, args, options), module, fn, 'process');
  }

  /** Tells the `subnode:spawn` channel (telemetry.ts) of a spawn the host asked for. */
  private async spawned<T>(started: Promise<T>, module: string, fn: string, kind: 'process' | 'server' | 'statem'): Promise<T> {
    const result = await started;
    publishSpawn(this.name, (Array.isArray(result) ? result[0] : result) as Pid, module, fn, kind);
    return result;
  }

  /** Sends an exit signal from outside any process (`'kill'` cannot be trapped). */
  exit(pid: Pid, reason: unknown): Promise<void> {
    return this.callOnPid('exit', pid, reason);
  }

  processes(): Promise<ProcessInfo[]> {
    return this.call('processes');
  }
  processInfo(pid: Pid): Promise<ProcessInfo | undefined> {
    return this.callOnPid('processInfo', pid);
  }
  modules(): Promise<ModuleInfo[]> {
    return this.call('modules');
  }
  /** Flow control: processes held for sending to each node whose channel is full (the BEAM's busy distribution port). */
  holding(): Promise<Record<string, number>> {
    return this.call('holding');
  }
  whereis(name: string): Promise<Pid | undefined> {
    return this.call('whereis', name);
  }

  /** Ends this node's thread and starts a new incarnation with its release; recovers a `failed` or `stopped` node. */
  restart(): Promise<void> {
    return this.supervision.restart();
  }
  /** Ends this node's thread as a crash would: its restart policy decides what follows. */
  kill(reason?: string): void {
    this.supervision.kill(reason);
  }
  /**
   * Ends this node until `restart`. `{ graceful: true }` first stops its processes from the top of
   * their trees (`orderlyStop`), within `timeoutMs` (default 5000).
   */
  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (options.graceful && this.status === 'running') await this.orderlyStop(options.timeoutMs ?? 5000).catch(() => {});
    return this.supervision.stop();
  }

  summary(): NodeSummary {
    return { name: this.name, kind: this.kind, status: this.status, creation: this.creation };
  }

  /** @internal */
  start(): Promise<void> {
    return this.supervision.start();
  }

  /** @internal the data path in (routed through the host from `from`); false when the node is down. */
  deliver(envelopes: Envelope[], from = 'host'): boolean {
    return this.supervision.deliver(envelopes, from);
  }

  /** @internal a control call to the node as it is now, without waiting for a start (used while attaching it). */
  callNow<K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> {
    return this.supervision.callNow(op, ...args);
  }

  /** @internal a control call whose answer nobody waits for (news for the node: a global name, a node down). */
  tell<K extends ControlOp>(op: K, ...args: ControlArgs<K>): void {
    this.supervision.tell(op, ...args);
  }

  private call<K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> {
    return this.control.issue(op, args);
  }

  /** A call whose first argument is a pid: a malformed one is rejected with BadArgument. */
  private callOnPid<K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> {
    return this.control.onPid(op, args);
  }
}
