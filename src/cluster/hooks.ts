/**
 * The seam between a System and its cluster link, both ways, as types only: what the cluster
 * reaches of the system (`ClusterHost`) and what the system asks of the cluster (`ClusterHooks`).
 * The system loads the cluster code only when it is given `cluster` options.
 */
import type { Pid } from '../kernel/pid.js';
import type { Events } from '../host/events.js';
import type { NodeHandle, NodeSummary } from '../host/node-handle.js';
import type { NodeContext } from '../host/node-supervision.js';
import type { Router } from '../host/router.js';
import type { MoveEnd, ProcessLocation } from '../host/migration.js';

export interface ClusterHost {
  readonly events: Events;
  readonly router: Router;
  /** What a NodeHandle is built with (a remote node's handle is one, over NATS). */
  readonly context: NodeContext;
  /** This host's nodes. */
  local(): NodeHandle[];
  /** The system's replica of the global names. */
  readonly globals: ReadonlyMap<string, Pid>;
  /** A global name changed on another host: applied here without being published again. */
  applyGlobal(name: string, pid: Pid | null): void;
  /**
   * A node of host `host` went down (incarnations up to `creation`): this host's nodes and host
   * monitors hear `noconnection`.
   */
  remoteNodeDown(node: string, host: string, lost: Pid[], creation: number): void;
  /** A host was declared gone: this host's nodes take nothing more from it (before its nodes' `remoteNodeDown`). */
  remoteHostGone(host: string): void;
  /** A host was taken up again after it was declared gone (a partition healed, or it came back as a new process). */
  remoteHostUp(host: string): void;
  /** Where a process runs, as this host knows it. */
  locate(pid: Pid): ProcessLocation;
  /**
   * Another host (`from`) told where a process runs now: this host's `locate` (and everything that
   * uses it) learns it, unless it knows a later move. True if it was news.
   */
  moved(location: ProcessLocation, from: string): boolean;
  /**
   * Another host told that a moved process ended: forgotten here unless a later move is known
   * (and a home node of this host stops forwarding to it). True if it was.
   */
  ended(end: MoveEnd): boolean;
  /** The moved processes that run on `node` now, as this host knows them. */
  movedTo(node: string): ProcessLocation[];
}

export interface RemoteNodeSummary extends NodeSummary {
  host: string;
}

export interface ClusterHooks {
  /** This host's name in the cluster. */
  readonly host: string;
  /** Claims a node name cluster-wide; resolves with the node's first creation, or rejects (NodeNameTaken). */
  claim(node: string): Promise<number>;
  /** A handle on a node of another host, or undefined if no live host has it. */
  node(name: string): NodeHandle | undefined;
  /** Nodes of the other hosts. */
  remoteNodes(): RemoteNodeSummary[];
  /** A global name changed here (`previous` is the pid it named before). */
  globalChanged(name: string, pid: Pid | null, previous: Pid | undefined): void;
  /**
   * A migrated process ended on `node` of this host (`known`: where this host knew it ran, now
   * forgotten here): the other hosts must forget it too.
   */
  ended(pid: Pid, node: string, known: ProcessLocation | undefined): void;
  /** Incarnation `creation` of a node of this host went down (its thread ended): the other hosts must hear it. */
  localNodeDown(node: string, lost: Pid[], creation: number): void;
  /** A node of this host without a NATS connection of its own (a dense node) is up: the host reads its subject for it. */
  serve(node: string): void;
  /** Leaves the cluster: the other hosts see this host's nodes go down at once. */
  leave(): Promise<void>;
}

/** What happens to the cluster, seen from this host (`system.cluster.on(type, listener)`). */
export type ClusterEvent =
  | { type: 'host_up'; host: string; nodes: string[] }
  /** A host left (`left`), stopped answering (`timeout`), or came back as a new process (`restarted`). */
  | { type: 'host_down'; host: string; nodes: string[]; reason: 'left' | 'timeout' | 'restarted' }
  /** This host's inbound batches pile up faster than it hands them to its nodes. */
  | { type: 'slow_consumer'; pending: number }
  /** Envelopes for another host dropped because too many were waiting (NATS unreachable). */
  | { type: 'link_overflow'; host: string; dropped: number }
  /** A batch that cannot go out (larger than NATS's max payload even alone, or not serializable). */
  | { type: 'link_error'; host: string; dropped: number; reason: string }
  /** Items from `host` that named a sender it does not own (`node`): dropped, never delivered. */
  | { type: 'forged'; host: string; node: string; dropped: number }
  /** A version loaded here could not be put in the code store (the load stands; other hosts cannot fetch it). */
  | { type: 'code_publish_failed'; module: string; reason: string }
  /**
   * The connection to NATS: this host's, or (`node`) the one a node of it has of its own. While it
   * is down, envelopes for other hosts wait (bounded).
   */
  | { type: 'connection'; status: 'disconnect' | 'reconnect' | 'error'; detail?: string; node?: string };

export type ClusterEventType = ClusterEvent['type'];

export interface ClusterApi extends ClusterHooks {
  /** Hosts alive now, this one included. */
  hosts(): string[];
  on<T extends ClusterEventType>(type: T, listener: (event: Extract<ClusterEvent, { type: T }>) => void): () => void;
  on(type: '*', listener: (event: ClusterEvent) => void): () => void;
}
