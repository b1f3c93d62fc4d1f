/**
 * A process named by its pid, wherever it runs now: the node its pid names, or the node it
 * migrated to (the host's registry knows). Its verbs are the node operations on one process —
 * exit, inspect, `sys` suspend / resume / getState / replaceState — sent to the node that runs it,
 * so a process that moved (into an isolate node, say) is reached directly, not through its home.
 */
import { BadArgument, NoProcess } from '../errors.js';
import { isPid, type Pid } from '../kernel/pid.js';
import type { ProcessInfo } from '../kernel/types.js';
import type { NodeHandle } from './node-handle.js';

export class ProcessRef {
  constructor(
    readonly pid: Pid,
    /** The node that runs the process now. */
    private readonly where: (pid: Pid) => NodeHandle,
  ) {
    if (!isPid(pid)) throw new BadArgument(`not a pid: ${JSON.stringify(pid)}`, { pid });
  }

  /** The node it runs on now. */
  get node(): string {
    return this.where(this.pid).name;
  }

  /** Sends it an exit signal from outside any process (`'kill'` cannot be trapped). */
  exit(reason: unknown): Promise<void> {
    return this.onItsNode((node) => node.exit(this.pid, reason));
  }

  /** What `erlang:process_info` gives; undefined when no such process lives. */
  info(): Promise<ProcessInfo | undefined> {
    return this.onItsNode((node) => node.processInfo(this.pid));
  }

  suspend(): Promise<void> {
    return this.onItsNode((node) => node.suspend(this.pid));
  }

  resume(): Promise<void> {
    return this.onItsNode((node) => node.resume(this.pid));
  }

  getState<S = unknown>(): Promise<S> {
    return this.onItsNode((node) => node.getState<S>(this.pid));
  }

  replaceState(state: unknown): Promise<void> {
    return this.onItsNode((node) => node.replaceState(this.pid, state));
  }

  /** Runs `op` on the node that runs the process; once more if it moved meanwhile. */
  private async onItsNode<T>(op: (node: NodeHandle) => Promise<T>): Promise<T> {
    const first = this.where(this.pid);
    try {
      return await op(first);
    } catch (error) {
      const now = this.where(this.pid);
      if (error instanceof NoProcess && now !== first) return op(now);
      throw error;
    }
  }
}
