/**
 * An upgrade plan's steps on one node, as one transaction. The steps run synchronously in the
 * node's thread, so no process runs between them: no message meets new code with an old state.
 * If a step fails, everything before it is undone in reverse — versions current again, converted
 * states restored to the very objects they were, suspended processes resumed — and the report says
 * which step failed and why. Purge steps run after the transaction: they are reported, not undone.
 */
import { toWire, type WireError } from '../errors.js';
import type { Kernel } from './kernel.js';
import type { ModuleVersion } from './code-server.js';
import { pidRuns, type Pid } from './pid.js';
import type { PurgeMode } from './policy.js';
import type { PurgeReport } from './types.js';
import type { BehaviourSnapshot } from './sys.js';

export type UpgradeStep =
  | { op: 'suspend'; modules: string[] }
  | { op: 'load'; module: string; js: string; purge?: 'kill' | 'soft' }
  | { op: 'codeChange'; module: string; extra?: unknown; oldVsn?: unknown; timeoutMs?: number }
  | { op: 'resume' }
  | { op: 'purge'; module: string; mode: PurgeMode };

export interface NodeUpgradeReport {
  ok: boolean;
  loaded: { module: string; version: number; previous?: number }[];
  /** Processes converted by codeChange. */
  upgraded: Pid[];
  suspended: number;
  /** After the plan: processes still running old code, per module. */
  lingering: Record<string, Pid[]>;
  /** Processes killed by the plan's purges (or by loads that purged with 'kill'). */
  killed: Pid[];
  error?: WireError & { step: number; op: string };
  rolledBack?: boolean;
  /** A rolling upgrade (rolling.ts): the chunks it converted processes in. */
  chunks?: number;
  /**
   * A rolling upgrade rolled back: the processes converted (and running the new version) before the
   * failure keep it, as old code now; every other process runs the previous version, current again.
   */
  kept?: { module: string; version: number; pids: Pid[] }[];
}

export function applyUpgrade(kernel: Kernel, steps: UpgradeStep[]): NodeUpgradeReport | Promise<NodeUpgradeReport> {
  const report: NodeUpgradeReport = { ok: true, loaded: [], upgraded: [], suspended: 0, lingering: {}, killed: [] };
  const undo: (() => void)[] = [];
  const suspended: Pid[] = [];
  const suspendedSet = new Set<Pid>();
  const heldByOthers: Pid[] = [];
  const upgraded = new Set<Pid>();
  const modules = new Set<string>();
  let resumed = false;
  let index = 0;
  try {
    for (; index < steps.length; index++) {
      const step = steps[index]!;
      if (step.op === 'purge') break;
      kernel.upgrades.emitStep(index, step.op, 'module' in step ? step.module : undefined);
      switch (step.op) {
        case 'suspend': {
          for (const module of step.modules) {
            for (const pid of kernel.behavioursOf(module)) {
              if (suspendedSet.has(pid)) continue;
              suspendedSet.add(pid);
              // One an operator suspended earlier is converted too, but left suspended.
              if (kernel.upgrades.hold(pid) === 'held') heldByOthers.push(pid);
              else suspended.push(pid);
            }
          }
          report.suspended = suspended.length;
          break;
        }
        case 'load': {
          modules.add(step.module);
          undo.push(planLoad(kernel, step, report).undo);
          break;
        }
        case 'codeChange': {
          // One undo for the step: the saved states put back in reverse.
          const pids: Pid[] = [];
          const saved: BehaviourSnapshot[] = [];
          undo.push(() => {
            for (let i = pids.length - 1; i >= 0; i--) kernel.upgrades.restore(pids[i]!, saved[i]!);
          });
          for (const list of [suspended, heldByOthers]) {
            for (const pid of list) {
              const before = kernel.upgrades.convert(pid, step.module, step.oldVsn, step.extra, step.timeoutMs);
              if (!before) continue;
              pids.push(pid);
              saved.push(before);
              if (!upgraded.has(pid)) {
                upgraded.add(pid);
                report.upgraded.push(pid);
              }
            }
          }
          break;
        }
        case 'resume':
          for (const pid of suspended) kernel.upgrades.release(pid);
          resumed = true;
          break;
      }
    }
  } catch (error) {
    const step = steps[index]!;
    for (const fn of undo.reverse()) fn();
    for (const pid of suspended) kernel.upgrades.release(pid);
    kernel.upgrades.emitRollback(index, step.op, toWire(error).message);
    return { ...report, ok: false, rolledBack: true, upgraded: [], loaded: [], error: { ...toWire(error), step: index, op: step.op } };
  }
  if (!resumed) for (const pid of suspended) kernel.upgrades.release(pid);
  emitConverted(kernel, steps, report.upgraded, 'phased', 1, 'after');
  return purgeAfter(kernel, steps.slice(index), report, modules);
}

