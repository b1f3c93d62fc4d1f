/**
 * The host's handle on one virtual node: control operations (over the wire, src/wire/node.ts), its
 * supervision (restart per policy, replaying the modules it had), and its data path.
 */
import type { MessagePort, ResourceLimits } from 'node:worker_threads';
import { BadArgument, NodeDown, NotAllowed } from '../errors.js';
import type { Pid } from '../kernel/pid.js';
import type { Envelope } from '../kernel/signals.js';
import type { LoadReport, MigrationOutcome, MigrationSnapshot, ModuleInfo, ProcessInfo, PurgeReport, SpawnOptions } from '../kernel/types.js';
import { checkPolicy, type CodePolicy, type PurgeMode } from '../kernel/policy.js';
import type { NodeUpgradeReport, UpgradeStep } from '../kernel/upgrade.js';
import type { ControlArgs, ControlOp, ControlReply, NodeToHost } from '../wire/node.js';
import type { Events } from './events.js';
import { RestartTracker, type RestartPolicy } from './restart.js';
import { readSource, type ModuleSource } from './source.js';
import { NodeBackend, type BackendExit, type NodeKind } from './node-backend.js';
import { allows, checkCapabilities, checkLimits, type Capabilities, type Limits } from '../kernel/capabilities.js';
import { compile } from './compiler-pool.js';

export interface StartSpec {
  module: string;
  fn: string;
  args?: unknown[];
  /** Registered name on the node. */
  name?: string;
}

export interface NodeSpec extends RestartPolicy {
  name: string;
  /**
   * `thread` (default): the kernel in a worker thread — fast, trusted code only.
   * `isolate`: the kernel in an isolated-vm isolate inside a worker — a sandbox for untrusted code.
   */
  kind?: NodeKind;
  /** What the node may do (Safe Erlang): nodes it may address, modules it may load, services it sees. */
  capabilities?: Partial<Capabilities>;
  /** Memory, CPU per slice, mailbox length and message size. */
  limits?: Limits;
  /** Limits for a thread node's worker (its V8 heap); running out ends and restarts the node. */
  resourceLimits?: ResourceLimits;
  /** Modules loaded at start, in order, and again after every restart. */
  modules?: Record<string, ModuleSource>;
  /** Code policy of the node (default: Erlang's two versions, soft purge), and per module. */
  code?: CodePolicy;
  modulePolicies?: Record<string, CodePolicy>;
  /** Processes spawned after the modules load, and again after every restart. */
  start?: StartSpec[];
}

export type NodeStatus = 'starting' | 'running' | 'restarting' | 'stopped' | 'failed';

export interface NodeSummary {
  name: string;
  kind: NodeKind;
  status: NodeStatus;
  creation: number;
}

/** What a node handle needs from its system. */
export interface NodeContext {
  events: Events;
  /** A node's thread is up: connect it with the others and bring it up to date. */
  attach(node: NodeHandle): Promise<void>;
  /** Forwarding entries for processes whose pids name this node but that live elsewhere. */
  forwardsFor(node: string): [Pid, string][];
  /** A node's thread is gone: tell everyone else. */
  detach(node: NodeHandle): void;
  route(node: string, envelopes: Envelope[], from: string): void;
  onKernelEvent(message: Extract<NodeToHost, { t: 'event' }>['event']): void;
}

export class NodeHandle {
  readonly name: string;
  readonly kind: NodeKind;
  readonly capabilities: Capabilities;
  readonly limits: Limits;
  status: NodeStatus = 'starting';
  creation = -1;
  private backend: NodeBackend | undefined;
  private up: Promise<void> = Promise.resolve();
  private readonly restarts: RestartTracker;
  /** Each module's current source (compiled), replayed in load order after a restart. */
  private readonly release = new Map<string, string>();
  private policy: CodePolicy | undefined;
  private readonly modulePolicies = new Map<string, CodePolicy>();

