/**
 * A plan's steps on one node as a ROLLING upgrade: the new versions load at once (compiled once,
 * on the host), then the behaviour processes using them are converted in chunks — suspend,
 * codeChange, resume, one process after the other — with a macrotask between chunks, so the node
 * serves calls and runs its other processes meanwhile. A process not yet converted is pinned to
 * the version its state was made by (its messages go there, and `lingering` lists it), so no
 * message meets new code with an old state, as in a phased plan (upgrade.ts), yet no process waits
 * for all the others to convert.
 *
 * A failed codeChange rolls back as far as nothing is lost: the failing process and every process
 * of its chunk keep their states exactly, the previous versions are current again, and every
 * process not converted runs them. Processes converted in earlier chunks have run the new version
 * since (their states are in its shape): they keep it, as old code now, and the report lists them
 * (`kept`) for a later plan (a fixed version, or a downgrade) or a purge. Purge steps run after the
 * last chunk, as in a phased plan. One `upgrade_converted` event reports the conversions.
 */
import { toWire } from '../errors.js';
import type { Kernel } from './kernel.js';
import type { ModuleVersion } from './code-server.js';
import type { Pid } from './pid.js';
import type { BehaviourSnapshot } from './sys.js';
import { emitConverted, planLoad, purgeAfter, type NodeUpgradeReport, type UpgradeStep } from './upgrade.js';

export interface RollingOptions {
  /** Processes converted per chunk, at most (default 256). */
  chunk?: number;
  /** A chunk ends once it has run this long, in ms, even if it converted fewer (default 2). */
  chunkMs?: number;
}

export const ROLLING_DEFAULTS = { chunk: 256, chunkMs: 2 } as const;

type CodeChange = Extract<UpgradeStep, { op: 'codeChange' }>;

/** A codeChange that failed, with the process and the step. */
class ConversionFailed {
  constructor(
    readonly error: unknown,
    readonly step: number,
  ) {}
}

