/**
 * A node's direct ports to its peers (on the node's thread), both ends: the sending end of each
 * port it opened, and the receiving end of each port a peer opened to it.
 *
 * Ports are opened lazily, one per direction: the first batch for a node goes through the host
 * with a fresh port attached, which the host hands to that node after the batch (`accepted`) or
 * gives back (`refused`: the host itself, a remote node, a node that is down; or `remote`: a node
 * of another host, which this node reaches on its own NATS connection, until it goes down).
 * Batches for that node wait here until the answer, then take the port, the host or NATS. So
 * order holds per pair, and starting a node costs nothing per other node.
 *
 * Flow control, as the BEAM's busy distribution port: each port has a *window* of weight (about
 * one unit per envelope, more for a large string or binary message: `weightOf`) that the receiver
 * has not yet taken in. The receiver acknowledges what it took in, once per `ACK_AT` of weight, on
 * the same port. A port at its window is *full*: the runtime tells the kernel, which holds the
 * processes sending to that peer until *credit* — acks bringing the window under its size, the
 * peer going down (its port closed or the host's `disconnect`), or its offer refused (batches then
 * go through the host, which this does not window). A receiver's port so holds at most a window,
 * the batch that found it full (up to the outbox's 4,096 envelopes), and one step's sends per
 * sending process (an isolate's trusted half caps that too: FLOW_CAP, src/node/boundary.ts).
 *
 * Vocabulary: *weight* — what a batch counts in a window; *in flight* — weight posted and not yet
 * acknowledged; *stalled* — a peer the kernel was told is full, owed credit.
 */
import { MessageChannel, type MessagePort, type Transferable } from 'node:worker_threads';
import { Sig, type Envelope } from '../kernel/signals.js';
import { TAKES_ENCODED, type HostToNode, type NodeToHost, type PeerReply } from '../wire/node.js';
import { encodeBatch } from '../sandbox/encode.js';

/** How long a refused port offer stands before this node offers that destination a port again. */
const REFUSED_MS = 1_000;
/**
 * A port's window: the weight of batches the receiver has not yet taken in before the sender's
 * processes are held. Small enough that a node's inbound port drains in a few ms (so its host's
 * control requests wait little behind it), large enough for a stream to flow between acks.
 */
export const WINDOW = 32_768;
/** The receiver acknowledges once it has taken in this much weight (well under the window, so a full window always brings an ack). */
const ACK_AT = 4096;
/** Weight of a batch beyond its envelopes: a stream of one-envelope batches is windowed too. */
const BATCH_WEIGHT = 16;

/**
 * A batch's weight in a window: a share for the batch, and its envelopes — an encoded batch a unit
 * per 16 characters (a small envelope encoded is 16-45), an array a unit per envelope and a unit
 * per 16 characters or bytes of a message that is a string or binary data, read without walking
 * anything (a length): a batch of one 8 MiB string weighs as much as the 8 MiB encoded would. A
 * large value nested in an object still counts as one envelope (measuring it would walk every
 * message twice more, here and at the receiver, which computes the same weight to ack it):
 * `maxMessageBytes` bounds those.
 */
export function weightOf(batch: Envelope[] | string): number {
  if (typeof batch === 'string') return BATCH_WEIGHT + (batch.length >>> 4);
  let weight = BATCH_WEIGHT + batch.length;
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i]!;
    if (e[0] !== Sig.Message) continue;
    const m = e[2];
    if (typeof m === 'string') weight += m.length >>> 4;
    else if (typeof m === 'object' && m !== null && (ArrayBuffer.isView(m) || m instanceof ArrayBuffer)) weight += m.byteLength >>> 4;
  }
  return weight;
}

/** This node's sending end to one peer. */
interface Peer {
  port?: MessagePort;
  /** The peer asked for batches encoded as one string (it is an isolate). */
  encoded: boolean;
  /** Until when the host's refusal stands (no port: batches go through the host). */
  refusedUntil: number;
  /** Meanwhile they go serialized, the host forwarding the bytes as they are (to another host). */
  serialized?: boolean;
  /** The host of the cluster the peer runs on: batches go there on this node's own NATS connection. */
  remote?: string;
  /** Batches sent while the host has not yet answered the port's offer: they leave once it has. */
  waiting?: Envelope[][];
  /** The offer that made this entry: an answer naming another (an earlier one) is not for it. */
  offer?: number;
  /** Weight posted on the port (or waiting for the answer) that the receiver has not yet acknowledged. */
  inFlight: number;
  /** The kernel was told this peer is full: it is owed credit. */
  stalled: boolean;
}

