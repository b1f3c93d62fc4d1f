/** Plain records the kernel hands to the host: inspection results, events, options. */
import type { Pid } from './pid.js';
import type { ProcessStatus } from './process.js';
import type { VersionState } from './code-server.js';

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
  trapExit: boolean;
}

export interface ModuleInfo {
  name: string;
  versions: { version: number; state: VersionState; processes: number; loadedAt: number }[];
}

export type KernelEvent =
  | { type: 'process_exit'; node: string; pid: Pid; initial: string; reason: unknown }
  | { type: 'module_loaded'; node: string; module: string; version: number }
  | { type: 'global_register'; node: string; name: string; pid: Pid }
  | { type: 'global_unregister'; node: string; name: string; pid: Pid };
