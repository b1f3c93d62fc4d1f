/**
 * Fault injection for the fault-injection suite (test/faults.test.ts), on a node's thread: only
 * when the host gave `NodeFaults`.
 */
import type { KernelEvent } from '../kernel/types.js';
import type { NodeFaults } from '../wire/node.js';

/**
 * Testing only (see `NodeFaults`): hangs or crashes a control operation when it is served, or a
 * plan step when the plan reaches it — a step by the `upgrade_step` event it emits, the purge step
 * (which emits none) by the first `module_purged` while a plan runs.
 */
export class Faults {
  private inPlan = false;
  /** A crash injected into a plan step: rethrown once the plan's code returns, out of every catch. */
  private crashed: Error | undefined;

  constructor(private readonly faults: NodeFaults) {}

  control<R>(op: string, run: () => R): R {
    inject(this.faults.hang, this.faults.crash, op, 'control operation');
    if (op !== 'applyUpgrade') return run();
    this.inPlan = true;
    let result: R;
    try {
      result = run();
    } finally {
      this.inPlan = false;
    }
    // Thrown from here it is uncaught (the plan's own catch only rolled the step back): the thread dies.
    if (this.crashed) throw this.crashed;
    return result;
  }

  event(event: KernelEvent): void {
    const step = event.type === 'upgrade_step' ? event.op : event.type === 'module_purged' && this.inPlan ? 'purge' : undefined;
    if (step === undefined) return;
    try {
      inject(this.faults.hangStep, this.faults.crashStep, step, 'plan step');
    } catch (error) {
      this.crashed = error as Error;
      throw error;
    }
  }
}

function inject(hang: readonly string[] | undefined, crash: readonly string[] | undefined, what: string, kind: string): void {
  if (hang?.includes(what)) {
    for (;;) {
      // An injected hang: never returns to the event loop; the host's watchdog ends the thread.
    }
  }
  if (crash?.includes(what)) throw new Error(`injected crash in ${kind} '${what}'`);
}
