/**
 * A host's membership of a subnode cluster on NATS (issue #17). `System.start({ cluster })` joins
 * one; the pieces:
 *
 * - membership.ts: which hosts are alive (heartbeats in a KV bucket with a TTL);
 * - claims.ts: node names unique cluster-wide, and their creations (KV, compare-and-set);
 * - link.ts: this host's data path: its mailboxes', its dense nodes' and its notices' batches, on
 *   the subject of what they are for (a node with a worker of its own has its own connection:
 *   src/node/nats-endpoint.ts, given what it needs of this host as `context.cluster`);
 * - control.ts: control operations on nodes of other hosts (request/reply), remote NodeHandles;
 * - globals.ts: global names (KV, compare-and-set); code-store.ts: module code by hash;
 * - moves.ts: where moved processes run and when they end, told by the host that runs them (also to
 *   late joiners).
 *
 * Nodes of other hosts are registered in this host's Router as NodeSinks that hand envelopes to
 * the link, so the nodes and the router need no change to reach them: a node's kernel routes
 * envelopes for a node it has no port to through the host, as it always did.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { HOST_PREFIX, nodeOf, type Pid } from '../kernel/pid.js';
import type { NodeHandle } from '../host/node-handle.js';
import type { NodeStatus } from '../host/node-supervision.js';
import { NodeClaims } from './claims.js';
import { CodeStore } from './code-store.js';
import { Spill } from './spill.js';
import { ControlClient, ControlServer, RemoteSupervision, remoteHandle, type RemoteView } from './control.js';
import { GlobalNames } from './globals.js';
import type { ClusterApi, ClusterEvent, ClusterHost, RemoteNodeSummary } from './hooks.js';
import { Inbound } from './inbound.js';
import { Link } from './link.js';
import { EVERY_INCARNATION, isMoveNotice, isNotice, type WireItem } from '../net/frames.js';
import { Membership, type HostRecord } from './membership.js';
import { Moves } from './moves.js';
import type { ProcessLocation } from '../host/migration.js';
import { checkOptions, connectNats, joinError, names, type ClusterOptions, type Names, type Settings } from './options.js';

export { HOST_PREFIX } from '../kernel/pid.js';

export class Cluster implements ClusterApi, RemoteView {
  readonly host: string;
  private readonly id = randomUUID();
  private readonly names: Names;
  private readonly listeners = new Map<string, Set<(event: ClusterEvent) => void>>();
  /** Nodes of other hosts → their host (as last heard). */
  private readonly nodeHost = new Map<string, string>();
  private readonly handles = new Map<string, NodeHandle>();
  private membership!: Membership;
  private claims!: NodeClaims;
  private globals!: GlobalNames;
  private link!: Link;
  private inbound!: Inbound;
  private control!: ControlServer;
  private client!: ControlClient;
  private moves!: Moves;
  private left = false;
  /** Hosts declared gone and not heard from since: what they send is from before, and dropped. */
  private readonly gone = new Set<string>();

  static async join(options: ClusterOptions, host: ClusterHost): Promise<Cluster> {
    const settings = checkOptions(options);
    const nc = await connectNats(options, settings);
    const cluster = new Cluster(nc, options, settings, host);
    try {
      await cluster.start();
    } catch (error) {
      cluster.left = true;
      await nc.close().catch(() => {});
      throw joinError(error, nc.getServer() ? [nc.getServer()] : [], settings.host);
    }
    return cluster;
  }

  private constructor(
    private readonly nc: NatsConnection,
    private readonly options: ClusterOptions,
    private readonly settings: Settings,
    private readonly system: ClusterHost,
  ) {
    this.host = settings.host;
    this.names = names(settings.cluster);
  }

  private async start(): Promise<void> {
    const { system, settings, names } = this;
    system.router.hostNode = `${HOST_PREFIX}${this.host}`;
    const kvm = new Kvm(jetstream(this.nc));
    const bucket = async (name: string, ttl?: number): Promise<KV> => {
      try {
        return await kvm.create(name, { history: 1, ...(ttl ? { ttl } : {}) });
      } catch {
        return kvm.open(name);
      }
    };
    const [hosts, nodes, globals, modules] = await Promise.all([
      bucket(names.hostsBucket, settings.deadAfterMs),
      bucket(names.nodesBucket),
      bucket(names.globalsBucket),
      bucket(names.modulesBucket),
    ]);
    const objm = new Objm(this.nc);
    const code = new CodeStore(await objm.create(names.codeBucket).catch(() => objm.open(names.codeBucket)), modules, (module, reason) =>
      this.emit({ type: 'code_publish_failed', module, reason }),
    );
    // Nodes of this host fetch `{ cluster }` sources from it, and publish what they load.
    system.context.code = code;
    this.membership = new Membership(hosts, settings, () => this.record(), {
      up: (record) => this.hostUp(record),
      update: (record) => this.learn(record),
      down: (record, reason) => this.hostDown(record, reason),
    });
    this.claims = new NodeClaims(
      nodes,
      this.host,
      this.id,
      settings.cluster,
      async (h) => this.membership.alive(h) || (await hosts.get(h))?.operation === 'PUT',
    );
    this.globals = new GlobalNames(globals, system, (pid) => this.reachable(pid));
    this.moves = new Moves(
      system,
      {
        hosts: () => this.membership.records().map((r) => r.host),
        hostOf: (node) => this.hostOf(node),
        tell: (hosts, location) => {
          if (!this.left) this.link.moved(hosts, location);
        },
        tellEnded: (hosts, end) => {
          if (!this.left) this.link.ended(hosts, end);
        },
      },
      (event) => this.emit(event),
      // An arrival waits for its driver's notice as long as a spilled control message may live.
      Math.max(60_000, 4 * settings.requestTimeoutMs),
    );
    this.inbound = new Inbound(
      this.host,
      system,
      this.nodeHost,
      (node) => this.claims.ownerOf(node),
      (event) => this.emit(event),
      () => this.left,
      // Moves told by other hosts go through `moves` (checked, and passed on by the host that runs the process).
      (notice, from, owner) => this.moves.heard(notice, from, owner),
    );
    this.link = new Link(
      this.nc,
      names,
      settings,
      (items, sender, to) => (this.gone.has(sender) ? this.fromGone(items, sender, to) : this.inbound.receive(items, sender, to)),
      (event) => this.emit(event),
    );
    // What a node with a NATS connection of its own needs of this host (src/node/nats-endpoint.ts).
    system.context.cluster = {
      options: this.options,
      hostOf: (node) => this.hostOf(node),
      fence: () => this.link.fence(),
      ownerOf: async (node) => {
        if (node.startsWith(HOST_PREFIX)) return node.slice(HOST_PREFIX.length);
        const live = this.hostOf(node);
        if (live !== undefined) return live;
        // The node names bucket; if it cannot answer, what is known now (the node waits for an answer: it always gets one).
        // A host declared gone owns nothing here until it is heard again.
        const owner = await this.claims.ownerOf(node).catch(() => this.hostOf(node));
        return owner === undefined || this.gone.has(owner) ? null : owner;
      },
      goneHosts: () => [...this.gone],
      report: (event) => this.emit(event),
    };
    // Spilled control messages expire once no deadline can still want them.
    const spillTtlNs = Math.max(60_000, 4 * settings.requestTimeoutMs) * 1e6;
    const spillStore = await objm.create(names.spillBucket, { ttl: spillTtlNs }).catch(() => objm.open(names.spillBucket));
    const spill = new Spill(spillStore, this.nc.info?.max_payload ?? 1024 * 1024, this.host);
    this.control = new ControlServer(this.nc, names, settings, system, code, spill, this.moves);
    this.client = new ControlClient(this.nc, names, settings, code, this, spill);
    this.link.start();
    this.control.start();
    void this.watchConnection();
    await this.membership.start();
    await this.globals.start();
    const local = (node: string): boolean => system.local().some((h) => h.name === node);
    for (const type of ['node_started', 'node_down', 'node_stopped', 'node_failed'] as const) {
      system.events.on(type, (event) => {
        if (local(event.node)) this.membership.beat();
      });
    }
    // Moves this host drove: every host's locate learns them, from the host that runs the process.
    system.events.on('process_migrated', (event) => this.moves.driven(system.locate(event.pid)));
    system.events.on('node_restarted', (event) => {
      if (!local(event.node)) return;
      this.membership.beat();
      void this.claims.restarted(event.node, event.creation);
    });
  }

  claim(node: string): Promise<number> {
    return this.claims.claim(node);
  }

  hosts(): string[] {
    return [this.host, ...this.membership.records().map((r) => r.host)];
  }

  node(name: string): NodeHandle | undefined {
    if (!this.hostOf(name)) return undefined;
    let handle = this.handles.get(name);
    if (!handle) this.handles.set(name, (handle = remoteHandle(name, this.system, new RemoteSupervision(name, this.client, this))));
    return handle;
  }

  remoteNodes(): RemoteNodeSummary[] {
    const out: RemoteNodeSummary[] = [];
    for (const record of this.membership.records()) {
      for (const node of record.nodes) if (this.nodeHost.get(node.name) === record.host) out.push({ ...node, host: record.host });
    }
    return out;
  }

  hostOf(node: string): string | undefined {
    const host = this.nodeHost.get(node);
    return host !== undefined && this.membership.alive(host) ? host : undefined;
  }

  summaryOf(node: string): { status: NodeStatus; creation: number } | undefined {
    const host = this.hostOf(node);
    return host === undefined ? undefined : this.membership.record(host)?.nodes.find((n) => n.name === node);
  }

  globalChanged(name: string, pid: Pid | null, previous: Pid | undefined): void {
    if (!this.left) this.globals.changed(name, pid, previous);
  }

  ended(pid: Pid, node: string, known: ProcessLocation | undefined): void {
    if (!this.left) this.moves.ended(pid, node, known);
  }

  localNodeDown(node: string, lost: Pid[], creation: number): void {
    this.link.unserve(node);
    if (this.left) return;
    this.moves.nodeDown(node);
    this.link.nodeDown(
      this.membership.records().map((r) => r.host),
      node,
      lost,
      creation,
    );
    this.membership.beat();
  }

  serve(node: string): void {
    if (!this.left) this.link.serve(node);
  }

  async leave(): Promise<void> {
    if (this.left) return;
    this.left = true;
    this.link.flush();
    this.globals.stop();
    this.moves.stop();
    await this.claims.releaseAll().catch(() => {});
    await this.membership.stop();
    this.control.stop();
    this.link.stop();
    await this.nc.drain().catch(() => {});
  }

  on(type: string, listener: (event: never) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener as (event: ClusterEvent) => void);
    return () => set!.delete(listener as (event: ClusterEvent) => void);
  }

  /** Counters of the data path (for tests and the bench). */
  get stats(): Link['stats'] {
    return this.link.stats;
  }

  private emit(event: ClusterEvent): void {
    for (const type of [event.type, '*']) {
      for (const listener of this.listeners.get(type) ?? []) {
        try {
          listener(event);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    }
  }

  private record(): HostRecord {
    return { host: this.host, id: this.id, nodes: this.system.local().map((h) => h.summary()) };
  }

  /** Whether a pid's process may be alive: its node is here or on a live host. */
  private reachable(pid: Pid): boolean {
    const node = nodeOf(pid);
    if (node === `${HOST_PREFIX}${this.host}` || this.system.local().some((h) => h.name === node)) return true;
    if (node.startsWith(HOST_PREFIX)) return this.membership.alive(node.slice(HOST_PREFIX.length));
    return this.hostOf(node) !== undefined;
  }

  /**
   * Batches from a host this host declared gone (links and monitors fired `noconnection`), sent
   * before it knew (a partition): dropped, as Erlang drops what was in flight on a net split. Where
   * a process moved, or that it ended, is true whenever it was said, so that is still learned
   * (checked as any notice: a host that takes this one up again after a partition tells it the
   * moves of its nodes, maybe before this one takes it up).
   */
  private fromGone(items: WireItem[], sender: string, to: string | undefined): void {
    const moves = items.filter(isMoveNotice);
    if (moves.length) this.inbound.receive(moves, sender, to);
    const dropped = items.reduce((n, item) => n + (isNotice(item) ? 0 : item[3]), 0);
    this.emit({ type: 'link_error', host: sender, dropped, reason: `from host '${sender}' after it was declared gone` });
  }

  private hostUp(record: HostRecord): void {
    // Its names, removed here while it was gone, are in the bucket (after learn() makes its pids reachable).
    if (this.gone.delete(record.host)) {
      void this.globals.rescan().catch(() => {});
      // Its batches are taken again by this host's nodes that read NATS themselves.
      this.system.remoteHostUp(record.host);
    }
    this.moves.hostUp(record.host);
    this.emit({ type: 'host_up', host: record.host, nodes: record.nodes.map((n) => n.name) });
  }

  /** A host's record: its nodes (and its mailboxes) become reachable through this router. */
  private learn(record: HostRecord): void {
    const { router } = this.system;
    for (const name of [`${HOST_PREFIX}${record.host}`, ...record.nodes.map((n) => n.name)]) {
      this.inbound.learned(name);
      if (this.nodeHost.get(name) === record.host) continue;
      this.nodeHost.set(name, record.host);
      router.addNode(name, {
        deliver: (envelopes, from) => this.toRemote(name, from, (host, sender, creation) => this.link.send(host, name, sender, creation, envelopes)),
        // A node's batch its own thread serialized: forwarded as it is.
        deliverEncoded: (bytes, from, count) =>
          this.toRemote(name, from, (host, sender, creation) => this.link.sendEncoded(host, name, sender, creation, bytes, count)),
      });
    }
  }

  /** Hands a batch from `from` (a node of this host, or 'host': its mailboxes) for `node` to the link, if its host is live. */
  private toRemote(node: string, from: string, send: (host: string, sender: string, creation: number) => void): boolean {
    const host = this.hostOf(node);
    if (host === undefined || this.left) return false;
    if (from === 'host') send(host, `${HOST_PREFIX}${this.host}`, 0);
    else send(host, from, this.system.local().find((h) => h.name === from)?.supervision.creation ?? 0);
    return true;
  }

  private hostDown(record: HostRecord, reason: 'left' | 'timeout' | 'restarted'): void {
    const gone = new Set([`${HOST_PREFIX}${record.host}`]);
    for (const node of record.nodes) if (this.nodeHost.get(node.name) === record.host) gone.add(node.name);
    this.gone.add(record.host);
    this.link.forget(record.host);
    this.globals.hostGone(gone, this.link.connected);
    this.inbound.hostGone(record.host);
    // One cut off may still confirm the moves it drove here; one that left or restarted will not.
    if (reason !== 'timeout') this.moves.hostGone(record.host);
    this.system.remoteHostGone(record.host);
    for (const node of gone) {
      this.system.remoteNodeDown(node, record.host, [], EVERY_INCARNATION);
      if (!node.startsWith(HOST_PREFIX)) {
        const creation = record.nodes.find((n) => n.name === node)?.creation ?? 0;
        this.system.events.emit({ type: 'node_down', node, creation, reason: `noconnection: host '${record.host}' ${reason}` });
      }
    }
    this.emit({ type: 'host_down', host: record.host, nodes: record.nodes.map((n) => n.name), reason });
  }

  private async watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.link.connected = false;
        this.membership.disconnected();
        this.emit({ type: 'connection', status: 'disconnect', detail: status.server });
      } else if (status.type === 'reconnect') {
        this.link.connected = true;
        this.link.flush();
        this.emit({ type: 'connection', status: 'reconnect', detail: status.server });
        await this.membership.reconnected();
        await this.globals.restartWatch().catch(() => {});
      } else if (status.type === 'slowConsumer') {
        this.emit({ type: 'slow_consumer', pending: status.pending });
      } else if (status.type === 'error') {
        this.emit({ type: 'connection', status: 'error', detail: status.error.message });
      }
    }
  }
}
