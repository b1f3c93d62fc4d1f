/** What a node is made of, as the host is given it: its spec (`System.start({ nodes })`, `addNode`) and its summary. */
import type { ResourceLimits } from 'node:worker_threads';
import type { Capabilities, Limits } from '../kernel/capabilities.js';
import type { CodePolicy } from '../kernel/policy.js';
import type { DurableOptions } from '../kernel/durable-spec.js';
import type { NodeFaults } from '../wire/node.js';
import type { NodeKind } from './node-backend.js';
import type { NodeStatus } from './node-supervision.js';
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
  /** A node whose code runs this long without returning is ended and restarted per policy (default 10 s). */
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
