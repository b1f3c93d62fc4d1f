/**
 * A subnode system: named virtual nodes, the router between them, the system-wide name registry
 * and the events of it all. Nodes open direct ports to each other on their first message (a port
 * offered with a batch routed here, handed over after it), so traffic between nodes does not pass
 * through this thread after the first batch, and starting a node costs nothing per other node.
 */
import { BadArgument, NoProcess, NodeDown, Refused, UnknownNode, fromWire } from '../errors.js';
import { Migrations, type BulkMigration, type MigrateOptions, type MigrationResult, type ProcessLocation } from './migration.js';
import type { PurgeReport } from '../kernel/types.js';
import type { UpgradePlan } from './upgrade-plan.js';
import { planNodes, runUpgrade, type UpgradeOptions, type UpgradeReport } from './upgrade-runner.js';
import { checkPid, isPid, nodeOf, NODE_NAME, type Pid } from '../kernel/pid.js';
import type { Dest } from '../kernel/types.js';
import { Events, type EventOf, type EventType, type SystemEvent } from './events.js';
import type { Inbox } from './inbox.js';
import { NodeHandle, type NodeSpec, type NodeSummary } from './node-handle.js';
import { Router } from './router.js';
import { Caller } from './caller.js';
import { NodeHub } from './node-hub.js';
import { HostServices, type HostFunction, type ServiceSystem } from './host-services.js';
import { ProcessRef } from './process-ref.js';
import { instrument } from './telemetry.js';
import { checkIsolateSupport } from './isolate-support.js';
import { Releases, type ReleaseOptions } from './releases.js';
import { rollbackTo } from './rollback.js';
import { DurableStates } from './durable-states.js';
import type { ClusterOptions } from '../cluster/options.js';
import type { ClusterApi, RemoteNodeSummary } from '../cluster/hooks.js';

export interface SystemOptions {
  nodes?: NodeSpec[];
  /**
   * Functions of the host that module code may call with `callHost(name, args, then)`, if its
   * node's capabilities grant the name. They may be async; arguments and results are copied.
   */
  hostFunctions?: Record<string, HostFunction>;
  /**
   * Keep the system's releases in a store (a directory, or a ReleaseStore): every load, plan,
   * policy, purge and delete is journaled, and a system started on the same store brings each
   * node back as it was. See `Releases`.
   */
  releases?: ReleaseOptions;
  /** Joins a cluster of hosts over NATS (src/cluster): node names, messages, globals and control span the hosts. */
  cluster?: ClusterOptions;
  /** How many dense threads the isolate nodes with `dense: true` share at most (default: one a core). */
  denseThreads?: number;
}

export type { HostFunction } from './host-services.js';

export class System {
  private readonly events = new Events();
  /** Diagnostics channels and OpenTelemetry counters (src/host/telemetry.ts): no cost without listeners or an SDK. */
  private readonly telemetry = instrument(
    (listener) => this.events.on('*', listener),
    () => this.nodes(),
  );
  private readonly router = new Router(
    this.events,
    (request) => this.services.serve(request),
    (pid) => this.migrations.nodeNow(pid),
  );
  private services = new HostServices(this.serviceSystem(), {});
  private readonly migrations = new Migrations((name) => this.node(name), this.events);
  private readonly handles = new Map<string, NodeHandle>();
  // Made on first use: in a cluster the host's mailbox pids name this host, set when it joins.
  private callerBox: Caller | undefined;
  private get caller(): Caller {
    return (this.callerBox ??= this.router.attach(
      (pid) =>
        new Caller(pid, this.router, {
          resolve: (dest) => this.callTarget(dest),
        }),
    ));
  }
  private clusterLink: ClusterApi | undefined;
  private stopped = false;
  private releaseKeeper: Releases | undefined;
  private durableKeeper: DurableStates | undefined;
  private denseThreads: number | undefined;
  /** What its nodes attach to: the attached nodes, the global names, the dense threads. */
  private readonly hub: NodeHub = new NodeHub({
    events: this.events,
    router: this.router,
    migrations: this.migrations,
    handles: this.handles,
    durable: () => this.durableKeeper,
    cluster: () => this.clusterLink,
    stopped: () => this.stopped,
    denseThreads: () => this.denseThreads,
  });

  private constructor() {}

