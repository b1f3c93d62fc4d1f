/**
 * The life of one node on the host: starting an incarnation (a NodeBackend: one worker thread),
 * bringing it up to the node's release, watching it, and starting a new one per the restart
 * policy when it dies — or when an operator asks (`restart`, `kill`, `stop`).
 *
 * Statuses: `starting` → `running`; a thread that dies → `restarting` → `running`, or `failed`
 * when the restart intensity is spent (or the restart itself fails), or `stopped` when the policy
 * does not restart it; `unresponsive` while a node that stopped answering is being ended.
 */
import type { SharedCode } from './source.js';
import type { MessagePort, ResourceLimits } from 'node:worker_threads';
import { NodeDown } from '../errors.js';
import type { Capabilities, Limits } from '../kernel/capabilities.js';
import type { ControlArgs, ControlOp, ControlReply, HostToNode, NodeFaults, NodeToHost } from '../wire/node.js';
import type { ClusterEvent } from '../cluster/hooks.js';
import type { ClusterOptions } from '../cluster/options.js';
import type { Envelope } from '../kernel/signals.js';
import type { Forward, KernelEvent } from '../kernel/types.js';
import type { Events } from './events.js';
import type { DurableStates } from './durable-states.js';
import { NodeBackend, type BackendExit, type DenseHost, type NodeKind } from './node-backend.js';
import type { NodeRelease } from './node-release.js';
import { RestartTracker, type RestartPolicy } from './restart.js';

export type NodeStatus = 'starting' | 'running' | 'unresponsive' | 'restarting' | 'stopped' | 'failed';

/** What a node needs from its system. */
export interface NodeContext {
  events: Events;
  /** A node's thread is up: bring it up to date. */
  attach(node: NodeSupervision): Promise<void>;
  /** Hands `node` the port `from` offered for its later batches; false if it cannot take it now. */
  offer(node: string, from: string, port: MessagePort): boolean;
  /** The dense threads isolate nodes with `dense: true` share. */
  densePool(): DenseHost;
  /** Forwarding entries for processes whose pids name this node but that live elsewhere. */
  forwardsFor(node: string): Forward[];
  /** A node's thread is gone: tell everyone else. */
  detach(node: NodeSupervision): void;
  route(node: string, envelopes: Envelope[], from: string): void;
  /** `count` envelopes serialized by node `from`'s runtime: forwarded as they are where they can be. */
  routeEncoded(node: string, bytes: Uint8Array, count: number, from: string): void;
  /** Whether a node's batches for `node` may come serialized (see Router.takesEncoded). */
  takesEncoded(node: string): boolean;
  /** Sends at once what the host batched for the nodes: a control op must not overtake it. */
  sendPending(): void;
  onKernelEvent(event: KernelEvent): void;
  /** Durable server states (src/host/durable-states.ts): given to a node as it boots, saved in an orderly stop. */
  durable: Pick<DurableStates, 'statesFor' | 'save'>;
  /** On a host of a cluster: the cluster's code store, for `{ cluster }` sources and what loads publish. */
  code?: SharedCode;
  /** On a host of a cluster: what a node's own NATS connection needs of the host's link. */
  cluster?: NodeCluster;
}

/** What a node with a NATS connection of its own (src/node/nats-endpoint.ts) needs of its host's cluster link. */
export interface NodeCluster {
  /** The host's cluster options, which the node connects with. */
  readonly options: ClusterOptions;
  /** The live host a node of another host runs on (undefined: not one). */
  hostOf(node: string): string | undefined;
  /** Settles once what this host sent so far reached the NATS server: true, or false if that could not be confirmed in time. */
  fence(): Promise<boolean>;
  /** The host owning `node` (looked up when not announced), or null. */
  ownerOf(node: string): Promise<string | null>;
  /** An event of a node's own connection, reported as the cluster's. */
  report(event: ClusterEvent): void;
  /** The hosts declared gone and not heard from since (a node attached now is told: `hostGone`). */
  goneHosts(): string[];
}

export interface NodeSetup extends RestartPolicy {
  name: string;
  kind: NodeKind;
  /** An isolate node served by a shared dense thread. */
  dense: boolean;
  capabilities: Capabilities;
  limits: Limits;
  resourceLimits?: ResourceLimits;
  /** A node that does not answer for this long is ended and restarted per policy. */
  unresponsiveMs: number;
  /** Packages and builtins its module code may import: `[specifier, url]`. */
  imports: [string, string][];
  /** Loads the spec's modules and spawns its start processes into a fresh incarnation. */
  firstBoot(call: NodeSupervision['callNow']): Promise<void>;
  start(call: NodeSupervision['callNow']): Promise<void>;
  /** Testing only: faults injected into the first incarnation (so the restart they cause comes back). */
  faults?: NodeFaults;
}