  constructor(private readonly spec: NodeSpec, private readonly context: NodeContext) {
    this.name = spec.name;
    this.restarts = new RestartTracker(spec);
    if (spec.code !== undefined) this.policy = checkPolicy(spec.code, `node '${spec.name}' code policy`);
    for (const [module, policy] of Object.entries(spec.modulePolicies ?? {})) this.modulePolicies.set(module, checkPolicy(policy, `module '${module}' code policy`));
    if (spec.kind !== undefined && spec.kind !== 'thread' && spec.kind !== 'isolate') throw new BadArgument(`node '${spec.name}': kind must be 'thread' or 'isolate', got ${JSON.stringify(spec.kind)}`);
    this.kind = spec.kind ?? 'thread';
    this.capabilities = checkCapabilities(spec.capabilities);
    this.limits = checkLimits(spec.limits);
  }

  /** @internal */
  async start(): Promise<void> {
    this.up = this.boot();
    await this.up;
  }

  /**
   * Compiles `source` (TypeScript or JavaScript) and loads it as the module's new version on this
   * node. If the retention has no room for another old version, the oldest is purged first with
   * `purge` (default: the node's policy); a refused purge rejects with NotPurged, changing nothing.
   * The report lists hazards found in the source (loops that can never leave this version…).
   */
  async load(module: string, source: ModuleSource, options: { purge?: PurgeMode } = {}): Promise<LoadReport> {
    this.checkModuleAllowed(module);
    const { text, filename } = readSource(module, source);
    const { js, hazards } = await compile(module, text, filename);
    const report = await this.call('load', module, js, options);
    this.release.delete(module);
    this.release.set(module, js);
    return { ...report, warnings: hazards };
  }

  /** Loads JavaScript already in the kernel's module shape (see `transpile`). @internal */
  async loadCompiled(module: string, js: string, options: { purge?: PurgeMode } = {}): Promise<LoadReport> {
    const report = await this.call('load', module, js, options);
    this.release.delete(module);
    this.release.set(module, js);
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
    return this.call('checkProcessCode', pid, module);
  }

  /** Processes running old code of `module` (or the given version). Costs O(lingering). */
  lingering(module: string, version?: number): Promise<Pid[]> {
    return this.call('lingering', module, version);
  }

  /** The current version becomes old: new spawns and qualified calls fail. */
  async deleteModule(module: string): Promise<PurgeReport> {
    const report = await this.call('deleteModule', module);
    this.release.delete(module);
    return report;
  }

  /** The node's code policy, or one module's (retention and purge mode). Kept across restarts. */
  async setPolicy(policy: CodePolicy, module?: string): Promise<void> {
    const checked = checkPolicy(policy);
    await this.call('setPolicy', checked, module);
    if (module === undefined) this.policy = checked; else this.modulePolicies.set(module, checked);
  }

