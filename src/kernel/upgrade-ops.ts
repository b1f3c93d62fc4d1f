/**
 * What upgrade transactions (upgrade.ts, rolling.ts) do to a node's behaviour processes, and what
 * they tell the host, as one object: the kernel holds it as `kernel.upgrades`. Every verb looks a
 * process up once, so a transaction over 10^4 processes pays one lookup per process and step.
 */
import { Refused } from '../errors.js';
import type { ModuleVersion } from './code-server.js';
import type { KernelPlatform } from './kernel.js';
import type { Pid } from './pid.js';
import type { BehaviourSnapshot, SysOps } from './sys.js';
import type { KernelEvent } from './types.js';

export class UpgradeOps {
  /** Modules a rolling upgrade is converting processes to: no other load, plan or delete of them meanwhile. */
  readonly upgrading = new Set<string>();

  constructor(
    private readonly node: string,
    private readonly host: KernelPlatform,
    private readonly sys: SysOps,
  ) {}

  /** A load, plan or delete of a module a rolling upgrade is converting processes to is refused. */
  notUpgrading(modules: Iterable<string>): void {
    for (const module of modules) {
      if (this.upgrading.has(module)) throw new Refused(`a rolling upgrade of '${module}' is under way on node '${this.node}': wait for it to end`, { module });
    }
  }

  /** Suspends a process for an upgrade: 'held' if it was suspended already (it stays so), undefined if gone. */
  hold(pid: Pid): 'suspended' | 'held' | undefined {
    return this.sys.hold(pid);
  }
  /** Resumes a process the upgrade suspended, if it is still there. */
  release(pid: Pid): void {
    this.sys.release(pid);
  }
  /**
   * changeCode on a suspended process, if it uses `module` (the transaction reports its
   * conversions in one event): returns what a rollback puts back, or undefined.
   */
  convert(pid: Pid, module: string, oldVsn?: unknown, extra?: unknown, timeoutMs = 5_000): BehaviourSnapshot | undefined {
    return this.sys.convert(pid, module, oldVsn, extra, timeoutMs);
  }
  /** Puts back a behaviour's saved state, vsn and pin (a rollback). */
  restore(pid: Pid, saved: BehaviourSnapshot): void {
    this.sys.restoreState(pid, saved);
  }
  snapshot(pid: Pid): BehaviourSnapshot | undefined {
    return this.sys.snapshot(pid);
  }

  /** Pins a behaviour process to a version of its callback module (null: unpins it). */
  pin(pid: Pid, version: ModuleVersion | null): void {
    this.sys.pin(pid, version);
  }
  pinnedTo(pid: Pid): ModuleVersion | null {
    return this.sys.pinnedTo(pid);
  }
  callbackModule(pid: Pid): string | undefined {
    return this.sys.callbackModule(pid);
  }

  /** Lets I/O and other work run (a macrotask) before the caller goes on. */
  yieldToIo(): Promise<void> {
    return new Promise((resolve) => this.host.schedule(resolve));
  }
  now(): number {
    return this.host.now();
  }

  emitStep(step: number, op: string, module?: string): void {
    this.host.emit({ type: 'upgrade_step', node: this.node, step, op, module });
  }
  emitRollback(step: number, op: string, reason: string): void {
    this.host.emit({ type: 'upgrade_rollback', node: this.node, step, op, reason });
  }
  /** One event for all the conversions of a transaction. */
  emitConverted(event: Omit<Extract<KernelEvent, { type: 'upgrade_converted' }>, 'type' | 'node'>): void {
    this.host.emit({ type: 'upgrade_converted', node: this.node, ...event });
  }
}