export class NodeSupervision {
  status: NodeStatus = 'starting';
  creation = -1;
  private backend: NodeBackend | undefined;
  /** Settles when the current start (or restart) is done. */
  up: Promise<void> = Promise.resolve();
  private restarts: RestartTracker;

  constructor(
    private readonly setup: NodeSetup,
    private readonly release: NodeRelease,
    private readonly context: NodeContext,
  ) {
    this.restarts = new RestartTracker(setup);
  }

  get name(): string {
    return this.setup.name;
  }

  /** Whether the running incarnation reads and sends its batches on a NATS connection of its own (see NatsEndpoint). */
  get ownConnection(): boolean {
    return this.backend?.direct === true;
  }

  /** News about another host or its node for the running incarnation (see HostToNode: `down`, `hostGone`, `hostUp`). */
  notify(message: Extract<HostToNode, { t: 'down' | 'hostGone' | 'hostUp' }>): void {
    const fencing = message.t === 'down' ? this.fencing.get(message.node) : undefined;
    if (fencing) fencing.downs++;
    this.backend?.notify(message);
  }

  /**
   * Nodes of other hosts this node offered a port for, while an offer's fence runs: how many
   * offers wait, and how many times the node went down meanwhile (an offer is answered `remote`
   * only if it did not since that offer began). Held only while offers are pending.
   */
  private readonly fencing = new Map<string, { offers: number; downs: number }>();

  start(): Promise<void> {
    this.status = 'starting';
    this.up = this.boot();
    return this.up;
  }

  /** A control call to the incarnation running now, without waiting for a start. */
  callNow = <K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> => {
    if (!this.backend) return Promise.reject(new NodeDown(`node '${this.name}' is ${this.status}`, { node: this.name }));
    this.context.sendPending();
    return this.backend.call(op, args);
  };

  /** A control call whose answer nobody waits for (news for the node: a global name, a node down). */
  tell<K extends ControlOp>(op: K, ...args: ControlArgs<K>): void {
    this.callNow(op, ...args).catch(() => {});
  }

  /** The data path in; false when the node is down. */
  deliver(envelopes: Envelope[], from: string): boolean {
    if (this.status !== 'running' || !this.backend) return false;
    this.backend.deliver(envelopes, from);
    return true;
  }

  /** The same for a serialized batch (from another host): the node's thread decodes it. */
  deliverEncoded(bytes: Uint8Array, from: string): boolean {
    if (this.status !== 'running' || !this.backend) return false;
    this.backend.deliverEncoded(bytes, from);
    return true;
  }

  /** Hands the running incarnation the port `peer` sends to it on; false when there is none to take it. */
  connect(peer: string, port: MessagePort): boolean {
    if (this.status !== 'running' || !this.backend) return false;
    this.backend.connect(peer, port);
    return true;
  }

  /** `peer` went down: the incarnation drops its port to it. */
  disconnect(peer: string): void {
    this.backend?.disconnect(peer);
  }

  /**
   * Ends the running incarnation and starts a new one, whatever the status (a `failed` or
   * `stopped` node is recovered; its restart history starts afresh). Not counted as a crash.
   */
  async restart(): Promise<void> {
    await this.shutdown();
    this.restarts = new RestartTracker(this.setup);
    this.status = 'restarting';
    this.up = this.boot();
    try {
      await this.up;
    } catch (error) {
      if ((this.status as NodeStatus) !== 'stopped') this.failed(`restart failed: ${(error as Error).message}`);
      throw error;
    }
    this.context.events.emit({ type: 'node_restarted', node: this.name, creation: this.creation });
  }

  /** Ends the thread as a crash would: the restart policy decides what follows. */
  kill(reason = 'killed by the operator'): void {
    this.backend?.kill(new Error(reason));
  }

  /** Ends the node for good (until `restart`). */
  async stop(): Promise<void> {
    const was = this.status;
    await this.shutdown();
    if (was !== 'stopped') this.context.events.emit({ type: 'node_stopped', node: this.name });
  }

  /** Ends the thread, if any; the node is `stopped`. */
  async shutdown(): Promise<void> {
    const backend = this.backend;
    this.backend = undefined;
    this.status = 'stopped';
    if (backend) {
      await backend.terminate();
      this.context.detach(this);
    }
  }