  /** Starts a server (gen_server-like) process; its `init(...args)` runs before this resolves. */
  startServer(module: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid> {
    return this.call('startBehaviour', 'server', module, args, options);
  }

  /** Starts a statem (gen_statem-like) process; `init(...args)` returns `{ state, data }`. */
  startStatem(module: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid> {
    return this.call('startBehaviour', 'statem', module, args, options);
  }

  /** Behaviour processes using `module` as a callback module. */
  behavioursOf(module: string): Promise<Pid[]> { return this.call('behavioursOf', module); }

  /** `sys:suspend`: the process runs nothing until resumed; its messages wait. Any process can be suspended. */
  suspend(pid: Pid): Promise<void> { return this.call('suspend', pid); }
  resume(pid: Pid): Promise<void> { return this.call('resume', pid); }

  /**
   * `sys:change_code`: on a suspended behaviour process, runs the current version's
   * `codeChange(oldVsn, state, extra)`. If it throws, returns nothing or takes longer than
   * `timeoutMs`, the process keeps its old state and the error says why. `oldVsn` defaults to
   * the vsn its state came from; pass `{ down: vsn }` for a downgrade.
   */
  changeCode(pid: Pid, module: string, options: { oldVsn?: unknown; extra?: unknown; timeoutMs?: number } = {}): Promise<{ from: unknown; to: unknown }> {
    return this.call('changeCode', pid, module, options.oldVsn, options.extra, options.timeoutMs);
  }

  getState<S = unknown>(pid: Pid): Promise<S> { return this.call('getState', pid) as Promise<S>; }
  replaceState(pid: Pid, state: unknown): Promise<void> { return this.call('replaceState', pid, state); }

  /** @internal the three steps of migration (see src/host/migration.ts). */
  migrateOut(pids: Pid[]): Promise<MigrationOutcome<MigrationSnapshot>[]> {
    return this.call('migrateOut', pids);
  }
  /** @internal */
  migrateIn(snapshots: MigrationSnapshot[], extra: unknown, timeoutMs?: number): Promise<MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean }>[]> {
    return this.call('migrateIn', snapshots, extra, timeoutMs);
  }
  /** @internal */
  migrateCommit(pids: Pid[], to: string, awaitDrain: Pid[]): Promise<void> { return this.call('migrateCommit', pids, to, awaitDrain); }
  /** @internal */
  migrateAbort(pids: Pid[]): Promise<void> { return this.call('migrateAbort', pids); }

  /** @internal one node's part of an upgrade plan, as a transaction in the node. */
  applyUpgrade(steps: UpgradeStep[]): Promise<NodeUpgradeReport> {
    return this.call('applyUpgrade', steps);
  }

  /** @internal the compiled source of each module's current version, for plans and restarts. */
  releaseOf(module: string): string | undefined { return this.release.get(module); }
  /** @internal */
  setRelease(module: string, js: string | undefined): void {
    this.release.delete(module);
    if (js !== undefined) this.release.set(module, js);
  }

  /** Spawns `module.fn(...args)` in the module's current version. */
  spawn(module: string, fn: string, args: unknown[] = [], options: SpawnOptions = {}): Promise<Pid> {
    return this.call('spawn', module, fn, args, options);
  }

  /** Sends an exit signal from outside any process (`'kill'` cannot be trapped). */
  exit(pid: Pid, reason: unknown): Promise<void> {
    return this.call('exit', pid, reason);
  }

  processes(): Promise<ProcessInfo[]> { return this.call('processes'); }
  processInfo(pid: Pid): Promise<ProcessInfo | undefined> { return this.call('processInfo', pid); }
  modules(): Promise<ModuleInfo[]> { return this.call('modules'); }
  whereis(name: string): Promise<Pid | undefined> { return this.call('whereis', name); }

  summary(): NodeSummary {
    return { name: this.name, kind: this.kind, status: this.status, creation: this.creation };
  }

  /** @internal the data path in (routed through the host from `from`); false when the node is down. */
  deliver(envelopes: Envelope[], from = 'host'): boolean {
    if (this.status !== 'running' || !this.backend) return false;
    this.backend.deliver(envelopes, from);
    return true;
  }

  /** @internal a control call to the node as it is now, without waiting for a start (used while attaching it). */
  callNow<K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> {
    if (!this.backend) return Promise.reject(new NodeDown(`node '${this.name}' is ${this.status}`, { node: this.name }));
    return this.backend.call(op, args);
  }

  /** @internal a control call whose answer nobody waits for (news for the node: a global name, a node down). */
  tell<K extends ControlOp>(op: K, ...args: ControlArgs<K>): void {
    this.callNow(op, ...args).catch(() => {});
  }

  /** @internal connects a peer port (the system's mesh). */
  connect(peer: string, port: MessagePort): void {
    if (this.backend) this.backend.connect(peer, port);
    else port.close();
  }

  /** @internal */
  async stop(): Promise<void> {
    const backend = this.backend;
    this.status = 'stopped';
    this.backend = undefined;
    if (backend) await backend.terminate();
  }

  private async boot(): Promise<void> {
    this.creation++;
    const backend = await NodeBackend.start({
      node: this.name,
      kind: this.kind,
      capabilities: this.capabilities,
      limits: this.limits,
      creation: this.creation,
      peers: new Map(),
      resourceLimits: this.kind === 'thread' && this.limits.memoryMb !== undefined
        ? { ...this.spec.resourceLimits, maxOldGenerationSizeMb: this.limits.memoryMb }
        : this.spec.resourceLimits,
      onMessage: (message) => this.onMessage(message),
      onExit: (exit) => this.onExit(backend, exit),
    });
    if (this.status === 'stopped') {
      await backend.terminate();
      throw new NodeDown(`node '${this.name}' was stopped while starting`, { node: this.name });
    }
    this.backend = backend;
    await this.context.attach(this);
    const forwards = this.context.forwardsFor(this.name);
    if (forwards.length) await this.callNow('restoreForwards', forwards);
    if (this.policy) await this.callNow('setPolicy', this.policy);
    for (const [module, policy] of this.modulePolicies) await this.callNow('setPolicy', policy, module);
    if (this.release.size) {
      for (const [module, js] of this.release) await this.callNow('load', module, js, {});
    } else {
      for (const [module, source] of Object.entries(this.spec.modules ?? {})) await this.loadDuringBoot(module, source);
    }
    for (const s of this.spec.start ?? []) await this.callNow('spawn', s.module, s.fn, s.args ?? [], { name: s.name });
    this.status = 'running';
  }

  /** The module allow-list, checked here on the trusted side before any source reaches the node. */
  private checkModuleAllowed(module: string): void {
    if (allows(this.capabilities.modules, module)) return;
    this.context.events.emit({ type: 'capability_denied', node: this.name, what: `load module '${module}'` });
    throw new NotAllowed(`node '${this.name}' may not load module '${module}'`, { node: this.name, module });
  }

  private async loadDuringBoot(module: string, source: ModuleSource): Promise<void> {
    this.checkModuleAllowed(module);
    const { text, filename } = readSource(module, source);
    const { js } = await compile(module, text, filename);
    await this.callNow('load', module, js, {});
    this.release.set(module, js);
  }

  private onMessage(message: NodeToHost): void {
    if (message.t === 'route') this.context.route(message.node, message.envelopes, this.name);
    else if (message.t === 'event') this.context.onKernelEvent(message.event);
  }

  private onExit(backend: NodeBackend, exit: BackendExit): void {
    if (exit.requested || backend !== this.backend) return;
    const reason = exit.error ? `${exit.error.name}: ${exit.error.message}` : `exit code ${exit.code}`;
    const abnormal = exit.code !== 0 || exit.error !== undefined;
    this.backend = undefined;
    this.context.events.emit({ type: 'node_down', node: this.name, creation: this.creation, reason });
    this.context.detach(this);
    if (!this.restarts.wants(abnormal)) {
      this.status = 'stopped';
      this.context.events.emit({ type: 'node_stopped', node: this.name });
      return;
    }
    if (!this.restarts.allow(Date.now())) {
      this.status = 'failed';
      this.context.events.emit({ type: 'node_failed', node: this.name, reason: `more than ${this.restarts.intensity} restarts in ${this.restarts.period} ms; last: ${reason}` });
      return;
    }
    this.status = 'restarting';
    this.up = this.boot().then(
      () => this.context.events.emit({ type: 'node_restarted', node: this.name, creation: this.creation }),
      (error: Error) => {
        if (this.status === 'stopped') return;
        this.status = 'failed';
        this.context.events.emit({ type: 'node_failed', node: this.name, reason: `restart failed: ${error.message}` });
      },
    );
  }

  /** A control call that waits out a start or restart, fails with a typed error, and never hangs. */
  private async call<K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> {
    if (this.status === 'starting' || this.status === 'restarting') await this.up.catch(() => {});
    if (this.status !== 'running') throw new NodeDown(`node '${this.name}' is ${this.status}`, { node: this.name });
    return this.callNow(op, ...args);
  }
}
