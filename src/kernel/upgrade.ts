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
import type { Pid } from './pid.js';
import type { PurgeMode } from './policy.js';
import type { LoadReport, PurgeReport } from './types.js';

export type UpgradeStep =
  | { op: 'suspend'; modules: string[] }
  | { op: 'load'; module: string; js: string; purge?: 'kill' | 'soft'; vsn?: unknown }
  | { op: 'codeChange'; module: string; extra?: unknown; oldVsn?: unknown; timeoutMs?: number }
  | { op: 'resume' }
  | { op: 'purge'; module: string; mode: PurgeMode };

export interface NodeUpgradeReport {
  ok: boolean;
  loaded: Pick<LoadReport, 'module' | 'version' | 'vsn' | 'previous'>[];
  /** Processes converted by codeChange. */
  upgraded: Pid[];
  suspended: number;
  /** After the plan: processes still running old code, per module. */
  lingering: Record<string, Pid[]>;
  /** Processes killed by the plan's purges (or by loads that purged with 'kill'). */
  killed: Pid[];
  error?: WireError & { step: number; op: string };
  rolledBack?: boolean;
}

export function applyUpgrade(kernel: Kernel, steps: UpgradeStep[]): NodeUpgradeReport | Promise<NodeUpgradeReport> {
  const report: NodeUpgradeReport = { ok: true, loaded: [], upgraded: [], suspended: 0, lingering: {}, killed: [] };
  const undo: (() => void)[] = [];
  const suspended: Pid[] = [];
  const suspendedSet = new Set<Pid>();
  const heldByOthers: Pid[] = [];
  const upgraded = new Set<Pid>();
  const modules = new Set<string>();
  let index = 0;
  try {
    for (; index < steps.length; index++) {
      const step = steps[index]!;
      if (step.op === 'purge') break;
      kernel.emitUpgradeStep(index, step.op, 'module' in step ? step.module : undefined);
      switch (step.op) {
        case 'suspend': {
          for (const module of step.modules) {
            for (const pid of kernel.behavioursOf(module)) {
              if (suspendedSet.has(pid)) continue;
              suspendedSet.add(pid);
              // One an operator suspended earlier is converted too, but left suspended.
              if (kernel.statusOf(pid) === 'suspended') {
                heldByOthers.push(pid);
                continue;
              }
              kernel.suspend(pid);
              suspended.push(pid);
            }
          }
          report.suspended = suspended.length;
          break;
        }
        case 'load': {
          modules.add(step.module);
          const before = kernel.code.module(step.module)?.versions.slice() ?? [];
          const loaded = kernel.load(step.module, step.js, { purge: step.purge ?? 'soft', vsn: step.vsn });
          if (loaded instanceof Promise) throw new Error('a plan load cannot drain: use a purge step');
          report.killed.push(...loaded.killed);
          report.loaded.push({ module: step.module, version: loaded.version, vsn: loaded.vsn, previous: loaded.previous });
          const record = kernel.code.module(step.module)!;
          const added = record.current!;
          const removed = before.filter((v) => !record.versions.includes(v));
          const previous: ModuleVersion | undefined = before.find((v) => v.version === loaded.previous);
          undo.push(() => {
            kernel.code.revert(added, previous);
            kernel.code.remove(added);
            for (const v of removed) kernel.code.restore(v);
            kernel.code.publish(record);
          });
          break;
        }
        case 'codeChange': {
          for (const pid of [...suspended, ...heldByOthers]) {
            if (!kernel.usesModule(pid, step.module)) continue;
            const saved = kernel.behaviourSnapshot(pid)!;
            kernel.changeCode(pid, step.module, step.oldVsn, step.extra, step.timeoutMs);
            undo.push(() => kernel.restoreState(pid, saved.state, saved.vsn));
            if (!upgraded.has(pid)) {
              upgraded.add(pid);
              report.upgraded.push(pid);
            }
          }
          break;
        }
        case 'resume':
          for (const pid of suspended) if (kernel.statusOf(pid)) kernel.resume(pid);
          break;
      }
    }
  } catch (error) {
    const step = steps[index]!;
    for (const fn of undo.reverse()) fn();
    for (const pid of suspended) if (kernel.statusOf(pid)) kernel.resume(pid);
    kernel.emitRollback(index, step.op, toWire(error).message);
    return { ...report, ok: false, rolledBack: true, upgraded: [], loaded: [], error: { ...toWire(error), step: index, op: step.op } };
  }
  for (const pid of suspended) if (kernel.statusOf(pid) === 'suspended') kernel.resume(pid);

  // Purges: after the commit, in order; a drain makes the rest wait for it.
  const purges = steps.slice(index).filter((s): s is Extract<UpgradeStep, { op: 'purge' }> => s.op === 'purge');
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
