/** Client commands on code: load, purge, soft-purge, lingering, upgrade. */
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import type { UpgradeReport } from '../host/upgrade-plan.js';
import type { PurgeReport } from '../kernel/types.js';
import { ProgressLine, readPlan, type Command, type Context } from './command.js';
import { CliError, UsageError } from './errors.js';
import { table } from './format.js';

export const CODE_COMMANDS: Command[] = [
  {
    name: 'load',
    args: [
      { name: 'NODE', kind: 'node' },
      { name: 'MODULE', kind: 'module' },
      { name: 'FILE', kind: 'file' },
    ],
    flags: [{ name: 'purge', value: 'kill|soft', help: "how to make room if the node keeps no more old versions (default: the node's code policy)" }],
    summary: 'load a new version of a module on one node from a file (it becomes current)',
    async run(ctx, p) {
      const path = resolve(ctx.cwd, p.args.FILE!);
      try {
        accessSync(path, constants.R_OK);
      } catch (error) {
        throw new CliError(`cannot read ${p.args.FILE} (${(error as NodeJS.ErrnoException).code})`);
      }
      const purge = p.flags.purge;
      if (purge !== undefined && purge !== 'kill' && purge !== 'soft') throw new UsageError(`--purge takes kill or soft, not ${String(purge)}`, 'load');
      const report = await (await ctx.client()).request('load', { node: p.args.NODE!, module: p.args.MODULE!, path, purge });
      if (ctx.json) return ctx.out(JSON.stringify(report, null, 2)); // warnings are in the report
      ctx.out(`loaded ${report.module} v${report.version} on ${p.args.NODE}${report.previous !== undefined ? ` (v${report.previous} is now old)` : ''}`);
      if (report.purged.length)
        ctx.out(`purged ${report.purged.map((v) => `v${v}`).join(', ')} to make room${report.killed.length ? `; killed ${report.killed.join(' ')}` : ''}`);
      for (const w of report.warnings ?? []) ctx.err(`warning: ${p.args.FILE}:${w.line} ${w.function}: ${w.message}`);
    },
  },
  {
    name: 'purge',
    args: [
      { name: 'NODE', kind: 'node' },
      { name: 'MODULE', kind: 'module' },
    ],
    flags: [{ name: 'to', value: 'NODE', help: 'first move the processes still running old code to this node (one that keeps that version), then purge' }],
    summary: 'remove the old versions of a module, killing processes still running them (or --to NODE: moving them)',
    async run(ctx, p) {
      const to = p.flags.to === undefined ? undefined : String(p.flags.to);
      const report = await (await ctx.client()).request('purge', { node: p.args.NODE!, module: p.args.MODULE!, to });
      if (ctx.json) ctx.out(JSON.stringify(report, null, 2));
      else {
        for (const m of report.moved ?? []) ctx.out(m.ok ? `moved ${m.pid} to ${m.to}` : `could not move ${m.pid}: ${m.error?.message ?? 'refused'}`);
        ctx.out(purgeText(report, p.args.NODE!));
      }
      return report.ok ? 0 : refusedPurge(ctx, report, p.args.NODE!);
    },
  },
  {
    name: 'soft-purge',
    args: [
      { name: 'NODE', kind: 'node' },
      { name: 'MODULE', kind: 'module' },
    ],
    summary: 'remove the old versions of a module only if no process runs them (exit 1 if refused)',
    async run(ctx, p) {
      const report = await (await ctx.client()).request('soft-purge', { node: p.args.NODE!, module: p.args.MODULE! });
      if (ctx.json) ctx.out(JSON.stringify(report, null, 2));
      else if (report.ok) ctx.out(purgeText(report, p.args.NODE!));
      return report.ok ? 0 : refusedPurge(ctx, report, p.args.NODE!);
    },
  },
  {
    name: 'lingering',
    args: [
      { name: 'NODE', kind: 'node' },
      { name: 'MODULE', kind: 'module' },
    ],
    summary: 'the processes still running old code of a module',
    async run(ctx, p) {
      const pids = await (await ctx.client()).request('lingering', { node: p.args.NODE!, module: p.args.MODULE! });
      if (ctx.json) return ctx.out(JSON.stringify(pids));
      ctx.out(pids.length ? pids.join('\n') : `(no process runs old code of ${p.args.MODULE} on ${p.args.NODE})`);
    },
  },
  {
    name: 'upgrade',
    args: [{ name: 'PLAN', kind: 'file' }],
    flags: [{ name: 'dry-run', help: 'check and compile the plan, and print the steps each node would run; change nothing' }],
    summary: 'apply an upgrade plan (JSON) node by node, each node as a transaction',
    help: `PLAN is a JSON file:
  { "modules": [{ "module": "counter", "source": { "path": "./counter.v2.ts" }, "extra": {...},
                  "dependsOn"?: [...], "change"?: "codeChange"|"load", "oldVsn"?: ... }],
    "nodes"?: "*" | ["a", "b"] | { "except": ["legacy"] }, "canary"?: "a",
    "purge"?: "soft"|"kill"|"none", "loadPurge"?: "soft"|"kill", "codeChangeTimeoutMs"?: N, "continueOnError"?: false,
    "mode"?: "phased"|"rolling", "rolling"?: { "chunk"?: N, "chunkMs"?: N } }
Source paths are relative to the plan file. Progress goes to stderr; exit 1 unless every node the plan covers
upgraded (a node that is not running is reported skipped, never left out).`,
    async run(ctx, p) {
      const plan = readPlan(resolve(ctx.cwd, p.args.PLAN!));
      const progress = new ProgressLine(ctx.progress, 'upgrade', ctx.json);
      let report: UpgradeReport;
      try {
        report = await (
          await ctx.client()
        ).request('upgrade', { plan, dryRun: p.flags['dry-run'] === true }, { onMessage: (m) => progress.update(m.progress) });
      } finally {
        progress.end();
      }
      ctx.out(ctx.json ? JSON.stringify(report, null, 2) : upgradeTable(report));
      if (report.ok) return 0;
      for (const n of report.nodes) {
        if (n.status === 'failed') ctx.problem(`upgrade failed on ${n.node}: ${n.error.message}`, n.error.code);
        else if (n.status === 'rolled_back')
          ctx.problem(`upgrade rolled back on ${n.node}${n.error ? ` at step ${n.error.step} (${n.error.op}): ${n.error.message}` : ''}`, 'rolled_back');
      }
      for (const n of report.nodes) if (n.status === 'skipped') ctx.problem(`not attempted on ${n.node}: ${n.reason}`, 'skipped');
      return 1;
    },
  },
];

