/** What a node is made of, as the host is given it: its spec (`System.start({ nodes })`, `addNode`), its summary, and how its start processes start. */
import type { ResourceLimits } from 'node:worker_threads';
import { BadArgument } from '../errors.js';
import { sliceWallMs, type Capabilities, type Limits } from '../kernel/capabilities.js';
import type { CodePolicy } from '../kernel/policy.js';
import type { DurableOptions } from '../kernel/durable-spec.js';
import type { NodeFaults } from '../wire/node.js';
import type { NodeKind } from './node-backend.js';
import type { NodeStatus, NodeSetup } from './node-supervision.js';
import type { RestartPolicy } from './restart.js';
import type { ModuleSource } from './source.js';

export type StartSpec = SpawnStart | ServerStart | SupervisorStart;

export interface SpawnStart {
  module: string;
  fn: string;
  args?: unknown[];
  /** Registered name on the node. */
  name?: string;
}

/** A server (gen_server-like): its callback module's `init(...args)` runs; `durable` keeps its state across restarts. */
export interface ServerStart {
  server: string;
  args?: unknown[];
  name?: string;
  durable?: DurableOptions;
}

/** A supervision tree: the supervisor's init starts its children (recreated when the node restarts). */
export interface SupervisorStart {
  supervisor: string;
  args?: unknown[];
  name?: string;
}

export interface NodeSpec extends RestartPolicy {
  name: string;
  /**
   * `thread` (default): the kernel in a worker thread — fast, trusted code only.
   * `isolate`: the kernel in an isolated-vm isolate inside a worker — a sandbox for untrusted code.
   */
  kind?: NodeKind;
  /**
   * Isolate nodes: serve this node from a dense thread, one of a small pool (one a core) each
   * serving many isolate nodes, instead of a worker thread of its own. Still its own isolate,
   * kernel, modules, capabilities and limits; it starts in milliseconds and costs a few MiB. What
   * changes: a runaway step delays the other nodes of its thread by up to its CPU limit per slice,
   * and a crash of the shared thread ends all its nodes (each restarted per its policy). Default false.
   */
  dense?: boolean;
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
  /** A node whose code runs this long without returning is ended and restarted per policy (default 10 s; an isolate node: at least `sliceWallMs` + 2 s, so it cuts a runaway slice itself first). */
  unresponsiveMs?: number;
  /**
   * Thread nodes: the packages and Node builtins its module code may import (`['semver', 'node:crypto']`),
   * resolved by the host from `importsFrom` (a file URL such as `import.meta.url`, or a directory;
   * default the current directory). Not upgradable; listed in `modules()` as native.
   */
  imports?: string[];
  importsFrom?: string | URL;
  /**
   * @internal Testing only (test/faults.test.ts): control operations and plan steps that hang or
   * crash on purpose in the node's first incarnation. Not for production use.
   */
  faults?: NodeFaults;
}

export interface NodeSummary {
  name: string;
  kind: NodeKind;
  status: NodeStatus;
  creation: number;
}

/** `dense` is for isolate nodes only, a boolean; a dense node shares its thread, so it takes no thread limits. */
/** A spec's kind, checked ('thread' when it names none), and its dense flag with it. */
export function checkKind(spec: NodeSpec): NodeKind {
  if (spec.kind !== undefined && spec.kind !== 'thread' && spec.kind !== 'isolate')
    throw new BadArgument(`node '${spec.name}': kind must be 'thread' or 'isolate', got ${JSON.stringify(spec.kind)}`);
  checkDense(spec);
  return spec.kind ?? 'thread';
}

/** How long the node may not answer before it counts as unresponsive, checked. */
export function unresponsiveMsOf(spec: NodeSpec, kind: NodeKind, limits: Limits): number {
  // By default an isolate node cuts a runaway entry itself (at sliceWallMs) before it counts as unresponsive.
  const ms = spec.unresponsiveMs ?? (kind === 'isolate' ? Math.max(10_000, sliceWallMs(limits) + 2_000) : 10_000);
  if (!(ms > 0)) throw new BadArgument(`node '${spec.name}': unresponsiveMs must be a number of ms > 0, got ${JSON.stringify(spec.unresponsiveMs)}`);
  return ms;
}

function checkDense(spec: NodeSpec): void {
  if (spec.dense === undefined) return;
  if (typeof spec.dense !== 'boolean') throw new BadArgument(`node '${spec.name}': dense must be true or false, got ${JSON.stringify(spec.dense)}`);
  if (spec.dense && spec.kind !== 'isolate')
    throw new BadArgument(`node '${spec.name}': dense is for isolate nodes (kind: 'isolate'), not ${JSON.stringify(spec.kind ?? 'thread')}`);
  if (spec.dense && spec.resourceLimits !== undefined)
    throw new BadArgument(`node '${spec.name}': a dense isolate node shares its thread, so it takes no resourceLimits (its heap limit is limits.memoryMb)`);
}

/** Starts a spec's `start` processes in a fresh incarnation, in order. */
export async function startProcesses(start: StartSpec[] | undefined, call: Parameters<NodeSetup['start']>[0]): Promise<void> {
  for (const s of start ?? []) {
    // A named process that moved away before a crash still runs where it went, under that name: not started twice.
    if (s.name !== undefined && (await call('whereis', s.name)) !== undefined) continue;
    const named = s.name === undefined ? {} : { name: s.name };
    if ('supervisor' in s) await call('startSupervisor', s.supervisor, s.args ?? [], named);
    else if ('server' in s) await call('startBehaviour', 'server', s.server, s.args ?? [], s.durable ? { ...named, durable: s.durable } : named);
    else await call('spawn', s.module, s.fn, s.args ?? [], { name: s.name });
  }
}
