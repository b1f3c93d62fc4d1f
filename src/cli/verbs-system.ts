/** Client commands that look at the system as a whole: info, nodes, ps, modules, events, stop. */
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import { eventLine, modulesTable, nodesTable, psTable } from './format.js';
import type { EventRecord } from '../wire/cli.js';

export const SYSTEM_COMMANDS: Command[] = [
  {
    name: 'info',
    args: [],
    summary: 'the system: pid, config, socket, uptime',
    async run(ctx) {
      const info = await (await ctx.client()).request('info', {});
      if (ctx.json) return ctx.out(JSON.stringify(info, null, 2));
      const rows: [string, string | number][] = [
        ['pid', info.pid],
        ['config', info.config],
        ['socket', info.socket],
        ['started', info.startedAt],
        ['uptime', `${Math.round(info.uptimeMs / 1000)} s`],
        ['nodes', info.nodes],
        ...(info.cluster
          ? ([
              ['host', info.cluster.host],
              ['hosts', info.cluster.hosts.join(', ')],
            ] as [string, string][])
          : []),
      ];
      ctx.out(rows.map(([key, value]) => `${key.padEnd(8)}${value}`).join('\n'));
    },
  },
  {
    name: 'nodes',
    args: [],
    summary: 'list the nodes: kind, status, creation, processes, modules',
    async run(ctx) {
      const rows = await (await ctx.client()).request('nodes', {});
      ctx.out(ctx.json ? JSON.stringify(rows, null, 2) : nodesTable(rows));
    },
  },
  {
    name: 'ps',
    args: [{ name: 'NODE', kind: 'node', optional: true }],
    summary: 'list processes: pid, name, status, mailbox, versions',
    help: 'VERSIONS lists the module versions each process is executing; "(old)" marks code a purge would kill it for.',
    async run(ctx, p) {
      const rows = await (await ctx.client()).request('ps', { node: p.args.NODE });
      ctx.out(ctx.json ? JSON.stringify(rows, null, 2) : psTable(rows));
    },
  },
  {
    name: 'modules',
    args: [{ name: 'NODE', kind: 'node', optional: true }],
    summary: 'list modules: versions, their state and how many processes run them',
    async run(ctx, p) {
      const rows = await (await ctx.client()).request('modules', { node: p.args.NODE });
      ctx.out(ctx.json ? JSON.stringify(rows, null, 2) : modulesTable(rows));
    },
  },
  {
    name: 'events',
    args: [],
    flags: [
      { name: 'follow', help: 'keep printing events as they happen, until Ctrl-C (exit 130), SIGTERM (143), the system stops or --timeout MS passes (exit 0)' },
      { name: 'last', value: 'N', help: 'how many recent events to print first (default 50, 0 with --follow)' },
      { name: 'node', value: 'NODE', help: "only this node's events" },
      { name: 'type', value: 'TYPE', help: 'only events of this type (module_loaded, process_exit, upgrade_node, ...)' },
    ],
    summary: "print the system's recent events; --follow to stream them",
    help: 'With --json: one JSON array without --follow; one JSON object per line with it.',
    async run(ctx, p) {
      const follow = p.flags.follow === true;
      const last = p.flags.last === undefined ? undefined : Number(p.flags.last);
      if (last !== undefined && !(Number.isInteger(last) && last >= 0)) throw new UsageError('--last takes an integer >= 0', 'events');
      const wanted = (e: EventRecord) =>
        (p.flags.node === undefined || ('node' in e.event && e.event.node === p.flags.node)) && (p.flags.type === undefined || e.event.type === p.flags.type);
      const print = (e: EventRecord) => {
        if (wanted(e)) ctx.out(ctx.json ? JSON.stringify({ at: e.at, event: e.event }) : eventLine(e.at, e.event));
      };
      const client = await ctx.client();
      const early: EventRecord[] = [];
      let ready = false;
      const answer = await client.request(
        'events',
        { follow, last },
        {
          onMessage: (m) => {
            if (ready) print(m);
            else early.push(m);
          },
        },
      );
      if (!follow && ctx.json) return ctx.out(JSON.stringify(answer.events.filter(wanted), null, 2));
      for (const e of answer.events) print(e);
      if (!follow) return;
      for (const m of early) print(m);
      ready = true;
      if (ctx.json) ctx.err(JSON.stringify({ following: client.found.path }));
      else ctx.err(`following events from ${client.found.path} (Ctrl-C to stop)`);
      const closed = new Promise<'closed'>((done) => client.onClose(() => done('closed')));
      const waits: Promise<'interrupted' | 'closed' | 'timeout'>[] = [ctx.interrupted().then(() => 'interrupted' as const), closed];
      let timer: NodeJS.Timeout | undefined;
      // Following is open-ended: only a --timeout given on the command line bounds it.
      if (ctx.timeoutGiven)
        waits.push(
          new Promise((done) => {
            timer = setTimeout(() => done('timeout'), ctx.timeoutMs);
          }),
        );
      const how = await Promise.race(waits);
      clearTimeout(timer);
      client.forget();
      if (how === 'closed') ctx.err(ctx.json ? JSON.stringify({ closed: 'the system stopped: no more events' }) : 'the system stopped: no more events');
    },
  },
  {
    name: 'stop',
    args: [],
    summary: 'stop the system (every node) and its control socket',
    async run(ctx) {
      const result = await (await ctx.client()).request('stop', {});
      ctx.out(ctx.json ? JSON.stringify(result) : `stopping the system (pid ${result.pid})`);
    },
  },
];
