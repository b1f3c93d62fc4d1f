/**
 * The wire between the host (main thread) and a node's thread: one closed set of messages each
 * way, on the worker's own port. Whatever runs the node (a thread engine, an isolate engine), it
 * speaks exactly this.
 *
 * - control: `{ t: 'control', id, op, args }` answered by `{ t: 'reply', id, result, events? }`, where `op`
 *   and `args` come from the one op table (src/kernel/control-ops.ts) and every result is a
 *   `Result`, so typed errors survive the trip.
 * - data: batches of signal envelopes and kernel events, raw posts, because this is the message
 *   path. A batch between a node and the host's own mailboxes (`system.call`, sends from the host,
 *   replies to it) is the bare array of envelopes: a wrapper object's keys cost as much to clone as
 *   a call's envelope. Nodes also open direct ports to each other for the same batches, lazily: a node's first
 *   batch for a peer comes through the host with a port attached, which the host hands to the peer
 *   (`connect`) after the batch, or gives back (`refused`). The receiver acknowledges on that port
 *   what it took in (`PeerReply`): the sender's window, so a flood cannot pile up in the port.
 * - dense threads: one worker serving many isolate nodes speaks the same messages, each wrapped
 *   with the node it is for or from (`HostToDense`, `DenseToHost`).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import type { ControlArgs, ControlOp, ControlReply, KernelConfig, Result } from '../kernel/control-ops.js';
import type { UpgradeStep } from '../kernel/upgrade.js';
import type { ClusterEvent } from '../cluster/hooks.js';
import type { ClusterOptions } from '../cluster/options.js';

export type { ControlArgs, ControlOp, ControlReply, Result } from '../kernel/control-ops.js';

/** The host's view of a node's control operations: the op table, every answer a promised value. */
export type NodeControl = { [K in ControlOp]: (...args: ControlArgs<K>) => Promise<ControlReply<K>> };

/** Host → node. */
export type HostToNode =
  /** Envelopes from the host itself (its sends, calls and monitors). */
  | Envelope[]
  /** Envelopes from node `from`, routed by the host. */
  | { t: 'deliver'; envelopes: Envelope[]; from: string }
  /** A batch still serialized, as it came from another host of a cluster: the node decodes it, not the host. */
  | { t: 'deliverEncoded'; bytes: Uint8Array; from: string }
  | { [K in ControlOp]: { t: 'control'; id: number; op: K; args: ControlArgs<K> } }[ControlOp]
  /** A port the node `node` sends on to this node (transferred): its batches after the one it was offered with. */
  | { t: 'connect'; node: string; port: MessagePort }
  /** The port this node offered for `node` (offer `offer`) was handed over, after the batch it came with: later batches take it. */
  | { t: 'accepted'; node: string; offer: number }
  /**
   * The port this node offered for `node` was not taken (the host, a remote node, a node that is
   * down): route through the host a while; `encoded`: as `routeEncoded` (the host forwards the
   * bytes as they are, to another host of a cluster or to a node's thread).
   */
  | { t: 'refused'; node: string; encoded: boolean; offer: number }
  /** `node` went down: drop the port to it (its next incarnation gets a new one). */
  | { t: 'disconnect'; node: string }
  /**
   * The port this node offered for `node` was not taken: `node` runs on host `host` of the cluster,
   * and this node (which has a NATS connection of its own) sends it its batches there itself,
   * until `down`. Everything the host forwarded for it before reached NATS first. Answers name the
   * offer they answer (`offer`): one for an offer made since is ignored.
   */
  | { t: 'remote'; node: string; host: string; offer: number }
  /**
   * A node (or `host@H` mailboxes) of host `host` went down, incarnations up to `creation`: the
   * way to it is dropped; with a connection of its own, this node takes in what those sent that is
   * on its way (what waited for its owner included), drops what comes later, and serves the host's
   * next messages only then.
   */
  | { t: 'down'; node: string; host: string; creation: number }
  /**
   * Host `host` was declared gone: nothing it sends is taken until `hostUp`, and what waits to be
   * sent to it is dropped (reported). Sent before the `down` of each of its nodes.
   */
  | { t: 'hostGone'; host: string }
  /** Host `host` was taken up again (after a partition, or as a new process): its batches are taken again. */
  | { t: 'hostUp'; host: string }
  /** The answer to `whois`: the host owning `node` (null: none). */
  | { t: 'owner'; node: string; host: string | null }
  /** The thread is about to be ended: what this node sent on its own connection must reach NATS first (`drained`). */
  | { t: 'drain' };

