/**
 * What the host's nodes and its cluster link reach of the system: the nodes' NodeContext (the set
 * of nodes whose threads are up, routing, port offers, kernel events, the dense threads), the
 * system-wide names they share, and the ClusterHost the cluster link is given. A node going down
 * is told to everyone else here: peers, the router, the global names, the cluster.
 */
import { BadArgument, NameTaken } from '../errors.js';
import { isPid, nodeOf, type Pid } from '../kernel/pid.js';
import type { MessagePort } from 'node:worker_threads';
import type { Forward, KernelEvent } from '../kernel/types.js';
import type { Envelope } from '../kernel/signals.js';
import type { ClusterApi, ClusterHost } from '../cluster/hooks.js';
import type { SharedCode } from './source.js';
import type { Events } from './events.js';
import type { Router } from './router.js';
import type { MoveEnd, Migrations, ProcessLocation } from './migration.js';
import { Sig } from '../kernel/signals.js';
import type { NodeHandle } from './node-handle.js';
import type { NodeCluster, NodeContext, NodeSupervision } from './node-supervision.js';
import type { DurableStates } from './durable-states.js';
import { GlobalRegistry } from './globals.js';
import { DensePool } from './dense-pool.js';

/** What the hub reaches of its system. */
export interface HubSystem {
  readonly events: Events;
  readonly router: Router;
  readonly migrations: Migrations;
  /** This host's nodes. */
  readonly handles: ReadonlyMap<string, NodeHandle>;
  /** The durable states' keeper, once the system has opened it. */
  durable(): DurableStates | undefined;
  /** The cluster this host joined, if any. */
  cluster(): ClusterApi | undefined;
  /** The system is stopping: a node going down is not reported. */
  stopped(): boolean;
  /** How many dense threads at most (undefined: one a core). */
  denseThreads(): number | undefined;
}

export class NodeHub implements NodeContext {
  /** Nodes whose threads are up and can take peer ports. */
  readonly attached = new Set<NodeSupervision>();
  readonly globals = new GlobalRegistry(() => this.attached);
  readonly events: Events;
  code?: SharedCode;
  cluster?: NodeCluster;
  /** The threads of dense isolate nodes, made on first use. */
  private dense: DensePool | undefined;
  /** Per home node: forwards to restore at the end of this task (pid → the node it runs on). */
  private readonly restores = new Map<string, Map<Pid, string>>();

  constructor(private readonly system: HubSystem) {
    this.events = system.events;
  }

  readonly durable: NodeContext['durable'] = {
    statesFor: (node) => this.system.durable()?.statesFor(node) ?? Promise.resolve([]),
    save: (node, states) => this.system.durable()?.save(node, states) ?? Promise.resolve(),
  };

  async attach(node: NodeSupervision): Promise<void> {
    this.attached.add(node);
    // A node without a NATS connection of its own has its subject read by the host for it; one
    // with takes nothing from the hosts declared gone before it came up.
    if (!node.ownConnection) this.system.cluster()?.serve(node.name);
    else for (const host of this.cluster?.goneHosts() ?? []) node.notify({ t: 'hostGone', host });
    const names = this.globals.entries();
    if (names.length) await node.callNow('setGlobals', names);
  }

  detach(node: NodeSupervision): void {
    this.attached.delete(node);
    if (this.system.stopped()) return;
    const { migrations, router } = this.system;
    // Processes that had migrated to it are gone too, though their pids name other nodes.
    const lost = migrations.nodeDown(node.name);
    // Processes homed there that moved away live on: no DOWN for them, and their global names stay.
    const alive = migrations.forwardsHomedAt(node.name).map(([pid]) => pid);
    for (const [name, pid] of this.globals.entries()) if ((nodeOf(pid) === node.name && !alive.includes(pid)) || lost.includes(pid)) this.setGlobal(name, null);
    this.globals.flush();
    for (const peer of this.attached) {
      peer.disconnect(node.name);
      peer.tell('nodeDown', node.name, lost, alive);
    }
    router.nodeDown(node.name, lost, (pid) => migrations.locate(pid).node !== node.name);
    this.system.cluster()?.localNodeDown(node.name, lost, node.creation);
  }

  /** A node of another host went down (incarnations up to `creation`): this host's nodes and host monitors hear `noconnection`. */
  remoteNodeDown(node: string, host: string, lost: Pid[], creation: number): void {
    this.system.migrations.forgetMovesTo(node);
    for (const peer of this.attached) {
      // First: a node reading NATS itself takes in what is on its way from it, then serves this.
      peer.notify({ t: 'down', node, host, creation });
      peer.tell('nodeDown', node, lost, [], creation);
    }
    this.system.router.nodeDown(node, lost, () => false, creation);
  }

  /** Host `host` was declared gone: this host's nodes take nothing more from it (told before its nodes' downs). */
  remoteHostGone(host: string): void {
    for (const peer of this.attached) peer.notify({ t: 'hostGone', host });
  }

  /** Host `host` was taken up again: this host's nodes take its batches again. */
  remoteHostUp(host: string): void {
    for (const peer of this.attached) peer.notify({ t: 'hostUp', host });
  }

  forwardsFor(node: string): Forward[] {
    return this.system.migrations.forwardsHomedAt(node);
  }

  route(node: string, envelopes: Envelope[], from: string): void {
    this.system.router.route(node, envelopes, from);
  }

  routeEncoded(node: string, bytes: Uint8Array, count: number, from: string): void {
    this.system.router.routeEncoded(node, bytes, count, from);
  }

  takesEncoded(node: string): boolean {
    return this.system.router.takesEncoded(node);
  }

  offer(node: string, from: string, port: MessagePort): boolean {
    return this.system.handles.get(node)?.supervision.connect(from, port) ?? false;
  }