  private async boot(): Promise<void> {
    this.creation++;
    const { setup } = this;
    // Set once the node is up: the watchdog runs from the thread's start, and a node stuck while
    // starting is failed by the start's own deadline, not reported unresponsive here.
    let backend: NodeBackend | undefined = undefined;
    backend = await NodeBackend.start({
      node: this.name,
      kind: setup.kind,
      capabilities: setup.capabilities,
      limits: setup.limits,
      creation: this.creation,
      dense: setup.dense ? this.context.densePool() : undefined,
      resourceLimits:
        setup.kind === 'thread' && setup.limits.memoryMb !== undefined
          ? { ...setup.resourceLimits, maxOldGenerationSizeMb: setup.limits.memoryMb }
          : setup.resourceLimits,
      imports: setup.imports,
      watchdog:
        setup.kind === 'thread' && setup.limits.cpuMsPerSlice !== undefined
          ? { ms: setup.limits.cpuMsPerSlice, what: 'cpu limit' }
          : { ms: setup.unresponsiveMs, what: 'unresponsive' },
      faults: this.creation === 0 ? setup.faults : undefined,
      nats: !setup.dense ? this.context.cluster?.options : undefined,
      onMessage: (message, from) => this.onMessage(message, from),
      onUnresponsive: (ms) => backend && this.onUnresponsive(backend, ms),
      onExit: (exit) => backend && this.onExit(backend, exit),
    });
    if (this.status === 'stopped') {
      await backend.terminate();
      throw new NodeDown(`node '${this.name}' was stopped while starting`, { node: this.name });
    }
    this.backend = backend;
    await this.context.attach(this);
    const forwards = this.context.forwardsFor(this.name);
    if (forwards.length) await this.callNow('restoreForwards', forwards);
    // Durable server states before anything starts: a start under a key resumes from its state.
    const states = await this.context.durable.statesFor(this.name);
    if (states.length) await this.callNow('restoreDurable', states);
    const first = this.release.empty;
    await this.release.replay(this.callNow);
    if (first) {
      await setup.firstBoot(this.callNow);
      this.release.booted();
    }
    await setup.start(this.callNow);
    this.status = 'running';
  }

  private onMessage(message: Envelope[] | Extract<NodeToHost, { t: 'route' | 'routeEncoded' | 'event' | 'whois' | 'cluster' }>, backend: NodeBackend): void {
    if (Array.isArray(message)) return this.context.route('host', message, this.name);
    // The sender is this node, whatever the bytes hold (a receiving host checks it owns it).
    if (message.t === 'routeEncoded') return this.context.routeEncoded(message.node, message.bytes, message.count, this.name);
    if (message.t === 'route') {
      this.context.route(message.node, message.envelopes, this.name);
      // A port offered with the batch goes to its node after the batch, or back as refused.
      if (!message.port) return;
      const { node, offer = 0 } = message;
      const taken = this.context.offer(node, this.name, message.port);
      if (!taken) message.port.close();
      const refused = (): void => backend?.notify({ t: 'refused', node, encoded: this.context.takesEncoded(node), offer });
      if (taken) return backend?.notify({ t: 'accepted', node, offer });
      const cluster = this.context.cluster;
      const host = backend.direct ? cluster?.hostOf(node) : undefined;
      if (host === undefined) return refused();
      // A node of another host: this node sends it its batches itself, once this batch reached NATS
      // (none overtakes it) and if nothing changed meanwhile; else through the host a while.
      const fencing = this.fencing.get(node) ?? { offers: 0, downs: 0 };
      this.fencing.set(node, fencing);
      fencing.offers++;
      const downs = fencing.downs;
      const fenced = async (): Promise<boolean> => {
        try {
          return await cluster!.fence();
        } catch {
          return false;
        }
      };
      void fenced().then((confirmed) => {
        if (--fencing.offers === 0) this.fencing.delete(node);
        if (confirmed && fencing.downs === downs && cluster!.hostOf(node) === host) backend?.notify({ t: 'remote', node, host, offer });
        else refused();
      });
      return;
    }
    if (message.t === 'whois') {
      void this.context.cluster
        ?.ownerOf(message.node)
        .catch(() => null)
        .then((host) => backend?.notify({ t: 'owner', node: message.node, host }));
      return;
    }
    if (message.t === 'cluster') return this.context.cluster?.report(message.event);
    this.release.observe(message.event);
    this.context.onKernelEvent(message.event);
  }

  private onUnresponsive(backend: NodeBackend, ms: number): void {
    if (backend !== this.backend) return;
    this.status = 'unresponsive';
    this.context.events.emit({ type: 'node_unresponsive', node: this.name, creation: this.creation, ms });
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
    if (!this.restarts.allow(Date.now())) return this.failed(`more than ${this.restarts.intensity} restarts in ${this.restarts.period} ms; last: ${reason}`);
    this.status = 'restarting';
    this.up = this.boot().then(
      () => this.context.events.emit({ type: 'node_restarted', node: this.name, creation: this.creation }),
      (error: Error) => {
        if (this.status !== 'stopped') this.failed(`restart failed: ${error.message}`);
      },
    );
  }

  private failed(reason: string): void {
    this.status = 'failed';
    this.context.events.emit({ type: 'node_failed', node: this.name, reason });
  }
}
