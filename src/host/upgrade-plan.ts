/**
 * Upgrade plans, like an appup/relup written as data: which modules change, on which nodes, how
 * processes convert their state, and what happens to old code afterwards. `stepsFor` derives the
 * ordered steps OTP's release handler would run — suspend the affected behaviour processes, load
 * in dependency order, codeChange with `extra`, resume, purge — and each node runs them as one
 * transaction that rolls itself back on failure (src/kernel/upgrade.ts).
 */
import { BadArgument, LoadError, toWire } from '../errors.js';
import { checkPurge, type PurgeMode } from '../kernel/policy.js';
import type { UpgradeStep } from '../kernel/upgrade.js';
import { readSource, type ModuleSource } from './source.js';
import { compile } from './compiler-pool.js';

export interface PlanModule {
  module: string;
  source: ModuleSource;
  /** Modules of this plan that must load before this one. */
  dependsOn?: string[];
  /**
   * `'codeChange'` (default): suspend the behaviour processes using this module, run the new
   * version's codeChange on their state, resume. `'load'`: only load (a soft upgrade, no state change).
   */
  change?: 'codeChange' | 'load';
  /** Passed to codeChange as `extra`. */
  extra?: unknown;
  /** Overrides the old vsn given to codeChange, e.g. `{ down: 3 }` for a downgrade. */
  oldVsn?: unknown;
}

export interface UpgradePlan {
  modules: PlanModule[];
  /** Which nodes: names, `{ except: names }`, or every running node (default). */
  nodes?: string[] | { except: string[] } | '*';
  /** A node upgraded first, alone; if it fails, no other node is touched. */
  canary?: string;
  /** After the change, what to do with the old versions (default 'soft': keep them while used). */
  purge?: PurgeMode | 'none';
  /** How a load makes room under the retention policy (default 'soft': never kill during a load). */
  loadPurge?: 'kill' | 'soft';
  /** Limit for each codeChange, in ms (default 5000). */
  codeChangeTimeoutMs?: number;
  /** Go on with the other nodes after one fails (default: stop). */
  continueOnError?: boolean;
}

export type { NodeOutcome, UpgradeReport } from './upgrade-runner.js';

/** Checks a plan and orders its modules by dependency (cycles and unknown fields are errors). */
export function checkPlan(plan: UpgradePlan): PlanModule[] {
  if (!plan || typeof plan !== 'object' || !Array.isArray(plan.modules) || !plan.modules.length) {
    throw new BadArgument('an upgrade plan needs modules: [{ module, source, dependsOn?, change?, extra? }]');
  }
  const byName = new Map<string, PlanModule>();
  for (const m of plan.modules) {
    if (!m || typeof m.module !== 'string') throw new BadArgument(`plan module entries need a module name, got ${JSON.stringify(m)}`);
    if (byName.has(m.module)) throw new BadArgument(`module '${m.module}' appears twice in the plan`);
    if (m.source === undefined) throw new BadArgument(`plan module '${m.module}' has no source`);
    if (m.change !== undefined && m.change !== 'codeChange' && m.change !== 'load') throw new BadArgument(`plan module '${m.module}': change must be 'codeChange' or 'load'`);
    if (m.dependsOn !== undefined && (!Array.isArray(m.dependsOn) || m.dependsOn.some((d) => typeof d !== 'string'))) throw new BadArgument(`plan module '${m.module}': dependsOn must be a list of module names`);
    byName.set(m.module, m);
  }
  if (plan.purge !== undefined && plan.purge !== 'none') checkPurge(plan.purge, 'plan purge');
  if (plan.loadPurge !== undefined && plan.loadPurge !== 'kill' && plan.loadPurge !== 'soft') throw new BadArgument(`plan loadPurge must be 'kill' or 'soft'`);
  if (plan.codeChangeTimeoutMs !== undefined && !(plan.codeChangeTimeoutMs > 0)) throw new BadArgument('plan codeChangeTimeoutMs must be > 0');
  const ordered: PlanModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: PlanModule, path: string[]): void => {
    const seen = state.get(m.module);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new BadArgument(`plan dependencies form a cycle: ${[...path, m.module].join(' → ')}`);
    state.set(m.module, 'visiting');
    for (const dep of m.dependsOn ?? []) {
      const d = byName.get(dep);
      if (d) visit(d, [...path, m.module]); // a dependency outside the plan is already loaded
    }
    state.set(m.module, 'done');
    ordered.push(m);
  };
  for (const m of plan.modules) visit(m, []);
  return ordered;
}

/** Compiles every module of the plan up front: a bad source fails the plan before any node is touched. */
export async function compilePlan(ordered: PlanModule[]): Promise<Map<string, string>> {
  const compiled = new Map<string, string>();
  for (const m of ordered) {
    const { text, filename } = readSource(m.module, m.source);
    try {
      compiled.set(m.module, (await compile(m.module, text, filename)).js);
    } catch (error) {
      if (error instanceof LoadError) throw error;
      throw new LoadError(`plan module '${m.module}': ${toWire(error).message}`, { module: m.module });
    }
  }
  return compiled;
}

/** The ordered steps of one node: suspend, load, codeChange, resume, purge. */
export function stepsFor(plan: UpgradePlan, ordered: PlanModule[], compiled: Map<string, string>): UpgradeStep[] {
  const changing = ordered.filter((m) => (m.change ?? 'codeChange') === 'codeChange').map((m) => m.module);
  const steps: UpgradeStep[] = [];
  if (changing.length) steps.push({ op: 'suspend', modules: changing });
  for (const m of ordered) steps.push({ op: 'load', module: m.module, js: compiled.get(m.module)!, purge: plan.loadPurge ?? 'soft' });
  for (const m of ordered) {
    if ((m.change ?? 'codeChange') !== 'codeChange') continue;
    steps.push({ op: 'codeChange', module: m.module, extra: m.extra, oldVsn: m.oldVsn, timeoutMs: plan.codeChangeTimeoutMs });
  }
  if (changing.length) steps.push({ op: 'resume' });
  const purge = plan.purge ?? 'soft';
  if (purge !== 'none') for (const m of ordered) steps.push({ op: 'purge', module: m.module, mode: purge });
  return steps;
}