  densePool(): DensePool {
    return (this.dense ??= new DensePool(this.system.denseThreads()));
  }

  sendPending(): void {
    this.system.router.sendPending();
  }

  onKernelEvent(event: KernelEvent): void {
    const { events, migrations } = this.system;
    // A node speaks only for its own processes (wherever their pids say they came from).
    if ((event.type === 'global_register' || event.type === 'global_unregister') && migrations.locate(event.pid).node !== event.node) {
      events.emit({ type: 'capability_denied', node: event.node, what: `${event.type} of '${event.name}' for ${event.pid}, a process it does not run` });
      return;
    }
    if (event.type === 'global_register') {
      if (!this.admitGlobal(event)) return;
      const held = this.globals.get(event.name);
      if (held && held !== event.pid) {
        // Two nodes registered the same name at once: the first one the host saw keeps it.
        events.emit({ type: 'global_conflict', name: event.name, kept: held, refused: event.pid });
        this.globals.correct(event.node, event.name);
        return;
      }
      this.setGlobal(event.name, event.pid, event.node);
    } else if (event.type === 'migrated_exit') {
      const known = migrations.locate(event.pid).node === event.node ? migrations.ended(event.pid) : undefined;
      this.system.cluster()?.ended(event.pid, event.node, known);
    } else if (event.type === 'global_unregister') {
      if (this.globals.get(event.name) === event.pid) this.setGlobal(event.name, null);
    }
    events.emit(event);
  }

  /** The host registers `pid` under a system-wide name; every node hears of it at once. */
  register(name: string, pid: Pid): void {
    if (typeof name !== 'string' || !name) throw new BadArgument(`bad global name ${JSON.stringify(name)}`);
    if (!isPid(pid)) throw new BadArgument(`register() takes a pid, got ${JSON.stringify(pid)}`);
    const held = this.globals.get(name);
    if (held && held !== pid) throw new NameTaken(`the global name '${name}' is already registered to ${held}`, { name });
    this.setGlobal(name, pid);
    this.globals.flush();
  }

  unregister(name: string): void {
    if (!this.globals.has(name)) return;
    this.setGlobal(name, null);
    this.globals.flush();
  }

  /**
   * Sets or frees a global name in the registry (`by`: the node that registered it, for its
   * limit); the nodes hear of it in the next batch, the cluster at once unless it told us.
   */
  setGlobal(name: string, pid: Pid | null, by?: string, fromCluster = false): void {
    const previous = this.globals.get(name);
    this.globals.set(name, pid, by);
    if (!fromCluster) this.system.cluster()?.globalChanged(name, pid, previous);
  }

  /** What the cluster link (src/cluster) reaches of this system. */
  clusterHost(): ClusterHost {
    const { events, router, migrations, handles } = this.system;
    return {
      events,
      router,
      context: this,
      globals: this.globals.view,
      local: () => [...handles.values()],
      applyGlobal: (name, pid) => this.setGlobal(name, pid, undefined, true),
      remoteNodeDown: (node, host, lost, creation) => this.remoteNodeDown(node, host, lost, creation),
      remoteHostGone: (host) => this.remoteHostGone(host),
      remoteHostUp: (host) => this.remoteHostUp(host),
      locate: (pid) => migrations.locate(pid),
      moved: (location) => this.learnMove(location),
      ended: (end) => this.learnEnded(end),
      movedTo: (node) => migrations.movedTo(node),
    };
  }

  /**
   * A move another host told of. If the process's home node is here and it runs elsewhere, the
   * home forwards to it again unless it still does (it stopped when the node it ran on went down,
   * or its host was cut off: after the heal, sends by pid reach the process again).
   */
  private learnMove(location: ProcessLocation): boolean {
    const news = this.system.migrations.learn(location);
    const home = this.system.handles.get(location.home);
    if (news && home && location.node !== location.home && home.status === 'running') this.restore(location.home, location.pid, location.node);
    return news;
  }

  /**
   * Another host told that a moved process ended. If its home node is here, the home stops
   * forwarding to it: the end's own Gone may have passed the home before a forward the host
   * restored there (learnMove), which would then outlive the process.
   */
  private learnEnded(end: MoveEnd): boolean {
    const home = nodeOf(end.pid);
    const forgot = this.system.migrations.learnEnded(end);
    if (forgot && this.system.handles.has(home)) {
      // Not restored at all if it still waits; sent after it (same port, in order) if it left.
      this.restores.get(home)?.delete(end.pid);
      this.system.router.route(home, [[Sig.Gone, end.pid]]);
    }
    return forgot;
  }

  /**
   * The home forwards to where the process runs again, in one control call per home node per
   * task (a bulk move another host drove tells of many processes at once). A home going down
   * meanwhile gets its forwards back from the registry when it starts again.
   */
  private restore(home: string, pid: Pid, node: string): void {
    let batch = this.restores.get(home);
    if (!batch) {
      this.restores.set(home, (batch = new Map()));
      queueMicrotask(() => {
        this.restores.delete(home);
        const handle = this.system.handles.get(home);
        if (batch!.size && handle?.status === 'running') handle.supervision.callNow('restoreForwards', [...batch!]).catch(() => {});
      });
    }
    batch.set(pid, node);
  }

  /** No batch of global names is left pending (the system stops). */
  close(): void {
    this.globals.close();
  }

  /** Ends the dense threads (once their nodes are down). */
  async closeThreads(): Promise<void> {
    await this.dense?.close();
  }

  /** The host's own check of a global registration (see GlobalRegistry.admit); a refused one is reported and undone. */
  private admitGlobal(event: { node: string; name: string; pid: Pid }): boolean {
    const origin = this.system.handles.get(event.node);
    return origin !== undefined && this.globals.admit(origin, event, (e) => this.events.emit(e));
  }
}
