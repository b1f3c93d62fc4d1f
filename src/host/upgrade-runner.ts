/**
 * Running an upgrade plan over the system's nodes: the canary first and alone, then the others
 * (in a cluster, host by host with the canary's host first; remote nodes' handles run each step
 * on their host),
 * each node one transaction (src/kernel/upgrade.ts) that rolls itself back on failure. Every node
 * the plan names or `'*'` covers appears in the report — upgraded, rolled back, failed (a named node
 * that is not running fails), or skipped with the reason — so a report is never `ok` when a node
 * was left out. A dry run stops after
 * checking and compiling, and lists the steps each node would run.
 */
import { BadArgument, NodeDown, UnknownNode, toWire, type WireError } from '../errors.js';
import type { NodeUpgradeReport, UpgradeStep } from '../kernel/upgrade.js';
import { ROLLING_DEFAULTS } from '../kernel/rolling.js';
import type { Events } from './events.js';
import type { NodeHandle } from './node-handle.js';
import { checkPlan, compilePlan, stepsFor, type UpgradePlan } from './upgrade-plan.js';

/** In a cluster, `host` is the host that runs the node. */
export type NodeOutcome = (
  | ({ node: string; status: 'upgraded' | 'rolled_back' } & NodeUpgradeReport)
  | { node: string; status: 'failed'; error: WireError }
  /** Not touched: the node is not running, or an earlier node failed and the plan stopped. */
  | { node: string; status: 'skipped'; reason: string }
  /** A dry run: the steps the node would run. */
  | { node: string; status: 'planned'; steps: string[] }
) & { host?: string };

export interface UpgradeReport {
  /** Every covered node upgraded (or, in a dry run, would be): nothing failed, rolled back or was left out. */
  ok: boolean;
  dryRun?: boolean;
  nodes: NodeOutcome[];
}

export interface UpgradeOptions {
  /** Check and compile the plan and report each node's steps, changing nothing. */
  dryRun?: boolean;
}

/**
 * In a cluster: the host of each node. The plan then walks host by host — the canary's host
 * first (the canary, then that host's other nodes), then each other host's nodes — and a failure
 * on the canary's host stops the plan even with `continueOnError`: that host is the canary.
 */
export type HostOf = (node: string) => string | undefined;

/** `covered` (canary first) regrouped host by host, the canary's host first. */
function byHost(covered: NodeHandle[], hostOf: HostOf): NodeHandle[] {
  const groups = new Map<string | undefined, NodeHandle[]>();
  for (const node of covered) {
    const host = hostOf(node.name);
    if (!groups.has(host)) groups.set(host, []);
    groups.get(host)!.push(node);
  }
  return [...groups.values()].flat();
}

/** The nodes a plan covers, in the order it walks them (the canary first). */
export function planNodes(all: NodeHandle[], which: UpgradePlan['nodes'] = '*', canary?: string): NodeHandle[] {
  const byName = new Map(all.map((n) => [n.name, n]));
  let covered: NodeHandle[];
  if (which === '*') covered = all;
  else if (Array.isArray(which)) {
    covered = which.map((name) => {
      const node = byName.get(name);
      if (!node) throw new UnknownNode(`no node named '${name}' (nodes: ${[...byName.keys()].join(', ')})`, { node: name });
      return node;
    });
  } else if (which && typeof which === 'object' && Array.isArray(which.except)) {
    for (const name of which.except)
      if (!byName.has(name)) throw new UnknownNode(`no node named '${name}' (nodes: ${[...byName.keys()].join(', ')})`, { node: name });
    covered = all.filter((n) => !which.except.includes(n.name));
  } else throw new BadArgument(`plan nodes must be '*', a list of node names or { except: [...] }`);
  if (canary === undefined) return covered;
  const first = covered.find((n) => n.name === canary);
  if (!first) throw new BadArgument(`canary node '${canary}' is not among the plan's nodes`);
  return [first, ...covered.filter((n) => n !== first)];
}

