/**
 * Going back to an earlier release (`system.rollback(N)`, `subnode rollback N`): for each node,
 * the modules whose current code differs from release N's get N's version loaded, and the
 * behaviour processes using them are converted by that version's `codeChange` with
 * `{ down: vsn }` (the vsn they leave), as OTP's release_handler downgrades: suspend, load,
 * codeChange, resume, soft purge — one transaction per node, rolled back on failure. Modules that
 * did not exist in release N are deleted (made old).
 */
import { toWire } from '../errors.js';
import type { UpgradeStep } from '../kernel/upgrade.js';
import type { Events } from './events.js';
import type { NodeHandle } from './node-handle.js';
import type { Releases } from './releases.js';
import type { NodeOutcome, UpgradeReport } from './upgrade-runner.js';

export async function rollbackTo(releases: Releases, release: number, nodes: NodeHandle[], events: Events): Promise<UpgradeReport> {
  const target = await releases.stateOf(release);
  const outcomes: NodeOutcome[] = [];
  for (const node of nodes) {
    const wanted = target.nodes[node.name];
    if (!wanted) continue;
    if (node.status !== 'running') {
      outcomes.push({ node: node.name, status: 'skipped', reason: `node '${node.name}' is ${node.status}` });
      continue;
    }
    const info = new Map((await node.modules()).map((m) => [m.name, m]));
    const changes: { module: string; js: string; version: number; vsnNow: unknown }[] = [];
    for (const [module, saved] of Object.entries(wanted.modules)) {
      const current = saved.versions.at(-1);
      if (!current || current.state !== 'current') continue;
      const js = await releases.sourceOf(current.hash);
      if (node.releaseState.sourceOf(module) === js) continue;
      const now = info.get(module)?.versions.find((v) => v.state === 'current');
      changes.push({ module, js, version: current.version, vsnNow: now?.vsn });
    }
    const obsolete = [...info.keys()].filter(
      (m) => wanted.modules[m]?.versions.at(-1)?.state !== 'current' && info.get(m)!.versions.some((v) => v.state === 'current'),
    );
    if (!changes.length && !obsolete.length) continue;
    events.emit({ type: 'upgrade_node', node: node.name, phase: 'start' });
    let outcome: Exclude<NodeOutcome, { status: 'planned' }>;
    try {
      const report = changes.length
        ? await node.applyUpgrade(stepsOf(changes))
        : { ok: true, loaded: [], upgraded: [], suspended: 0, killed: [], lingering: {} };
      if (report.ok) {
        for (const l of report.loaded) node.released(l.module, changes.find((c) => c.module === l.module)!.js, { version: l.version, vsn: l.vsn, purged: [] });
        for (const module of obsolete) await node.deleteModule(module);
      }
      outcome = { node: node.name, status: report.ok ? 'upgraded' : 'rolled_back', ...report };
    } catch (error) {
      outcome = { node: node.name, status: 'failed', error: toWire(error) };
    }
    events.emit({ type: 'upgrade_node', node: node.name, phase: outcome.status });
    outcomes.push(outcome);
  }
  return { ok: outcomes.every((o) => o.status === 'upgraded'), nodes: outcomes };
}

function stepsOf(changes: { module: string; js: string; vsnNow: unknown }[]): UpgradeStep[] {
  const modules = changes.map((c) => c.module);
  return [
    { op: 'suspend', modules },
    ...changes.map((c): UpgradeStep => ({ op: 'load', module: c.module, js: c.js, purge: 'soft' })),
    ...changes.map((c): UpgradeStep => ({ op: 'codeChange', module: c.module, oldVsn: { down: c.vsnNow } })),
    { op: 'resume' },
    ...changes.map((c): UpgradeStep => ({ op: 'purge', module: c.module, mode: 'soft' })),
  ];
}
