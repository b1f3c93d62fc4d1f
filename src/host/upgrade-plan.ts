/**
 * Upgrade plans, like an appup/relup written as data: which modules change, on which nodes, how
 * processes convert their state, and what happens to old code afterwards. `stepsFor` derives the
 * ordered steps OTP's release handler would run — suspend the affected behaviour processes, load
 * in dependency order, codeChange with `extra`, resume, purge — and each node runs them as one
 * transaction that rolls itself back on failure (src/kernel/upgrade.ts).
 */
import { BadArgument, LoadError, toWire } from '../errors.js';
import type { PurgeMode } from '../kernel/policy.js';
import type { UpgradeStep } from '../kernel/upgrade.js';
import type { RollingOptions } from '../kernel/rolling.js';
import { readSource, type ClusterSource, type ModuleSource } from './source.js';
import { compile } from './compiler-pool.js';
import { planReferenceProblems, upgradePlanApiSchema } from './schema/plan.js';
import { nearest, validate } from './schema/problems.js';

export interface PlanModule {
  module: string;
  /**
   * `{ path }` (relative to `base`, e.g. `import.meta.url`, else to the current directory), a file
   * URL, or `{ code }`. Not a plain string: a plan refuses it (it used to be taken as source text).
   */
  source: Exclude<ModuleSource, string | ClusterSource>;
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
  /** The JSON Schema of a plan file, for editors: `./node_modules/subnode/schema/plan.schema.json`. */
  $schema?: string;
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
  /**
   * `'phased'` (default): on each node, suspend every process using the plan's modules, load,
   * convert them all, resume, as one step (no process runs meanwhile). `'rolling'`: load once, then
   * convert the processes in chunks with the node serving calls between them; a process not yet
   * converted keeps running the version its state belongs to (src/kernel/rolling.ts).
   */
  mode?: 'phased' | 'rolling';
  /** With `mode: 'rolling'`: processes per chunk (default 256) and the time a chunk may run (default 2 ms). */
  rolling?: RollingOptions;
}

export type { NodeOutcome, UpgradeReport } from './upgrade-runner.js';

/**
 * Checks a plan against its schema (schema/plan.ts: unknown fields, a plain-string source, a dependsOn
 * outside the plan...) and, given the system's node names, that the nodes it names exist; then
 * orders its modules by dependency (a cycle is an error). Every problem is named in one BadArgument.
 */
export function checkPlan(plan: UpgradePlan, known?: { nodes?: readonly string[] }): PlanModule[] {
  const problems = validate(upgradePlanApiSchema, plan, planReferenceProblems);
  if (!problems.length && known?.nodes) problems.push(...unknownNodes(plan, known.nodes));
  if (problems.length) {
    throw new BadArgument(`bad upgrade plan:\n  ${problems.join('\n  ')}`, { problems });
  }
  const byName = new Map<string, PlanModule>(plan.modules.map((m) => [m.module, m]));
  const ordered: PlanModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: PlanModule, path: string[]): void => {
    const seen = state.get(m.module);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new BadArgument(`plan dependencies form a cycle: ${[...path, m.module].join(' → ')}`);
    state.set(m.module, 'visiting');
    for (const dep of m.dependsOn ?? []) {
      const d = byName.get(dep);
      visit(d!, [...path, m.module]); // the schema saw to it that it is in the plan
    }
    state.set(m.module, 'done');
    ordered.push(m);
  };
  for (const m of plan.modules) visit(m, []);
  return ordered;
}

/** The node names a plan gives that the system does not have. */
function unknownNodes(plan: UpgradePlan, nodes: readonly string[]): string[] {
  const problems: string[] = [];
  const check = (name: string, at: string) => {
    if (nodes.includes(name)) return;
    const near = nearest(name, nodes);
    problems.push(`${at}: no node named '${name}'${near ? ` (did you mean '${near}'?)` : ` (nodes: ${nodes.join(', ') || 'none'})`}`);
  };
  if (Array.isArray(plan.nodes)) plan.nodes.forEach((n, i) => check(n, `nodes[${i}]`));
  else if (plan.nodes && typeof plan.nodes === 'object') plan.nodes.except.forEach((n, i) => check(n, `nodes.except[${i}]`));
  if (plan.canary !== undefined) check(plan.canary, 'canary');
  return problems;
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