function purgeText(report: PurgeReport, node: string): string {
  if (!report.ok) return `purge of ${report.module} on ${node} refused`;
  if (!report.purged.length) return `nothing to purge: ${report.module} has no old version on ${node}`;
  return `purged ${report.module} ${report.purged.map((v) => `v${v}`).join(', ')} on ${node}${report.killed.length ? `; killed ${report.killed.join(' ')}` : ''}`;
}

function refusedPurge(ctx: Context, report: PurgeReport, node: string): number {
  const n = report.lingering.length;
  ctx.problem(
    `soft-purge refused: ${n} process${n === 1 ? '' : 'es'} still run${n === 1 ? 's' : ''} old code of ${report.module} on ${node}: ${report.lingering.join(' ')}\n` +
      `  Let them move to the current version, or kill them with \`subnode purge ${node} ${report.module}\`.`,
    'refused',
  );
  return 1;
}

function upgradeTable(report: UpgradeReport): string {
  if (!report.nodes.length) return '(no nodes selected)';
  if (report.dryRun) {
    return report.nodes
      .map((n) =>
        n.status === 'planned'
          ? `${n.node}:\n${n.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n')}`
          : `${n.node}: skipped (${n.status === 'skipped' ? n.reason : n.status})`,
      )
      .join('\n');
  }
  return table(
    ['NODE', 'STATUS', 'LOADED', 'CONVERTED', 'LINGERING', 'KILLED'],
    report.nodes.map((n) => {
      if (n.status === 'failed' || n.status === 'skipped' || n.status === 'planned') return [n.node, n.status, '-', '-', '-', '-'];
      const lingering = Object.values(n.lingering).reduce((sum, pids) => sum + pids.length, 0);
      return [
        n.node,
        n.status.replace('_', ' '),
        n.loaded.map((l) => `${l.module} v${l.version}`).join(', ') || '-',
        n.upgraded.length,
        lingering,
        n.killed.length,
      ];
    }),
  );
}
