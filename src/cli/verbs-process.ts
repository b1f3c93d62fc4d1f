/** Client commands on processes: migrate, migrate-all, spawn, kill, send, call. */
import type { MigrationResult } from '../host/migration.js';
import { json, jsonOrText, pidArg, ProgressLine, type Command } from './command.js';
import { UsageError } from './errors.js';
import { inline } from './format.js';

/** How much longer than a call's own timeout the client waits, so the system's own answer (with its reason) comes first. */
const CALL_GRACE_MS = 2_000;

export const PROCESS_COMMANDS: Command[] = [
  {
    name: 'migrate',
    args: [
      { name: 'PID', kind: 'pid' },
      { name: 'NODE', kind: 'node' },
    ],
    flags: [{ name: 'extra', value: 'JSON', help: "passed to the target version's codeChange(oldVsn, state, extra)" }],
    summary: 'move a live process to another node; it keeps its pid',
    help: "The process is suspended at a safe point, its state converted by the target node's version of its module\n(codeChange, when the vsns differ) and resumed there. Messages to its pid keep arriving, in order.\nIf the conversion fails it stays where it was (exit 1).",
    async run(ctx, p) {
      const extra = p.flags.extra === undefined ? undefined : json(String(p.flags.extra), 'the --extra value', 'migrate');
      const result = await (await ctx.client()).request('migrate', { pid: pidArg(p.args.PID!), node: p.args.NODE!, extra });
      if (ctx.json) return ctx.out(JSON.stringify(result, null, 2));
      const converted =
        result.vsn && inline(result.vsn.from) !== inline(result.vsn.to)
          ? `, state converted from vsn ${inline(result.vsn.from)} to ${inline(result.vsn.to)}`
          : '';
      ctx.out(`migrated ${result.pid} from ${result.from} to ${result.to}${converted}${result.moves ? ` (move ${result.moves})` : ''}`);
    },
  },
  {
    name: 'migrate-all',
    args: [
      { name: 'FROM', kind: 'node' },
      { name: 'TO', kind: 'node' },
    ],
    flags: [
      { name: 'module', value: 'MODULE', help: 'only the processes using this module (servers with it as callback module, processes in its code)' },
      { name: 'batch', value: 'N', help: 'processes per round trip (default 100)' },
      { name: 'extra', value: 'JSON', help: 'passed to codeChange' },
    ],
    summary: 'move every process (or those using --module) from one node to another, in batches',
    help: 'Progress goes to stderr (one updating line on a terminal). Exit 1 if any process could not move; it stays where it was.',
    async run(ctx, p) {
      const extra = p.flags.extra === undefined ? undefined : json(String(p.flags.extra), 'the --extra value', 'migrate-all');
      const batch = p.flags.batch === undefined ? undefined : Number(p.flags.batch);
      if (batch !== undefined && !(Number.isInteger(batch) && batch > 0)) throw new UsageError('--batch takes an integer > 0', 'migrate-all');
      const module = p.flags.module === undefined ? undefined : String(p.flags.module);
      const progress = new ProgressLine(ctx.progress, 'migrate', ctx.json);
      let results: MigrationResult[];
      try {
        results = await (
          await ctx.client()
        ).request(
          'migrate-all',
          { from: p.args.FROM!, to: p.args.TO!, module, batch, extra },
          {
            onMessage: (m) => progress.update(m.progress),
          },
        );
      } finally {
        progress.end();
      }
      const failed = results.filter((r) => !r.ok);
      if (ctx.json) ctx.out(JSON.stringify(results, null, 2));
      else
        ctx.out(
          `migrated ${results.length - failed.length} of ${results.length} process${results.length === 1 ? '' : 'es'} from ${p.args.FROM} to ${p.args.TO}`,
        );
      for (const r of failed) ctx.problem(`${r.pid} stayed on ${r.from}: ${r.error?.message ?? 'refused'}`, r.error?.code ?? 'refused');
      return failed.length ? 1 : 0;
    },
  },
  {
    name: 'spawn',
    args: [
      { name: 'NODE', kind: 'node' },
      { name: 'MODULE', kind: 'module' },
      { name: 'FN', kind: 'text' },
      { name: 'ARGS', kind: 'json', optional: true },
    ],
    flags: [{ name: 'name', value: 'NAME', help: 'register the process under this name on its node' }],
    summary: 'start a process running MODULE.FN(...ARGS) (ARGS: a JSON list)',
    async run(ctx, p) {
      const args = p.args.ARGS === undefined ? [] : json(p.args.ARGS, 'the ARGS list', 'spawn');
      if (!Array.isArray(args)) throw new UsageError('ARGS must be a JSON list, e.g. \'[1, "x"]\'', 'spawn');
      const name = p.flags.name === undefined ? undefined : String(p.flags.name);
      const pid = await (await ctx.client()).request('spawn', { node: p.args.NODE!, module: p.args.MODULE!, fn: p.args.FN!, args, name });
      ctx.out(ctx.json ? JSON.stringify({ pid }) : pid);
    },
  },
  {
    name: 'kill',
    args: [
      { name: 'PID', kind: 'pid' },
      { name: 'REASON', kind: 'json', optional: true },
    ],
    summary: 'send an exit signal (default "kill", which cannot be trapped)',
    async run(ctx, p) {
      const reason = p.args.REASON === undefined ? 'kill' : jsonOrText(p.args.REASON);
      const pid = pidArg(p.args.PID!);
      await (await ctx.client()).request('kill', { pid, reason });
      ctx.out(ctx.json ? JSON.stringify({ sent: pid, reason }) : `exit signal ${inline(reason)} sent to ${pid}`);
    },
  },
  {
    name: 'send',
    args: [
      { name: 'DEST', kind: 'dest' },
      { name: 'JSON', kind: 'json' },
    ],
    summary: 'send a message (JSON) to a pid, NAME@NODE or global:NAME',
    help: 'The pid must be alive (messages to dead pids would be dropped silently). Quote for the shell:\n  subnode send "<a.3>" \'{"type":"inc"}\'   (a.3 works too)',
    async run(ctx, p) {
      const message = json(p.args.JSON!, 'the message', 'send');
      const to = await (await ctx.client()).request('send', { to: pidArg(p.args.DEST!), message });
      ctx.out(ctx.json ? JSON.stringify({ sent: to }) : `sent to ${inline(to)}`);
    },
  },
  {
    name: 'call',
    args: [
      { name: 'DEST', kind: 'dest' },
      { name: 'JSON', kind: 'json' },
    ],
    summary: 'call a server process with a request (JSON) and print its reply',
    help: 'The reply is awaited for --timeout MS (default 5000 for a call).',
    async run(ctx, p) {
      const request = json(p.args.JSON!, 'the request', 'call');
      const timeoutMs = ctx.timeoutGiven ? ctx.timeoutMs : 5_000;
      const { reply } = await (await ctx.client()).request('call', { to: pidArg(p.args.DEST!), request, timeoutMs }, { timeoutMs: timeoutMs + CALL_GRACE_MS });
      ctx.out(ctx.json || (typeof reply === 'object' && reply !== null) ? JSON.stringify(reply, null, 2) : inline(reply));
    },
  },
];
