/**
 * The one narrow protocol between the host and a node, whatever runs the node (a worker thread
 * today, an isolate too). Two paths:
 *
 * - control: request/response operations (`NodeControl`), over comlink. Every result is a
 *   `Result`, so typed errors survive the trip (comlink would keep only name and message).
 * - data: batches of signal envelopes and kernel events, raw posts with no RPC layer, because
 *   this is the message path. Nodes also hold direct ports to each other for the same batches.
 */
import type { WireError } from '../errors.js';
import type { Envelope } from '../kernel/signals.js';
import type { KernelEvent, LoadReport, MigrationOutcome, MigrationSnapshot, ModuleInfo, Pid, ProcessInfo, PurgeReport, SpawnOptions } from '../kernel/types.js';
import type { CodePolicy, PurgeMode } from '../kernel/policy.js';
import type { Capabilities, Limits } from '../kernel/capabilities.js';
import type { NodeUpgradeReport, UpgradeStep } from '../kernel/upgrade.js';

export type Result<T> = { ok: T } | { error: WireError };

type Async<T> = Result<T> | Promise<Result<T>>;

export interface NodeControl {
  load(module: string, js: string, options: { purge?: PurgeMode }): Async<LoadReport>;
  purge(module: string, mode: PurgeMode): Async<PurgeReport>;
  checkProcessCode(pid: Pid, module: string): Result<boolean>;
  lingering(module: string, version?: number): Result<Pid[]>;
  deleteModule(module: string): Result<PurgeReport>;
  setPolicy(policy: CodePolicy, module?: string): Result<true>;
  startBehaviour(kind: 'server' | 'statem', module: string, args: unknown[], options: SpawnOptions): Result<Pid>;
  behavioursOf(module: string): Result<Pid[]>;
  suspend(pid: Pid): Result<true>;
  resume(pid: Pid): Result<true>;
  changeCode(pid: Pid, module: string, oldVsn: unknown, extra: unknown, timeoutMs?: number): Result<{ from: unknown; to: unknown }>;
  getState(pid: Pid): Result<unknown>;
  replaceState(pid: Pid, state: unknown): Result<true>;
  applyUpgrade(steps: UpgradeStep[]): Async<NodeUpgradeReport>;
  migrateOut(pids: Pid[]): Result<MigrationOutcome<MigrationSnapshot>[]>;
  migrateIn(snapshots: MigrationSnapshot[], extra: unknown, timeoutMs?: number): Result<MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean }>[]>;
  migrateCommit(pids: Pid[], to: string, awaitDrain: Pid[]): Result<true>;
  migrateAbort(pids: Pid[]): Result<true>;
  restoreForwards(entries: [Pid, string][]): Result<true>;
  spawn(module: string, fn: string, args: unknown[], options: SpawnOptions): Result<Pid>;
  exit(pid: Pid, reason: unknown): Result<true>;
  processes(): ProcessInfo[];
  processInfo(pid: Pid): ProcessInfo | undefined;
  modules(): ModuleInfo[];
  whereis(name: string): Pid | undefined;
  nodeDown(node: string, lost: Pid[]): void;
  setGlobal(name: string, pid: Pid | null): void;
  /** A direct port to another node's thread; replaces any earlier port to that node. */
  connect(node: string, port: unknown): void;
  ping(): 'pong';
}

/** Node → host on the data path. */
export type NodeToHost =
  | { t: 'ready' }
  /** Envelopes for a node this node has no direct port to (or for the host's own inboxes). */
  | { t: 'route'; node: string; envelopes: Envelope[] }
  | { t: 'event'; event: KernelEvent };

/** Host → node on the data path. */
export type HostToNode = { t: 'deliver'; envelopes: Envelope[]; from: string };

/** What a node's entry point (thread or isolate) receives as `workerData`. */
export interface NodeData {
  node: string;
  creation: number;
  control: unknown; // a MessagePort for comlink
  peers: Record<string, unknown>; // node name → MessagePort
  capabilities: Capabilities;
  limits: Limits;
  /**
   * Thread nodes with a CPU limit: the node writes here when it starts running code (ms since
   * `epoch`, 0 when idle), so the host can see a step that never ends and end the thread.
   */
  heartbeat?: SharedArrayBuffer;
  epoch?: number;
}