/** What the ports need of their node's runtime. */
export interface PeerIo {
  /** Posts to the host (a route offering a port transfers it). */
  post(message: NodeToHost, transfer?: readonly Transferable[]): void;
  /** A batch a peer sent on its port, into this node. */
  inbound(batch: Envelope[] | string, from: string): void;
  /** Whether peers should send this node's batches encoded. */
  takesEncoded(): boolean;
  /** Credit for `node`: the kernel's processes held for it run again. */
  credit(node: string): void;
  /** A batch for `node` of host `host`, on this node's own NATS connection. */
  remote(host: string, node: string, batch: Envelope[]): void;
}

export class PeerPorts {
  private readonly peers = new Map<string, Peer>();
  /** Ports peers send on to this node. */
  private readonly incoming = new Set<MessagePort>();
  private closed = false;
  /** Offers made so far (each answer names the one it answers). */
  private offers = 0;

  constructor(private readonly io: PeerIo) {}

  /**
   * How a batch for the peer `node` leaves now: over its port (encoded if the peer asked), into the
   * batches waiting for the host's answer, or through the host offering a port. Undefined while an
   * offer stands refused: through the host, serialized if `serialized(node)`.
   */
  sender(node: string): ((batch: Envelope[]) => void) | undefined {
    const peer = this.peers.get(node);
    const waiting = peer?.waiting;
    if (waiting)
      return (batch) => {
        waiting.push(batch);
        peer!.inFlight += weightOf(batch);
      };
    const remote = peer?.remote;
    if (remote !== undefined) return (batch) => this.io.remote(remote, node, batch);
    const port = peer?.port;
    if (port)
      return (batch) => {
        const sent = peer.encoded ? encodedOr(batch) : batch;
        port.postMessage(sent);
        peer.inFlight += weightOf(sent);
      };
    if (peer && peer.refusedUntil > Date.now()) return undefined;
    return (batch) => {
      // Only once the route has been posted does the port exist for this peer: a batch that could
      // not be cloned offers no port, and the next one will.
      const current = this.peers.get(node);
      if (current?.waiting) {
        current.waiting.push(batch);
        current.inFlight += weightOf(batch);
        return;
      }
      const { port1, port2 } = new MessageChannel();
      const offer = ++this.offers;
      this.io.post({ t: 'route', node, envelopes: batch, port: port2, offer }, [port2]);
      // The batch the port was offered with goes through the host, outside the window.
      const opened: Peer = { port: port1, encoded: false, refusedUntil: 0, waiting: [], offer, inFlight: 0, stalled: false };
      this.peers.set(node, opened);
      // The receiver answers on the port: once if it takes batches encoded, then with acks.
      // Anything else (not a positive, finite weight) is ignored: it would make the window NaN.
      port1.on('message', (reply: PeerReply) => {
        if (reply === TAKES_ENCODED) opened.encoded = true;
        else if (typeof reply === 'number' && reply > 0 && Number.isFinite(reply)) this.acked(node, opened, reply);
      });
      // The receiver's thread ended: nothing more will be acknowledged; its senders are not held for
      // it. Only while this port is still the peer's: a port the host's answer replaced was released
      // then, and a new port to the same node may be full now.
      port1.on('close', () => {
        opened.inFlight = 0;
        if (opened.stalled && this.peers.get(node) === opened) this.release(node, opened);
      });
      port1.unref();
    };
  }

  /** While an offer to `node` stands refused: whether its batches go serialized (to another host). */
  serialized(node: string): boolean {
    return this.peers.get(node)?.serialized === true;
  }

  /** After a batch for `node`: whether its port is now full (the kernel is then owed credit for it). */
  full(node: string): boolean {
    const peer = this.peers.get(node);
    if (peer === undefined || peer.inFlight < WINDOW) return false;
    peer.stalled = true;
    return true;
  }