/**
 * A plan's load step, recorded in the report. Its undo makes the previous version current again
 * and puts back the old versions the load dropped; the new version goes unless processes are in
 * it (a rolling upgrade's processes that keep it), where it stays as old code.
 */
export function planLoad(kernel: Kernel, step: Extract<UpgradeStep, { op: 'load' }>, report: NodeUpgradeReport): { added: ModuleVersion; undo: () => void } {
  const before = kernel.code.module(step.module)?.versions.slice() ?? [];
  const loaded = kernel.load(step.module, step.js, { purge: step.purge ?? 'soft' });
  if (loaded instanceof Promise) throw new Error('a plan load cannot drain: use a purge step');
  report.killed.push(...loaded.killed);
  report.loaded.push({ module: step.module, version: loaded.version, previous: loaded.previous });
  const record = kernel.code.module(step.module)!;
  const added = record.current!;
  const removed = before.filter((v) => !record.versions.includes(v));
  const previous: ModuleVersion | undefined = before.find((v) => v.version === loaded.previous);
  const undo = () => {
    kernel.code.revert(added, previous);
    if (added.processes.size === 0) kernel.code.remove(added);
    for (const v of removed) kernel.code.restore(v);
    kernel.code.publish(record);
  };
  return { added, undo };
}

/** A transaction's purge steps, after its commit, in order; a drain makes the rest wait for it. */
export function purgeAfter(
  kernel: Kernel,
  rest: UpgradeStep[],
  report: NodeUpgradeReport,
  modules: Set<string>,
): NodeUpgradeReport | Promise<NodeUpgradeReport> {
  const purges = rest.filter((s): s is Extract<UpgradeStep, { op: 'purge' }> => s.op === 'purge');
  const finish = (): NodeUpgradeReport => {
    for (const module of modules) report.lingering[module] = kernel.lingering(module);
    return report;
  };
  const absorb = (r: PurgeReport): void => {
    report.killed.push(...r.killed);
  };
  let chain: Promise<void> | undefined;
  for (const purge of purges) {
    modules.add(purge.module);
    if (chain) {
      chain = chain.then(() => Promise.resolve(kernel.purge(purge.module, purge.mode)).then(absorb));
      continue;
    }
    const r = kernel.purge(purge.module, purge.mode);
    if (r instanceof Promise) chain = r.then(absorb);
    else absorb(r);
  }
  return chain ? chain.then(finish) : finish();
}

/**
 * The one event of a transaction's conversions (none when it converted nothing). After a commit it
 * leaves a macrotask later (`'after'`): writing 10^4 pids as runs costs milliseconds, and the
 * resumed processes run first instead of waiting for telemetry.
 */
export function emitConverted(kernel: Kernel, steps: UpgradeStep[], pids: Pid[], mode: 'phased' | 'rolling', chunks: number, when: 'now' | 'after'): void {
  if (!pids.length) return;
  const modules = steps.flatMap((s) => (s.op === 'codeChange' ? [s.module] : []));
  const emit = () => kernel.upgrades.emitConverted({ modules, mode, count: pids.length, pids: pidRuns(pids), chunks });
  if (when === 'now') emit();
  else void kernel.upgrades.yieldToIo().then(emit);
}