  static async start(options: SystemOptions = {}): Promise<System> {
    const system = new System();
    system.services = new HostServices(system.serviceSystem(), { ...options.hostFunctions });
    const threads = options.denseThreads;
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1))
      throw new BadArgument(`denseThreads must be an integer >= 1, got ${JSON.stringify(threads)}`);
    system.denseThreads = threads;
    if (options.releases) {
      system.releaseKeeper = await Releases.open(options.releases, system.events);
      system.events.on('node_down', () => system.releaseKeeper?.nodeCrashed());
    }
    try {
      system.durableKeeper = await DurableStates.open(Releases.stateStore(options.releases), system.events);
      if (options.cluster) system.clusterLink = await (await import('../cluster/cluster.js')).Cluster.join(options.cluster, system.hub.clusterHost());
      await Promise.all((options.nodes ?? []).map((spec) => system.addNode(spec)));
    } catch (error) {
      await system.stop();
      throw error;
    }
    return system;
  }

  /** Starts one more node. */
  async addNode(spec: NodeSpec): Promise<NodeHandle> {
    if (this.stopped) throw new BadArgument('the system is stopped');
    if (!spec || typeof spec.name !== 'string' || !NODE_NAME.test(spec.name) || spec.name === 'host') {
      throw new BadArgument(`bad node name ${JSON.stringify(spec?.name)}: letters, digits, _ and -, not 'host'`);
    }
    if (this.handles.has(spec.name)) throw new BadArgument(`a node named '${spec.name}' already exists`);
    if (spec.kind === 'isolate') checkIsolateSupport(spec.name);
    const handle = new NodeHandle(spec, this.hub);
    this.handles.set(spec.name, handle);
    if (this.clusterLink) {
      // The name is claimed cluster-wide first; its creations continue where its last host left off.
      try {
        handle.supervision.creation = (await this.clusterLink.claim(spec.name)) - 1;
      } catch (error) {
        this.handles.delete(spec.name);
        throw error;
      }
    }
    this.router.addNode(spec.name, handle.supervision);
    await this.releaseKeeper?.attach(handle);
    await handle.start();
    this.events.emit({ type: 'node_started', node: handle.name, creation: handle.creation });
    return handle;
  }

  node(name: string): NodeHandle {
    const handle = this.handles.get(name) ?? this.clusterLink?.node(name);
    if (!handle) throw new UnknownNode(`no node named '${name}'`, { node: name });
    return handle;
  }

  /** Every node: this host's, and in a cluster every other host's too (with its `host`). */
  nodes(): (NodeSummary | RemoteNodeSummary)[] {
    const link = this.clusterLink;
    const local = [...this.handles.values()].map((h) => (link ? { ...h.summary(), host: link.host } : h.summary()));
    return link ? [...local, ...link.remoteNodes()] : local;
  }

  /** The cluster this host is part of (`cluster` option), with its hosts and events. */
  get cluster(): ClusterApi | undefined {
    return this.clusterLink;
  }

  /** Sends from the host: to a pid, `{ name, node }`, or `{ global }`. Unknown nodes throw; dead pids drop. */
  send(dest: Dest, message: unknown): void {
    if (typeof dest === 'string') checkPid(dest);
    this.router.send(dest, message, (name) => this.hub.globals.get(name));
  }

  /**
   * Calls a server or statem process from the host (`gen_server:call`): resolves with its reply,
   * rejects with Timeout, or with NoProcess if the process ends first.
   */
  call<R = unknown>(dest: Dest, request: unknown, timeoutMs = 5_000): Promise<R> {
    try {
      if (typeof dest === 'string') checkPid(dest);
      return this.caller.call<R>(dest, request, timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Sends a cast (`gen_server:cast`) from the host. */
  cast(dest: Dest, message: unknown): void {
    this.send(dest, { $cast: message });
  }

  /**
   * Applies an upgrade plan node by node (the canary first, alone), each node as a transaction
   * that rolls back on failure. Stops at the first failed node unless `continueOnError`. Nodes not
   * selected keep their versions untouched; every node the plan covers is in the report, and the
   * report is `ok` only if each of them upgraded. `{ dryRun: true }` reports each node's steps.
   */
  upgrade(plan: UpgradePlan, options: UpgradeOptions = {}): Promise<UpgradeReport> {
    const { nodes, hostOf } = this.planTargets();
    const run = () => runUpgrade(plan, nodes, this.events, options, hostOf);
    return this.releaseKeeper && !options.dryRun ? this.releaseKeeper.asOne(`plan: ${plan.modules?.map((m) => m.module).join(', ')}`, run) : run();
  }

  /** The release store's keeper; throws when the system was started without `releases`. */
  get releases(): Releases {
    if (!this.releaseKeeper) throw new Refused('this system keeps no releases: start it with { releases: { store } }');
    return this.releaseKeeper;
  }

  /**
   * Durable server states (servers started with `durable`): `list(node?)` what is stored,
   * `forget(node, key)` to make the next server under that key start from its `init`. Kept in the
   * release store's directory (`states/`), or in the host's memory for a system without one.
   */
  get durable(): Pick<DurableStates, 'list' | 'forget'> {
    const keeper = this.durableKeeper;
    if (!keeper) throw new Refused('the system is not started');
    return {
      list: (node) => keeper.list(node),
      // A running node forgets it first (refused while a server holds the key), then the store.
      forget: async (node, key) => {
        const handle = this.handles.get(node);
        if (handle?.status === 'running') await handle.forgetDurable(key);
        return keeper.forget(node, key);
      },
    };
  }

  /**
   * Goes back to an earlier release: on each node whose code differs, the release's versions are
   * loaded and the behaviour processes converted by their `codeChange` with `{ down: vsn }` — one
   * plan, journaled as one release.
   */
  rollback(release: number): Promise<UpgradeReport> {
    const releases = this.releases;
    return releases.asOne(`rollback to ${release}`, () => rollbackTo(releases, release, [...this.handles.values()], this.events));
  }

  /**
   * Moves a live process to another node. It is suspended at a safe point (waiting for a message)
   * with its state and pending messages; the target's code converts its state (`codeChange`
   * when the vsns differ) and runs it under the same pid. Messages sent meanwhile arrive after
   * the move, in order per sender. If the conversion or start fails, it resumes where it was,
   * exactly as it was, and the result says why. Servers and statems can move; a raw process can
   * if it waits in a receive with `onMigrate(() => next(exportedFn, ...state))`.
   */
  async migrate(pid: Pid, to: string, options: MigrateOptions = {}): Promise<MigrationResult> {
    checkPid(pid);
    const [result] = await this.migrations.migrate([pid], to, options);
    if (!result!.ok) throw fromWire(result!.error!);
    return result!;
  }

  /** Moves every process using a module (or the given pids) from one node to another, in batches. */
  migrateAll(spec: BulkMigration): Promise<MigrationResult[]> {
    return this.migrations.migrateAll(spec);
  }

  /** Where a process runs now, where it came from, and how many times it moved. */
  locate(pid: Pid): ProcessLocation {
    checkPid(pid);
    return this.migrations.locate(pid);
  }

  /** A process by pid, wherever it runs now: `exit`, `info`, `suspend`, `resume`, `getState`, `replaceState`. */
  process(pid: Pid): ProcessRef {
    return new ProcessRef(pid, (p) => this.node(this.migrations.locate(p).node));
  }

  /** Sends an exit signal to a process wherever it runs (`'kill'` cannot be trapped). */
  exit(pid: Pid, reason: unknown): Promise<void> {
    try {
      return this.process(pid).exit(reason);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Purges a module's old code on a node, moving the processes that still run it to another
   * node (say a legacy node holding that old version) instead of killing them. Processes that
   * cannot move are then handled by `then` ('kill' by default, or 'soft' to keep the old code).
   */
  async purgeToNode(
    node: string,
    module: string,
    to: string,
    options: { then?: 'kill' | 'soft'; extra?: unknown } = {},
  ): Promise<{ moved: MigrationResult[]; purge: PurgeReport }> {
    const lingering = await this.node(node).lingering(module);
    const moved = lingering.length ? await this.migrations.migrate(lingering, to, { extra: options.extra }) : [];
    const purge = await this.node(node).purge(module, options.then ?? 'kill');
    return { moved, purge };
  }

  /** A mailbox on this thread with a pid, to receive replies and DOWN messages from processes. */
  inbox(): Inbox {
    return this.router.inbox();
  }

  /** Registers `pid` under a system-wide name, usable from every node as `{ global: name }`. */
  register(name: string, pid: Pid): void {
    this.hub.register(name, pid);
  }

  unregister(name: string): void {
    this.hub.unregister(name);
  }

  whereis(name: string): Pid | undefined {
    return this.hub.globals.get(name);
  }

  on<T extends EventType>(type: T, listener: (event: EventOf<T>) => void): () => void;
  on(type: '*', listener: (event: SystemEvent) => void): () => void;
  on(type: string, listener: (event: never) => void): () => void {
    return this.events.on(type as '*', listener as (event: SystemEvent) => void);
  }

  /**
   * Ends every node and releases every thread, port and timer. With `{ graceful: true }` each
   * running node first stops its processes from the top of their trees (see `NodeHandle.orderlyStop`)
   * — servers' `terminate` callbacks run, supervisors end their children in reverse start order —
   * all within `timeoutMs` (default 5000), after which what is left is killed. Without it: at once.
   */
  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (options.graceful && !this.stopped) {
      const timeoutMs = options.timeoutMs ?? 5000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs + 1000);
      });
      const running = [...this.handles.values()].filter((h) => h.status === 'running');
      await Promise.race([Promise.all(running.map((h) => h.orderlyStop(timeoutMs).catch(() => undefined))), deadline]);
      clearTimeout(timer);
    }
    this.stopped = true;
    this.callerBox?.close(new NodeDown('the system was stopped'));
    this.hub.close();
    this.telemetry();
    await Promise.all([...this.handles.values()].map((h) => h.supervision.shutdown()));
    await this.hub.closeThreads();
    await this.clusterLink?.leave();
    this.router.close();
    // Every change journaled so far is durable before stop resolves; the store's lock is released.
    await this.durableKeeper?.close();
    await this.releaseKeeper?.close();
  }

  private serviceSystem(): ServiceSystem {
    return {
      events: this.events,
      local: (name) => this.handles.get(name),
      node: (name) => this.node(name),
      send: (dest, message) => this.send(dest, message),
      checkpoint: (origin, request) => this.durableKeeper!.checkpoint(origin, request),
    };
  }

  /** What a call from the host monitors, and on which node: a pid (wherever it moved), or a registered name. */
  private callTarget(dest: Dest): { target: string; node: string; home: string } {
    if (isPid(dest)) {
      if (this.migrations.isLost(dest)) throw new NoProcess(`${dest} went down with the node it had moved to`, { dest });
      // Monitored where it runs now, not through its home: a home that crashes must not lose the monitor.
      return { target: dest, node: this.migrations.nodeNow(dest), home: nodeOf(dest) };
    }
    if (dest && typeof dest === 'object' && 'global' in dest) {
      const pid = this.hub.globals.get(dest.global);
      if (!pid) throw new NoProcess(`no process registered globally as '${dest.global}'`, { global: dest.global });
      return this.callTarget(pid);
    }
    if (dest && typeof dest === 'object' && 'name' in dest && typeof dest.name === 'string' && typeof dest.node === 'string') {
      this.node(dest.node);
      return { target: dest.name, node: dest.node, home: dest.node };
    }
    throw new BadArgument(`cannot call ${JSON.stringify(dest)} from the host: use a pid, { name, node } or { global }`);
  }

  /**
   * The nodes an operation on `which` applies to, chosen as `upgrade` chooses a plan's nodes:
   * '*' (the default) is every running node, a list names nodes (an unknown name throws
   * UnknownNode), `{ except }` is every running node but those; `canary`, if given, first.
   * For tools (upgrade progress) that must agree with the system; in a cluster, every host's nodes.
   */
  selectedNodes(which: UpgradePlan['nodes'] = '*', canary?: string): string[] {
    return planNodes(this.planTargets().nodes, which, canary).map((n) => n.name);
  }

  /** The nodes a plan may cover: this host's, and in a cluster every host's (with each one's host). */
  private planTargets(): { nodes: NodeHandle[]; hostOf?: (node: string) => string | undefined } {
    const link = this.clusterLink;
    if (!link) return { nodes: [...this.handles.values()] };
    return {
      nodes: this.nodes().map((n) => this.node(n.name)),
      hostOf: (node) => (this.handles.has(node) ? link.host : link.remoteNodes().find((n) => n.name === node)?.host),
    };
  }
}