export async function runUpgrade(
  plan: UpgradePlan,
  nodes: NodeHandle[],
  events: Events,
  options: UpgradeOptions = {},
  hostOf?: HostOf,
): Promise<UpgradeReport> {
  const ordered = checkPlan(plan, { nodes: nodes.map((n) => n.name) });
  let covered: NodeHandle[];
  try {
    covered = planNodes(nodes, plan.nodes, plan.canary);
  } catch (error) {
    // In a plan, a node that does not exist is a mistake in the plan (a typo), not a missing node.
    if (error instanceof UnknownNode) throw new BadArgument(`the plan's nodes: ${error.message}`, error.details);
    throw error;
  }
  if (hostOf) covered = byHost(covered, hostOf);
  const canaryHost = hostOf && plan.canary !== undefined ? hostOf(plan.canary) : undefined;
  const compiled = await compilePlan(ordered);
  const steps = stepsFor(plan, ordered, compiled);
  const outcomes: NodeOutcome[] = [];
  const at = (name: string): { host?: string } => {
    const host = hostOf?.(name);
    return host === undefined ? {} : { host };
  };
  if (options.dryRun) {
    for (const node of covered) {
      const planned = steps.map((s) => describe(s, plan));
      outcomes.push({ ...(node.status === 'running' ? { node: node.name, status: 'planned', steps: planned } : notRunning(node)), ...at(node.name) });
    }
    return { ok: outcomes.every((o) => o.status === 'planned'), dryRun: true, nodes: outcomes };
  }
  const named = Array.isArray(plan.nodes);
  let stopped: string | undefined;
  for (const node of covered) {
    const name = node.name;
    if (stopped !== undefined) {
      outcomes.push({ node: name, status: 'skipped', reason: `the plan stopped after node '${stopped}' failed`, ...at(name) });
      events.emit({ type: 'upgrade_node', node: name, phase: 'skipped' });
      continue;
    }
    let outcome: Exclude<NodeOutcome, { status: 'planned' }>;
    if (node.status !== 'running') {
      // A node the plan names must take part: not running, it fails the plan. One that '*' (or
      // an except list) covers is reported skipped with the reason.
      outcome = named ? { node: name, status: 'failed', error: new NodeDown(`node '${name}' is ${node.status}`, { node: name }).toWire() } : notRunning(node);
    } else {
      events.emit({ type: 'upgrade_node', node: name, phase: 'start' });
      try {
        const report = plan.mode === 'rolling' ? await node.rollingUpgrade(steps, plan.rolling ?? {}) : await node.applyUpgrade(steps);
        outcome = { node: name, status: report.ok ? 'upgraded' : 'rolled_back', ...report };
        if (report.ok) for (const l of report.loaded) node.released(l.module, compiled.get(l.module)!, { version: l.version, vsn: l.vsn, purged: [] });
      } catch (error) {
        outcome = { node: name, status: 'failed', error: toWire(error) };
      }
    }
    events.emit({ type: 'upgrade_node', node: name, phase: outcome.status });
    outcomes.push({ ...outcome, ...at(name) });
    const canary = name === plan.canary || (canaryHost !== undefined && hostOf!(name) === canaryHost);
    if (outcome.status !== 'upgraded' && outcome.status !== 'skipped' && (!plan.continueOnError || canary)) stopped = name;
  }
  return { ok: outcomes.every((o) => o.status === 'upgraded'), nodes: outcomes };
}

function notRunning(node: NodeHandle): Extract<NodeOutcome, { status: 'skipped' }> {
  return { node: node.name, status: 'skipped', reason: `node '${node.name}' is ${node.status}` };
}

function describe(step: UpgradeStep, plan: UpgradePlan): string {
  switch (step.op) {
    case 'suspend':
      if (plan.mode === 'rolling') {
        const { chunk, chunkMs } = { ...ROLLING_DEFAULTS, ...plan.rolling };
        return `rolling: convert the processes using ${step.modules.join(', ')} in chunks of up to ${chunk} processes or ${chunkMs} ms, serving calls between chunks (each runs its old version until converted)`;
      }
      return `suspend the processes using ${step.modules.join(', ')}`;
    case 'load':
      return `load ${step.module} (making room with purge '${step.purge}')`;
    case 'codeChange':
      return `codeChange ${step.module}${step.extra === undefined ? '' : ` with extra ${JSON.stringify(step.extra)}`}`;
    case 'resume':
      return 'resume them';
    case 'purge':
      return `purge old ${step.module} ('${step.mode}')`;
    default:
      return JSON.stringify(step);
  }
}
