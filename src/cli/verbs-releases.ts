/** Client commands on what the system keeps in its store: releases, rollback, make-permanent, and durable server states. */
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import { inline, table } from './format.js';

function releaseNumber(text: string | undefined, command: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`RELEASE is a release number (see \`subnode releases\`), not ${JSON.stringify(text)}`, command);
  return n;
}

export const RELEASE_COMMANDS: Command[] = [
  {
    name: 'releases',
    args: [],
    summary: 'the release history: every load, plan, policy, purge and delete the system journaled',
    async run(ctx) {
      const releases = await (await ctx.client()).request('releases', {});
      if (ctx.json) return ctx.out(JSON.stringify(releases, null, 2));
      ctx.out(
        releases.length
          ? table(
              ['RELEASE', 'AT', 'STATUS', 'KIND', 'LABEL'],
              releases.map((r) => [r.release, new Date(r.at).toISOString(), r.status, r.plan ? 'plan' : 'step', r.label ?? '-']),
            )
          : '(no release yet)',
      );
    },
  },
  {
    name: 'rollback',
    args: [{ name: 'RELEASE', kind: 'text' }],
    summary: 'go back to an earlier release, as one plan (codeChange with { down: vsn })',
    async run(ctx, p) {
      const report = await (await ctx.client()).request('rollback', { release: releaseNumber(p.args.RELEASE, 'rollback') });
      if (ctx.json) ctx.out(JSON.stringify(report, null, 2));
      else ctx.out(report.nodes.length ? report.nodes.map((n) => `${n.node}: ${n.status}`).join('\n') : '(every node already runs that release)');
      if (report.ok) return 0;
      for (const n of report.nodes) if (n.status === 'failed') ctx.problem(`rollback failed on ${n.node}: ${n.error.message}`, n.error.code);
      return 1;
    },
  },
  {
    name: 'make-permanent',
    args: [{ name: 'RELEASE', kind: 'text', optional: true }],
    summary: 'make a release (default: the latest) permanent: a start boots it even in trial mode',
    async run(ctx, p) {
      const release = p.args.RELEASE === undefined ? undefined : releaseNumber(p.args.RELEASE, 'make-permanent');
      const result = await (await ctx.client()).request('make-permanent', release === undefined ? {} : { release });
      ctx.out(ctx.json ? JSON.stringify(result) : `release ${result.release} is permanent`);
    },
  },
  {
    name: 'durable',
    args: [
      { name: 'forget', kind: 'text', optional: true },
      { name: 'KEY', kind: 'text', optional: true },
    ],
    flags: [{ name: 'node', value: 'NODE', help: "only this node's states (forget: the node that keeps KEY, when several do)" }],
    summary: "the saved durable server states (node, key, vsn, size, when saved); 'forget KEY' drops one",
    help: `After a forget, the next server started under KEY starts from its init. A forget is refused (exit 1)
while a server holds the key: stop it first, and when nothing is stored under KEY. A key is per node: when
several nodes keep KEY, name one with --node.`,
    async run(ctx, p) {
      const node = p.flags.node === undefined ? undefined : String(p.flags.node);
      if (p.args.forget !== undefined && p.args.forget !== 'forget')
        throw new UsageError(`unknown durable action ${JSON.stringify(p.args.forget)} (known: forget)`, 'durable');
      const key = p.args.KEY;
      if (p.args.forget !== undefined && key === undefined) throw new UsageError('durable forget needs the KEY to forget', 'durable');
      const client = await ctx.client();
      if (key !== undefined) {
        const forgot = await client.request('durable-forget', { key, ...(node === undefined ? {} : { node }) });
        return ctx.out(ctx.json ? JSON.stringify(forgot) : `forgot durable state '${forgot.key}' of node ${forgot.node}`);
      }
      const states = await client.request('durable', node === undefined ? {} : { node });
      if (ctx.json) return ctx.out(JSON.stringify(states, null, 2));
      ctx.out(
        states.length
          ? table(
              ['NODE', 'KEY', 'MODULE', 'VSN', 'BYTES', 'SAVED'],
              states.map((s) => [s.node, s.key, s.module, inline(s.vsn), s.bytes, new Date(s.at).toISOString()]),
            )
          : '(no durable state saved)',
      );
    },
  },
];