/** Node → host. */
export type NodeToHost =
  /** Envelopes for the host's own mailboxes (node `host`). */
  | Envelope[]
  /** A dense thread has begun booting this node (nodes added at once wait their turn). */
  | { t: 'booting' }
  /** `direct`: it opened a NATS connection of its own (on a host of a cluster; if NATS could not be reached, it runs without). */
  | { t: 'ready'; direct?: boolean }
  /**
   * `events`: what the node emitted while serving the request (a load's `module_loaded`, the
   * `module_purged` of versions it dropped), in order, sent with the answer instead of one post
   * each; the host reports them before it settles the request, as if they had come first.
   */
  | { t: 'reply'; id: number; result: Result<unknown>; events?: KernelEvent[] }
  /**
   * Envelopes for a node this node has no direct port to (or for the host's own inboxes); `port`,
   * when given, is this node's offer of a port for its later batches to `node`.
   */
  | { t: 'route'; node: string; envelopes: Envelope[]; port?: MessagePort; offer?: number }
  /**
   * The same, `count` envelopes serialized by this node's runtime (its trusted half, after the
   * boundary's checks), the buffer transferred: the host forwards the bytes without decoding them.
   */
  | { t: 'routeEncoded'; node: string; bytes: Uint8Array; count: number }
  | { t: 'event'; event: KernelEvent }
  /** Which host owns node `node`? (a sender seen first on this node's own NATS connection) */
  | { t: 'whois'; node: string }
  | { t: 'drained' }
  /** What this node's own NATS connection reports (a forged or late batch, the connection's state). */
  | { t: 'cluster'; event: ClusterEvent };

/**
 * On a direct port between nodes, receiver → sender: `TAKES_ENCODED` once when the port is
 * connected, if the receiver takes batches encoded as one string (an isolate); then acks, each the
 * weight of the batches taken in since the last (flow control, src/node/peers.ts).
 */
export type PeerReply = typeof TAKES_ENCODED | number;
export const TAKES_ENCODED = 'encoded';

/** What a node's entry point (thread or isolate) receives as `workerData`. */
export interface NodeData extends KernelConfig {
  /**
   * Thread nodes with a CPU limit: the node writes here when it starts running code (ms since
   * `epoch`, 0 when idle), so the host can see a step that never ends and end the thread.
   */
  heartbeat?: SharedArrayBuffer;
  epoch?: number;
  /** Thread nodes: packages and builtins its module code may import, `[specifier, url]`, resolved by the host. */
  imports?: [string, string][];
  /** Testing only: faults to inject (see `NodeFaults`). */
  faults?: NodeFaults;
  /** Its host's cluster options: the node opens a NATS connection of its own (src/node/nats-endpoint.ts). */
  nats?: ClusterOptions;
}

/**
 * Testing only (the fault-injection suite, test/faults.test.ts): control operations and upgrade
 * plan steps that misbehave on purpose when the node serves them. `hang` busy-loops forever on the
 * node's thread (inside the busy mark, so the host's watchdog sees it); `crash` throws an uncaught
 * error on the node's thread (the thread dies). `hangStep` and `crashStep` do the same when a plan
 * reaches that step (thread nodes; a crashed step's error is rethrown, uncaught, once the plan's
 * code returns, so the thread dies before it answers). Checked only while serving a control
 * request or when a plan step is reported, and only when given.
 */
export interface NodeFaults {
  hang?: ControlOp[];
  crash?: ControlOp[];
  hangStep?: UpgradeStep['op'][];
  crashStep?: UpgradeStep['op'][];
}

/** Host → a dense thread (src/node/dense.ts): start a node there, a message for one of its nodes, end one, end all. */
export type HostToDense =
  | { t: 'add'; data: NodeData }
  | { t: 'to'; node: string; message: HostToNode }
  | { t: 'end'; node: string }
  /** The thread is done: it ends its nodes and lets its event loop run out (isolated-vm's own cleanup finishes first). */
  | { t: 'close' };

/**
 * A dense thread → host: a message from one of its nodes; a node that ended (`ended`: as asked;
 * `exit`: on its own, its isolate over the memory limit, with why).
 */
export type DenseToHost = { t: 'from'; node: string; message: NodeToHost } | { t: 'ended'; node: string } | { t: 'exit'; node: string; error: string };
