/** Client commands that watch the system live: observe (a web dashboard), top (a terminal view). */
import { clientApi } from '../observe/api.js';
import { serveObserver } from '../observe/server.js';
import { runTop, type TopSort } from '../observe/top.js';
import { Client } from './client.js';
import type { Command } from './command.js';
import { UsageError } from './errors.js';

export const OBSERVE_COMMANDS: Command[] = [
  {
    name: 'observe',
    where: 'cli',
    args: [],
    flags: [
      { name: 'port', value: 'N', help: 'port on 127.0.0.1 (default: any free port)' },
      { name: 'metrics', help: 'also serve Prometheus text on /metrics (with the token)' },
    ],
    summary: 'serve a live web dashboard of the running system on 127.0.0.1 (the URL carries a token)',
    help: `Prints the dashboard's URL, with a random token: requests without it get 403. Pages: nodes, processes
(sorted, filtered and paged by the system), a process (links, monitors, state), code (versions per node,
lingering processes), live events, upgrade (dry run, then apply). Actions ask for confirmation.
Runs until Ctrl-C (exit 130) or until the system stops (exit 1).`,
    async run(ctx, p) {
      const port = p.flags.port === undefined ? 0 : Number(p.flags.port);
      if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UsageError('--port takes a port number', 'observe');
      const client = await ctx.client();
      const api = clientApi(client, () => Client.connect(client.found, ctx.timeoutMs), ctx.cwd);
      const observer = await serveObserver(api, { port, metrics: p.flags.metrics === true });
      ctx.out(
        ctx.json
          ? JSON.stringify({ url: observer.url, port: observer.port, token: observer.token, socket: client.found.path })
          : `observer of ${client.found.path}\nopen ${observer.url}${p.flags.metrics ? `\nmetrics: http://127.0.0.1:${observer.port}/metrics (Authorization: Bearer ${observer.token})` : ''}\nCtrl-C stops it`,
      );
      await new Promise<void>((done) => client.onClose(() => done()));
      await observer.close();
      api.close();
      ctx.problem('the system stopped', 'unreachable');
      return 1;
    },
  },
  {
    name: 'top',
    where: 'cli',
    args: [],
    flags: [
      { name: 'sort', value: 'KEY', help: 'mailbox (default), reductions or memory' },
      { name: 'interval', value: 'MS', help: 'refresh every MS (default 1000)' },
    ],
    summary: 'a terminal view refreshing in place: nodes, top processes, recent events (q quits)',
    help: 'Keys: m / r / M sort by mailbox / reductions / memory; q quits (exit 0), Ctrl-C quits (exit 130).\nReductions and memory show "-" until the nodes\' kernels count them.',
    async run(ctx, p) {
      const sort = (p.flags.sort ?? 'mailbox') as TopSort;
      if (!['mailbox', 'reductions', 'memory'].includes(sort)) throw new UsageError('--sort takes mailbox, reductions or memory', 'top');
      const intervalMs = p.flags.interval === undefined ? 1000 : Number(p.flags.interval);
      if (!(Number.isInteger(intervalMs) && intervalMs >= 50)) throw new UsageError('--interval takes a number of ms >= 50', 'top');
      const client = await ctx.client();
      const api = clientApi(client, () => Client.connect(client.found, ctx.timeoutMs), ctx.cwd);
      const closed = new Promise<void>((done) => client.onClose(() => done()));
      try {
        const code = await runTop(api, { intervalMs, sort, input: process.stdin, output: process.stdout }, closed);
        if (code === 1) ctx.problem('the system stopped', 'unreachable');
        return code;
      } finally {
        api.close();
      }
    },
  },
];
