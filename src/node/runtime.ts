/**
 * The half of a node's thread that every kind of node shares: the wire to the host
 * (src/wire/node.ts), direct ports to peer nodes, the outbound path with its one-by-one fallback,
 * and serving control requests. An engine (src/node/thread.ts, src/node/isolate-engine.ts)
 * supplies only what differs: where the kernel runs and how a request or a batch gets to it.
 *
 * Vocabulary: the *host* is the main thread; a *peer* is another node, reached by a direct
 * `MessagePort`; *outbound* is a batch of envelopes leaving this node for one destination; the
 * *link* is this node's end of the wire (a worker's own port, or its share of a dense thread's).
 *
 * Peer ports (src/node/peers.ts) are opened lazily, one per direction, and windowed: a peer whose
 * port is full has the kernel hold the processes sending to it until credit returns (flow control,
 * as the BEAM's busy distribution port).
 */
import { parentPort, workerData, type Transferable } from 'node:worker_threads';
import type { Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import type { ControlOp, Result } from '../kernel/control-ops.js';
import type { HostToNode, NodeData, NodeToHost } from '../wire/node.js';
import { Faults } from './faults.js';
import type { NatsEndpoint } from './nats-endpoint.js';
import { EVERY_INCARNATION } from '../net/frames.js';
import { decodeEnvelopes, encodeEnvelopes } from '../net/envelopes.js';
import { readBatch } from './decode.js';
import { PeerPorts } from './peers.js';
import { DeliveryLimit } from './size-limit.js';

/** What an engine gives the runtime. */
export interface Engine {
  /** Runs one control operation of the op table. */
  control(op: string, args: unknown[]): Result<unknown> | Promise<Result<unknown>>;
  /** A batch of envelopes for this node's kernel, from `from` (a node name, or 'host'). */
  deliver(envelopes: Envelope[], from: string): void;
  /**
   * A batch encoded as one string (src/sandbox/encode.ts), for an engine that takes it as it is:
   * an isolate decodes it inside, so what a peer sends is copied once. Peers are asked to send so.
   */
  deliverEncoded?(batch: string, from: string): void;
  /** Flow control: the channel to `node` has room again (or `node` is gone): its held senders may run. */
  credit?(node: string): void;
}

/** This node's end of the wire to the host: a worker's own port, or its share of a dense thread's. */
export interface HostLink {
  readonly data: NodeData;
  post(message: NodeToHost, transfer?: readonly Transferable[]): void;
  listen(receive: (message: HostToNode) => void): void;
  /** The node cannot go on (its isolate is gone): this incarnation ends; the host restarts it per policy. */
  end(error: Error): void;
  /** A dense thread's other nodes: a way in without a port, or undefined. */
  sibling?(node: string): Inbound | undefined;
}

/** A way into a node: a batch as envelopes or as one encoded string. */
export type Inbound = (batch: Envelope[] | string, from: string) => void;

/** The link of a node that has a worker thread of its own. */
export function workerLink(): HostLink {
  const host = parentPort!;
  return {
    data: workerData as NodeData,
    post: (message, transfer) => host.postMessage(message, transfer as Transferable[] | undefined),
    listen: (receive) => host.on('message', receive),
    end: (error) => {
      setImmediate(() => {
        throw error;
      });
    },
  };
}

type Down = Extract<HostToNode, { t: 'down' }>;
const isDown = (message: HostToNode): message is Down => !Array.isArray(message) && message.t === 'down';

/** Control operations whose events go with their reply (see `deferred`). */
const EVENTS_WITH_REPLY: ReadonlySet<ControlOp> = new Set<ControlOp>(['load', 'loadAtomic']);

export class NodeRuntime {
  readonly data: NodeData;
  readonly node: string;
  private readonly ports = new PeerPorts({
    post: (message, transfer) => this.post(message, transfer),
    inbound: (batch, from) => this.inboundBatch!(batch, from),
    takesEncoded: () => this.takesEncoded,
    credit: (node) => this.engine?.credit?.(node),
    remote: (host, node, batch) => this.endpoint!.send(host, node, encodeEnvelopes(batch), batch.length),
  });
  /** This node's own NATS connection, when its host is in a cluster (src/node/nats-endpoint.ts). */
  private endpoint: NatsEndpoint | undefined;
  /** While a `down` fence stands: the host's messages that came after it, served once it is done. */
  private gated: HostToNode[] | undefined;
  private engine: Engine | undefined;
  private inboundBatch: Inbound | undefined;
  /** The heartbeat cell the host watches: when the code running now started (0 when idle). */
  private readonly beat: Int32Array | undefined;
  /** Testing only: the faults to inject, when the host gave some. */
  private readonly faults: Faults | undefined;
  private closed = false;
  /**
   * Events emitted while a load is being served: they leave with its reply, in one post (a load
   * emits `module_loaded`, often `module_purged`), or before anything else this node posts first.
   */
  private deferred: KernelEvent[] | undefined;

  constructor(readonly link: HostLink = workerLink()) {
    this.data = link.data;
    this.node = this.data.node;
    this.beat = this.data.heartbeat ? new Int32Array(this.data.heartbeat) : undefined;
    this.faults = this.data.faults ? new Faults(this.data.faults) : undefined;
  }

  /**
   * Wraps an entry point of the node's code (a control request, a delivery, a slice, a timer) so
   * the host can see code that never returns: the outermost entry marks the heartbeat cell.
   */
  busy<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => R {
    const beat = this.beat;
    if (!beat) return run;
    const epoch = this.data.epoch!;
    return (...args: A): R => {
      const outer = Atomics.load(beat, 0);
      if (!outer) Atomics.store(beat, 0, Math.max(1, Date.now() - epoch));
      try {
        return run(...args);
      } finally {
        if (!outer) Atomics.store(beat, 0, 0);
      }
    };
  }

  /** Reports an event to the host (the engine decides what may be reported); while a load is served, with its reply. */
  emit(event: KernelEvent): void {
    if (this.deferred) this.deferred.push(event);
    else this.post({ t: 'event', event });
    this.faults?.event(event);
  }

  log(level: 'log' | 'info' | 'warn' | 'error', text: string): void {
    this.emit({ type: 'log', node: this.node, level, text });
  }

  /**
   * Sends a batch to `node`: to a node of this same dense thread directly, else over this node's
   * port to it (opened with the first batch), else through the host. A batch that cannot be cloned
   * (something slipped past the send-time checks) is sent one envelope at a time, and only what
   * cannot be cloned is dropped, with a log line. True when the port to `node` is now full: the
   * kernel holds the processes sending to it until `Engine.credit`.
   */
  outbound(node: string, envelopes: Envelope[]): boolean {
    if (this.closed) return false;
    const sibling = node === 'host' ? undefined : this.link.sibling?.(node);
    if (sibling) {
      sibling(envelopes, this.node);
      return false;
    }
    const send = this.sender(node);
    try {
      send(envelopes);
    } catch {
      for (const envelope of envelopes) {
        try {
          send([envelope]);
        } catch (error) {
          this.log('error', `a signal for node '${node}' could not be cloned and was dropped: ${(error as Error).message}`);
        }
      }
    }
    return node !== 'host' && this.ports.full(node);
  }

  /**
   * Weight sent to `node` over its port (or waiting for it) not yet acknowledged: what its inbound
   * port may hold from this node. Read by an isolate node's boundary (its FLOW_CAP) and by tests.
   */
  inFlight(node: string): number {
    return this.ports.inFlight(node);
  }

  /** How a batch for `node` leaves now: over a port (`PeerPorts`), or through the host while a port offer stands refused. */
  private sender(node: string): (batch: Envelope[]) => void {
    if (node === 'host') return (batch) => this.post(batch);
    const viaPort = this.ports.sender(node);
    if (viaPort) return viaPort;
    if (this.ports.serialized(node)) return (batch) => this.postSerialized(node, batch);
    return (batch) => this.post({ t: 'route', node, envelopes: batch });
  }

  /** Starts serving the host's messages; tells the host it is ready. */
  serve(engine: Engine): void {
    const deliver = this.busy(engine.deliver);
    const deliverEncoded = engine.deliverEncoded && this.busy(engine.deliverEncoded);
    const faults = this.faults;
    const control: Engine['control'] = faults ? (op, args) => faults.control(op, () => engine.control(op, args)) : engine.control;
    const max = this.data.limits?.maxMessageBytes;
    const limit =
      max === undefined
        ? undefined
        : new DeliveryLimit(
            this.node,
            max,
            (event) => this.emit(event),
            (text) => this.log('warn', text),
          );
    // The host's own sends (system.send) are trusted; what other nodes send is checked.
    const checked: Engine['deliver'] = limit ? (envelopes, from) => deliver(from === 'host' ? envelopes : limit.check(envelopes, from), from) : deliver;
    this.engine = { control: this.busy(control), deliver: checked, deliverEncoded, credit: engine.credit && this.busy(engine.credit) };
    // An encoded batch goes in as it came, unless it must be measured here first (maxMessageBytes).
    this.inboundBatch = (batch, from) => {
      if (this.closed) return;
      if (typeof batch !== 'string') return checked(batch, from);
      if (deliverEncoded && !limit) return deliverEncoded(batch, from);
      checked(readBatch(batch) as Envelope[], from);
    };
    const start = (): void => {
      this.link.listen((message) => this.fromHost(message));
      this.post(this.data.nats ? { t: 'ready', direct: this.endpoint !== undefined } : { t: 'ready' });
    };
    if (!this.data.nats) return start();
    // In a cluster: its own connection first (the node is announced once it is ready). Without
    // one (NATS unreachable now) it runs all the same, its host carrying its batches.
    import('./nats-endpoint.js')
      .then(({ NatsEndpoint }) =>
        NatsEndpoint.open(this.data.nats!, this.node, this.data.creation, {
          deliver: (bytes, from) => this.deliverSerialized(bytes, from),
          whois: (node) => this.post({ t: 'whois', node }),
          event: (event) => this.post({ t: 'cluster', event }),
        }),
      )
      .then(
        (endpoint) => {
          this.endpoint = endpoint;
          start();
        },
        (error: Error) => {
          this.log('warn', `no NATS connection of its own (${error.message}): its host carries its batches to other hosts`);
          start();
        },
      );
  }

  /** The way into this node for a node of the same dense thread. */
  get inbound(): Inbound {
    return (batch, from) => this.inboundBatch?.(batch, from);
  }

  /** Whether peers should send this node's batches encoded (its engine takes them as they are). */
  get takesEncoded(): boolean {
    return this.engine?.deliverEncoded !== undefined && this.data.limits?.maxMessageBytes === undefined;
  }

  /** Ends this node's side of every port (a dense node that ends while its thread goes on). */
  close(): void {
    this.closed = true;
    this.ports.close();
  }

  /** A message from the host: served now, or after the fence that stands (answers about owners and a drain never wait). */
  private fromHost(message: HostToNode): void {
    if (!Array.isArray(message) && message.t === 'owner') return this.endpoint?.owner(message.node, message.host);
    // Whose batches are taken: at once and in the order told, whatever waits for a fence.
    if (!Array.isArray(message) && message.t === 'hostGone') return this.endpoint?.hostGone(message.host);
    if (!Array.isArray(message) && message.t === 'hostUp') return this.endpoint?.hostUp(message.host);
    if (!Array.isArray(message) && message.t === 'drain') {
      void (this.endpoint?.drain() ?? Promise.resolve()).then(() => this.post({ t: 'drained' }));
      return;
    }
    if (this.gated) this.gated.push(message);
    else this.onHost(message);
  }

  /**
   * Nodes of other hosts went down: their ports or routes are dropped; with a connection of its
   * own, this node first takes in their batches on their way (a fence each, run together: one wait
   * for all), serving the host's next messages only then.
   */
  private down(downs: Down[]): void {
    const endpoint = this.endpoint;
    const disconnect = (node: string): void => this.ports.answer({ t: 'disconnect', node }, (to, batch) => this.outbound(to, batch));
    // Its host declared gone (fenced by `hostGone` already): nothing to wait for.
    if (!endpoint || downs.every((d) => d.creation >= EVERY_INCARNATION)) {
      for (const { node, host, creation } of downs) {
        void endpoint?.down(node, host, creation);
        disconnect(node);
      }
      return;
    }
    this.gated = [];
    void Promise.all(downs.map(({ node, host, creation }) => endpoint.down(node, host, creation))).then(() => {
      // Only now may a batch for them take the host's way: what this node sent them directly reached NATS first.
      for (const { node } of downs) disconnect(node);
      const queued = this.gated!;
      this.gated = undefined;
      this.serveQueued(queued);
    });
  }

  /** The host's messages held by a fence, in order, until one of them fences again (the rest then wait behind it); adjacent downs fence together. */
  private serveQueued(queued: HostToNode[]): void {
    while (queued.length && !this.gated) {
      const next = queued.shift()!;
      if (!isDown(next)) {
        this.onHost(next);
        continue;
      }
      const downs = [next];
      while (queued.length && isDown(queued[0]!)) downs.push(queued.shift() as Down);
      this.down(downs);
    }
    if (this.gated) (this.gated as HostToNode[]).unshift(...queued);
  }

  /** A batch still serialized (from another host), decoded here, on this node's thread. */
  private deliverSerialized(bytes: Uint8Array, from: string): void {
    let envelopes: Envelope[];
    try {
      envelopes = decodeEnvelopes(bytes) as Envelope[];
      if (!Array.isArray(envelopes)) throw new TypeError('not an array of envelopes');
    } catch (error) {
      return this.log('error', `a batch from '${from}' could not be decoded and was dropped: ${(error as Error).message}`);
    }
    this.engine!.deliver(envelopes, from);
  }

  private onHost(message: HostToNode): void {
    const engine = this.engine!;
    if (Array.isArray(message)) return engine.deliver(message, 'host');
    switch (message.t) {
      case 'deliver':
        return engine.deliver(message.envelopes, message.from);
      case 'deliverEncoded':
        return this.deliverSerialized(message.bytes, message.from);
      case 'connect':
        return this.ports.connect(message.node, message.port);
      case 'accepted':
      case 'refused':
      case 'disconnect':
      case 'remote':
        return this.ports.answer(message, (node, batch) => this.outbound(node, batch));
      case 'down':
        return this.down([message]);
      case 'owner':
      case 'drain':
      case 'hostGone':
      case 'hostUp':
        return; // served in fromHost
      case 'control': {
        const { id, op } = message;
        const deferred = EVENTS_WITH_REPLY.has(op as ControlOp) ? (this.deferred = []) : undefined;
        let result: Result<unknown> | Promise<Result<unknown>> | undefined;
        try {
          result = engine.control(op, message.args);
        } finally {
          this.deferred = undefined;
          // Only an answer given at once takes them along.
          if (result === undefined || result instanceof Promise) this.postEvents(deferred);
        }
        if (result instanceof Promise) void result.then((r) => this.reply(id, r));
        else this.reply(id, result, deferred);
      }
    }
  }

  /** The answer, with the events serving it emitted (`events`: the host emits them first, in order). */
  private reply(id: number, result: Result<unknown>, events?: KernelEvent[]): void {
    try {
      this.post(events?.length ? { t: 'reply', id, result, events } : { t: 'reply', id, result });
    } catch (error) {
      this.postEvents(events);
      // An answer that cannot be cloned (a query returning something odd) still answers.
      this.post({
        t: 'reply',
        id,
        result: { error: { code: 'not_cloneable', message: `the answer could not be copied to the host: ${(error as Error).message}` } },
      });
    }
  }

  /** Every post to the host: events deferred for a reply leave first if something else goes before the reply. */
  private post(message: NodeToHost, transfer?: readonly Transferable[]): void {
    if (this.deferred?.length) this.postEvents(this.deferred.splice(0));
    this.link.post(message, transfer);
  }

  private postEvents(events: KernelEvent[] | undefined): void {
    for (const event of events ?? []) this.link.post({ t: 'event', event });
  }

  /**
   * A batch for a node of another host, serialized here, in the trusted half (an isolate's
   * envelopes have passed the boundary's checks), its buffer handed over: the host only forwards
   * the bytes. Throws, as a clone would, if the batch holds what cannot be serialized.
   */
  private postSerialized(node: string, batch: Envelope[]): void {
    const bytes = encodeEnvelopes(batch);
    this.post({ t: 'routeEncoded', node, bytes, count: batch.length }, [bytes.buffer]);
  }
}