export async function rollingUpgrade(kernel: Kernel, steps: UpgradeStep[], options: RollingOptions = {}): Promise<NodeUpgradeReport> {
  const chunk = options.chunk ?? ROLLING_DEFAULTS.chunk;
  const chunkMs = options.chunkMs ?? ROLLING_DEFAULTS.chunkMs;
  const report: NodeUpgradeReport = { ok: true, loaded: [], upgraded: [], suspended: 0, lingering: {}, killed: [], chunks: 0 };
  const changes: [number, CodeChange][] = [];
  const loads: [number, Extract<UpgradeStep, { op: 'load' }>][] = [];
  steps.forEach((s, i) => {
    if (s.op === 'codeChange') changes.push([i, s]);
    else if (s.op === 'load') loads.push([i, s]);
  });
  const changing = new Set(changes.map(([, s]) => s.module));
  const modules = new Set([...loads.map(([, s]) => s.module), ...changing]);
  kernel.upgrades.notUpgrading(modules);

  // Whom to convert: processes using a changing module only on a statem's stack first (they are
  // converted in the first chunk, in the same turn as the load), then the others, pinned.
  const targets: Pid[] = [];
  const seen = new Set<Pid>();
  const pinnedHere: Pid[] = [];
  let firstChunk = 0;
  for (const pass of ['stack', 'callback'] as const) {
    for (const module of changing) {
      for (const pid of kernel.behavioursOf(module)) {
        if (seen.has(pid) || changing.has(kernel.upgrades.callbackModule(pid)!) !== (pass === 'callback')) continue;
        seen.add(pid);
        targets.push(pid);
      }
    }
    if (pass === 'stack') firstChunk = targets.length;
  }
  const step = (op: 'suspend' | 'resume') => {
    const i = steps.findIndex((s) => s.op === op);
    if (i >= 0) kernel.upgrades.emitStep(i, op);
  };
  step('suspend');
  for (let i = firstChunk; i < targets.length; i++) {
    const pid = targets[i]!;
    if (kernel.upgrades.pinnedTo(pid) !== null) continue; // still on a version an earlier rolling upgrade left it in
    kernel.upgrades.pin(pid, kernel.code.current(kernel.upgrades.callbackModule(pid)!));
    pinnedHere.push(pid);
  }
  const unpin = (pids: Pid[]) => {
    for (const pid of pids) if (kernel.statusOf(pid) !== undefined && kernel.upgrades.pinnedTo(pid)?.state === 'current') kernel.upgrades.pin(pid, null);
  };

  const undo: (() => void)[] = [];
  const added = new Map<string, ModuleVersion>();
  let index = 0;
  try {
    for (const [i, step] of loads) {
      index = i;
      kernel.upgrades.emitStep(i, 'load', step.module);
      const load = planLoad(kernel, step, report);
      undo.push(load.undo);
      added.set(step.module, load.added);
    }
  } catch (error) {
    for (const fn of undo.reverse()) fn();
    unpin(pinnedHere);
    kernel.upgrades.emitRollback(index, 'load', toWire(error).message);
    return { ...report, ok: false, rolledBack: true, loaded: [], error: { ...toWire(error), step: index, op: 'load' } };
  }
  for (const [i, step] of changes) kernel.upgrades.emitStep(i, 'codeChange', step.module);

  // The chunks. Between them, a macrotask: calls, messages and other control requests run.
  for (const module of modules) kernel.upgrades.upgrading.add(module);
  const converted: Pid[] = [];
  let chunkStart = 0; // index in `converted` where the running chunk began
  const saved: BehaviourSnapshot[] = [];
  let next = 0;
  try {
    while (next < targets.length) {
      const started = kernel.upgrades.now();
      chunkStart = converted.length;
      saved.length = 0;
      for (let n = 0; next < targets.length; n++) {
        if (next >= firstChunk && (n >= chunk || kernel.upgrades.now() - started >= chunkMs) && n > 0) break;
        const pid = targets[next++]!;
        const snapshot = convertOne(kernel, pid, changes, report);
        if (snapshot) {
          converted.push(pid);
          saved.push(snapshot);
        }
      }
      report.chunks!++;
      if (next < targets.length) await kernel.upgrades.yieldToIo();
    }
  } catch (caught) {
    const error = caught instanceof ConversionFailed ? caught : new ConversionFailed(caught, changes[0]![0]);
    // The running chunk has not run since its conversions: its processes get their states back.
    for (let i = converted.length - 1; i >= chunkStart; i--) kernel.upgrades.restore(converted[i]!, saved[i - chunkStart]!);
    const keptPids = converted.slice(0, chunkStart).filter((pid) => kernel.statusOf(pid) !== undefined);
    const kept = new Map<string, Pid[]>();
    for (const pid of keptPids) {
      const module = kernel.upgrades.callbackModule(pid)!;
      const version = added.get(module);
      if (!version) continue;
      kernel.upgrades.pin(pid, version);
      kept.set(module, [...(kept.get(module) ?? []), pid]);
    }
    for (const fn of undo.reverse()) fn();
    unpin(pinnedHere);
    for (const module of modules) kernel.upgrades.upgrading.delete(module);
    emitConverted(kernel, steps, keptPids, 'rolling', report.chunks! + 1, 'now');
    const wire = toWire(error.error);
    kernel.upgrades.emitRollback(error.step, 'codeChange', wire.message);
    return {
      ...report,
      chunks: report.chunks! + 1,
      ok: false,
      rolledBack: true,
      upgraded: [],
      loaded: [],
      kept: [...kept].map(([module, pids]) => ({ module, version: added.get(module)!.version, pids })),
      error: { ...wire, step: error.step, op: 'codeChange' },
    };
  }
  for (const module of modules) kernel.upgrades.upgrading.delete(module);
  step('resume');
  report.upgraded = converted;
  emitConverted(kernel, steps, converted, 'rolling', report.chunks!, 'after');
  const firstPurge = steps.findIndex((s) => s.op === 'purge');
  return purgeAfter(kernel, firstPurge < 0 ? [] : steps.slice(firstPurge), report, modules);
}

/**
 * Converts one process for every changing module it uses: suspended (unless someone else holds it
 * suspended: converted, left suspended), codeChange, resumed. Returns its state before, or
 * undefined when it ended before its turn. On failure its state is back as it was.
 */
function convertOne(kernel: Kernel, pid: Pid, changes: [number, CodeChange][], report: NodeUpgradeReport): BehaviourSnapshot | undefined {
  const hold = kernel.upgrades.hold(pid);
  if (hold === undefined) return undefined;
  if (hold === 'suspended') report.suspended++;
  let saved: BehaviourSnapshot | undefined;
  for (const [i, step] of changes) {
    try {
      const before = kernel.upgrades.convert(pid, step.module, step.oldVsn, step.extra, step.timeoutMs);
      saved ??= before;
    } catch (error) {
      if (saved) kernel.upgrades.restore(pid, saved);
      if (hold === 'suspended') kernel.upgrades.release(pid);
      throw new ConversionFailed(error, i);
    }
  }
  kernel.upgrades.pin(pid, null); // a pin left on a module it no longer uses goes too
  if (hold === 'suspended') kernel.upgrades.release(pid);
  return saved ?? kernel.upgrades.snapshot(pid);
}
