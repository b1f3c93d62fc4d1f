/** Plain records the kernel hands to the host: inspection results, events, options. */
import type { Pid } from './pid.js';
import type { ProcessStatus } from './proc.js';
import type { VersionState } from './code-server.js';
import type { CodePolicy } from './policy.js';

export type { Pid, ProcessStatus, VersionState };

/** Where a message goes: a pid, a name on the sender's node, a name on a given node, a global name. */
export type Dest = Pid | string | { name: string; node: string } | { global: string };

export interface SpawnOptions {
  /** Link the new process to the spawning one. */
  link?: boolean;
  /** Monitor the new process from the spawning one; spawnOpt then returns [pid, ref]. */
  monitor?: boolean;
  /** Register the new process under this name on its node. */
  name?: string;
  trapExit?: boolean;
  /** Servers: keep the state durable under a stable key (see src/kernel/durable.ts). Off by default. */
  durable?: import('./durable-spec.js').DurableOptions;
}

export interface ProcessInfo {
  pid: Pid;
  name?: string;
  status: ProcessStatus;
  mailbox: number;
  /** The function it was spawned with, as `module.fn` (or a closure's name). */
  initial: string;
  /** The module versions whose code it is executing. */
  versions: { module: string; version: number; state: VersionState }[];
  links: Pid[];
  /** What it monitors (pids, or names monitored by name), and the processes that monitor it (`erlang:process_info` monitors, monitored_by). */
  monitors: string[];
  monitoredBy: Pid[];
  trapExit: boolean;
  /** For server and statem processes: the callback module (and statem's stack) and the state's vsn. */
  behaviour?: {
    kind: 'server' | 'statem' | 'supervisor';
    module: string;
    stack: string[];
    vsn: unknown;
    /** A durable server's key and checkpoint policy. */
    durable?: { key: string; checkpoint: import('./durable-spec.js').Checkpoint };
  };
  /** For supervisors: strategy, restart intensity and the children (newest first, as whichChildren). */
  supervisor?: import('./supervisor-spec.js').SupervisorInfo;
  /** For a process that arrived by migration: how many moves so far, and the node it came from. */
  migration?: { moves: number; cameFrom: string };
}

/** What moves with a process from one node to another. */
export interface MigrationSnapshot {
  pid: Pid;
  from: string;
  moves: number;
  kind: 'server' | 'statem' | 'raw';
  /** The callback module, or for a raw process the module of its exported continuation. */
  module: string;
  /** Raw processes: the exported function it continues with. */
  fn?: string;
  stack: string[];
  /** A behaviour's state, or a raw process's continuation arguments. */
  state: unknown;
  vsn: unknown;
  /** Messages it had not handled yet, in order. */
  mailbox: unknown[];
  links: Pid[];
  monitors: [string, Pid][];
  watchers: [string, Pid][];
  trapExit: boolean;
  name?: string;
  initial: string;
}

/** Where a process homed on a node lives since it migrated away, and the name it left registered there (if any). */
export type Forward = [pid: Pid, node: string, name?: string];

export type MigrationOutcome<T> = { pid: Pid; ok: T } | { pid: Pid; error: import('../errors.js').WireError };

export interface ModuleInfo {
  name: string;
  /**
   * Oldest first; `vsn` is the version's declared `vsn` export or, when it declares none, the
   * number of the first version on this node with the same code (as OTP's default vsn, the
   * module's MD5, is the same for the same code): usually its own number.
   */
  versions: { version: number; vsn: unknown; state: VersionState; processes: number; loadedAt: number; draining: boolean }[];
  policy: CodePolicy;
  /** A package or builtin the node imports from the host (thread nodes): no versions, not upgradable. */
  native?: true;
}

export interface LoadReport {
  module: string;
  version: number;
  /** The version's vsn (its exported `vsn`, else its default: see `ModuleInfo`), when it is plain data. */
  vsn?: unknown;
  /** The version that was current before, now old. */
  previous?: number;
  /** Old versions purged to make room, and the processes that purge killed. */
  purged: number[];
  killed: Pid[];
  /** Hazards found in the source (filled in by the host, which parses it). */
  warnings?: Hazard[];
}

export interface PurgeReport {
  module: string;
  /** False when the purge was refused (soft, or a drain that ended in `refuse`). */
  ok: boolean;
  purged: number[];
  killed: Pid[];
  /** When refused: the processes still running the old code. */
  lingering: Pid[];
}

export interface Hazard {
  kind: 'no_qualified_continuation' | 'receive_without_timeout' | 'local_call_in_catch';
  function: string;
  line: number;
  message: string;
}

export type KernelEvent =
  | { type: 'process_exit'; node: string; pid: Pid; initial: string; reason: unknown }
  | { type: 'module_loaded'; node: string; module: string; version: number }
  | { type: 'module_purged'; node: string; module: string; version: number }
  | { type: 'module_deleted'; node: string; module: string; version: number }
  | { type: 'process_purged'; node: string; pid: Pid; module: string; version: number }
  | { type: 'drain_started'; node: string; module: string; versions: number[]; deadlineMs: number }
  | { type: 'code_changed'; node: string; pid: Pid; module: string; from: unknown; to: unknown }
  | { type: 'upgrade_step'; node: string; step: number; op: string; module?: string }
  | { type: 'upgrade_rollback'; node: string; step: number; op: string; reason: string }
  /**
   * One per upgrade transaction on a node, for all its conversions (not one per process): how many
   * behaviour processes were converted to the new versions of `modules`, which (`pids`: runs of
   * consecutive pids written `<a.5>..<a.9>`, see `pidRuns`), in how many chunks (a rolling upgrade;
   * 1 for a phased one).
   */
  | { type: 'upgrade_converted'; node: string; modules: string[]; mode: 'phased' | 'rolling'; count: number; pids: string[]; chunks: number }
  | { type: 'capability_denied'; node: string; pid?: Pid; what: string }
  | { type: 'mailbox_overflow'; node: string; pid: Pid; action: 'dropped' | 'killed'; dropped: number }
  /** An isolate node cut a runaway entry: `limitMs` its CPU limit per slice, `cpuMs` the CPU time the entry had used when cut. */
  | { type: 'cpu_limit'; node: string; pid?: Pid; limitMs: number; cpuMs?: number }
  | { type: 'log'; node: string; pid?: Pid; level: 'log' | 'info' | 'warn' | 'error'; text: string }
  | { type: 'process_migrated'; node: string; pid: Pid; from: string; to: string; moves: number }
  /** A process that had migrated ended (on `node`). */
  | { type: 'migrated_exit'; node: string; pid: Pid }
  /** A copy started by a move whose answer was lost left `node` without dying: the process goes on at `from`. */
  | { type: 'migration_withdrawn'; node: string; pid: Pid; from: string }
  | { type: 'global_register'; node: string; name: string; pid: Pid }
  | { type: 'global_unregister'; node: string; name: string; pid: Pid }
  /** A durable server started from its saved state (`from`: the saved vsn, `to`: the vsn now). */
  | { type: 'durable_restored'; node: string; pid: Pid; key: string; from: unknown; to: unknown }
  /** A checkpoint was not saved: over the size limit, not copyable, not confirmed in time, or the write failed (reported by the node or the host). */
  | { type: 'checkpoint_failed'; node: string; pid?: Pid; key: string; reason: string };