  /** Weight posted to `node` (or waiting for its port) not yet acknowledged: what its inbound port may hold from this node. */
  inFlight(node: string): number {
    return this.peers.get(node)?.inFlight ?? 0;
  }

  /**
   * The host's answer about `node`: the port was handed over, refused (that stands a while), or
   * `node` went down (it may get a port again at once). What waited for the answer leaves now, in
   * order, through `resend`, the way the answer says.
   */
  answer(message: Extract<HostToNode, { t: 'accepted' | 'refused' | 'disconnect' | 'remote' }>, resend: (node: string, batch: Envelope[]) => void): void {
    const { node } = message;
    const peer = this.peers.get(node);
    // An answer to an offer made before the one that stands (it went down meanwhile, and was offered again).
    if (message.t !== 'disconnect' && peer?.offer !== message.offer) return;
    const waiting = peer?.waiting ?? [];
    if (peer) peer.waiting = undefined;
    const stalled = peer?.stalled === true;
    // A peer replaced or deleted owes no credit of its own any more (its port's close must not give
    // a second one): what it was owed is given below, once.
    if (peer && message.t !== 'accepted') peer.stalled = false;
    if (message.t !== 'accepted') peer?.port?.close();
    if (message.t === 'refused')
      this.peers.set(node, { encoded: false, refusedUntil: Date.now() + REFUSED_MS, serialized: message.encoded, inFlight: 0, stalled: false });
    else if (message.t === 'remote') this.peers.set(node, { encoded: false, refusedUntil: 0, remote: message.host, inFlight: 0, stalled: false });
    else if (message.t === 'disconnect') this.peers.delete(node);
    // The waiting batches now count where they go: on the port (accepted), or nowhere (the host's
    // path is not windowed; a peer that is down has no window).
    if (peer && message.t === 'accepted') for (const batch of waiting) peer.inFlight -= weightOf(batch);
    for (const batch of waiting) resend(node, batch);
    const now = this.peers.get(node);
    if (stalled && (now === undefined || now.inFlight < WINDOW)) this.release(node, now);
  }

  /** A port `node` sends on to this node (its batches come after the one it was offered with). */
  connect(node: string, port: MessagePort): void {
    if (this.closed) return void port.close();
    this.incoming.add(port);
    // Acks leave on the next turn of the event loop, not as each batch is taken in: Node reads a
    // port's messages in one go, up to 1000, those that arrive meanwhile included, so a sender
    // acked at once refilled the window while this node was still reading and the host's control
    // request waited behind them (p99 ~0.1-0.2 s). Deferred, a turn reads at most a window per peer.
    let taken = 0;
    let acking = false;
    const ack = (): void => {
      acking = false;
      port.postMessage(taken satisfies PeerReply);
      taken = 0;
    };
    port.on('message', (batch: Envelope[] | string) => {
      try {
        this.io.inbound(batch, node);
      } finally {
        taken += weightOf(batch);
        if (taken >= ACK_AT && !acking) {
          acking = true;
          setImmediate(ack);
        }
      }
    });
    port.on('close', () => this.incoming.delete(port));
    if (this.io.takesEncoded()) port.postMessage(TAKES_ENCODED satisfies PeerReply);
    // Peer ports must not keep the thread alive: the host ends a node by terminating it.
    port.unref();
  }

  /** Ends this node's side of every port (a dense node that ends while its thread goes on). */
  close(): void {
    this.closed = true;
    for (const peer of this.peers.values()) peer.port?.close();
    for (const port of this.incoming) port.close();
    this.peers.clear();
    this.incoming.clear();
  }

  /** The receiver took `weight` in: when the window has room again, held senders to it may run. */
  private acked(node: string, peer: Peer, weight: number): void {
    peer.inFlight -= weight;
    if (peer.stalled && peer.inFlight < WINDOW && this.peers.get(node) === peer) this.release(node, peer);
  }

  private release(node: string, peer: Peer | undefined): void {
    if (peer !== undefined) peer.stalled = false;
    if (!this.closed) this.io.credit(node);
  }
}

/** A batch encoded for a peer that takes it so, or the envelopes as they are if they cannot be. */
function encodedOr(batch: Envelope[]): string | Envelope[] {
  try {
    return encodeBatch(batch);
  } catch {
    return batch;
  }
}
