/**
 * The client commands, shared by the one-shot command line (`subnode ps a`) and the shell
 * (`subnode attach`): their arguments (which also drive completion), help, and how each one
 * turns a request into output for people or, with `--json`, for scripts.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { MigrationResult } from '../host/migration.js';
import type { UpgradePlan, UpgradeReport } from '../host/upgrade-plan.js';
import type { LoadReport, ModuleInfo, ProcessInfo, PurgeReport } from '../kernel/types.js';
import type { Client } from './client.js';
import { CliError, ConfigError, UsageError } from './errors.js';
import { eventLine, inline, modulesTable, nodesTable, psTable, table } from './format.js';
import type { Message, NodeRow, Progress, SystemInfo } from '../wire/cli.js';

export type ArgKind = 'node' | 'module' | 'pid' | 'dest' | 'file' | 'json' | 'command' | 'text';

export interface ArgSpec { name: string; kind: ArgKind; optional?: boolean }
export interface FlagSpec { name: string; value?: string; help: string }

export interface Parsed {
  args: Record<string, string | undefined>;
  flags: Record<string, string | true>;
}

export interface Context {
  json: boolean;
  cwd: string;
  /** Whole lines to stdout / stderr. */
  out(text: string): void;
  err(text: string): void;
  /** Progress output: stderr, and whether it is a terminal (one updating line) or not (plain lines). */
  progress: { write(text: string): void; tty: boolean };
  client(): Promise<Client>;
  /** Resolves when the person asks to stop a streaming command (Ctrl-C). */
  interrupted(): Promise<void>;
}

export interface Command {
  name: string;
  args: ArgSpec[];
  flags?: FlagSpec[];
  summary: string;
  help?: string;
  /** Only in the shell (exit, history), or only on the command line (run, attach). */
  where?: 'shell' | 'cli';
  run?(ctx: Context, p: Parsed): Promise<number | void>;
}

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'json', help: 'machine-readable JSON output' },
  { name: 'socket', value: 'PATH', help: 'the control socket (default: $SUBNODE_SOCKET, or the path in .subnode.sock here or in a parent directory)' },
  { name: 'help', help: 'help for the command' },
];

export const COMMANDS: Command[] = [
  {
    name: 'run', where: 'cli', args: [{ name: 'CONFIG', kind: 'file' }],
    flags: [{ name: 'socket', value: 'PATH', help: 'listen here instead of control.socket or the default' }],
    summary: 'start a system from a config file and serve its control socket',
    help: `CONFIG is JSON, or a .ts/.js module whose default export is the config:
  { nodes: [{ name, kind?: 'thread'|'isolate', policy?: 'sandboxed'|'trusted'|'legacy-pinned',
              capabilities?, limits?, code?: 'erlang'|'erlang-kill'|'forever'|{ stack: N }|{ retention, purge },
              restart?, intensity?, period?, modules?: { name: './file.ts' },
              start?: [{ module, fn, args?, name? } | { module, server: true, args?, name? }] }],
    control?: { socket?: PATH, pointer?: true } }
Paths are relative to the config file. Events are printed one per line (--json: JSON lines).
The control socket (mode 0600) defaults to $XDG_RUNTIME_DIR (or the temp dir)/subnode-PID.sock;
its path goes into .subnode.sock beside the config, where the other commands find it.
SIGINT / SIGTERM / \`subnode stop\` stop every node and remove the socket.`,
  },
  {
    name: 'attach', where: 'cli', args: [],
    summary: 'an interactive shell on the running system (history, tab completion)',
    help: 'Every command below works in the shell, plus `history` and `exit`. Tab completes commands, nodes, modules and pids.\nHistory is kept in $XDG_STATE_HOME/subnode/history (default ~/.local/state/subnode/history).',
  },
  {
    name: 'info', args: [], summary: 'the system: pid, config, socket, uptime',
    async run(ctx) {
      const info = await (await ctx.client()).request<SystemInfo>('info');
      if (ctx.json) return ctx.out(JSON.stringify(info, null, 2));
      const rows: [string, string | number][] = [['pid', info.pid], ['config', info.config], ['socket', info.socket], ['started', info.startedAt], ['uptime', `${Math.round(info.uptimeMs / 1000)} s`], ['nodes', info.nodes]];
      ctx.out(rows.map(([key, value]) => `${key.padEnd(8)}${value}`).join('\n'));
    },
  },
  {
    name: 'nodes', args: [], summary: 'list the nodes: kind, status, creation, processes, modules',
    async run(ctx) {
      const rows = await (await ctx.client()).request<NodeRow[]>('nodes');
      ctx.out(ctx.json ? JSON.stringify(rows, null, 2) : nodesTable(rows));
    },
  },
  {
    name: 'ps', args: [{ name: 'NODE', kind: 'node', optional: true }], summary: 'list processes: pid, name, status, mailbox, versions',
    help: 'VERSIONS lists the module versions each process is executing; "(old)" marks code a purge would kill it for.',
    async run(ctx, p) {
      const rows = await (await ctx.client()).request<(ProcessInfo & { node: string })[]>('ps', { node: p.args.NODE });
      ctx.out(ctx.json ? JSON.stringify(rows, null, 2) : psTable(rows));
    },
  },
  {
    name: 'modules', args: [{ name: 'NODE', kind: 'node', optional: true }], summary: 'list modules: versions, their state and how many processes run them',
    async run(ctx, p) {
      const rows = await (await ctx.client()).request<(ModuleInfo & { node: string })[]>('modules', { node: p.args.NODE });
      ctx.out(ctx.json ? JSON.stringify(rows, null, 2) : modulesTable(rows));
    },
  },
  {
    name: 'load', args: [{ name: 'NODE', kind: 'node' }, { name: 'MODULE', kind: 'module' }, { name: 'FILE', kind: 'file' }],
    flags: [{ name: 'purge', value: 'kill|soft', help: 'how to make room if the node keeps no more old versions (default: the node\'s code policy)' }],
    summary: 'load a new version of a module on one node from a file (it becomes current)',
    async run(ctx, p) {
      const path = resolve(ctx.cwd, p.args.FILE!);
      try { accessSync(path, constants.R_OK); } catch (error) {
        throw new CliError(`cannot read ${p.args.FILE} (${(error as NodeJS.ErrnoException).code})`);
      }
      const purge = p.flags.purge;
      if (purge !== undefined && purge !== 'kill' && purge !== 'soft') throw new UsageError(`--purge takes kill or soft, not ${String(purge)}`, 'load');
      const report = await (await ctx.client()).request<LoadReport>('load', { node: p.args.NODE, module: p.args.MODULE, path, purge });
      if (ctx.json) return ctx.out(JSON.stringify(report, null, 2));
      ctx.out(`loaded ${report.module} v${report.version} on ${p.args.NODE}${report.previous !== undefined ? ` (v${report.previous} is now old)` : ''}`);
      if (report.purged.length) ctx.out(`purged ${report.purged.map((v) => `v${v}`).join(', ')} to make room${report.killed.length ? `; killed ${report.killed.join(' ')}` : ''}`);
      for (const w of report.warnings ?? []) ctx.err(`warning: ${p.args.FILE}:${w.line} ${w.function}: ${w.message}`);
    },
  },
  {
    name: 'purge', args: [{ name: 'NODE', kind: 'node' }, { name: 'MODULE', kind: 'module' }],
    flags: [{ name: 'to', value: 'NODE', help: 'first move the processes still running old code to this node (one that keeps that version), then purge' }],
    summary: 'remove the old versions of a module, killing processes still running them (or --to NODE: moving them)',
    async run(ctx, p) {
      const report = await (await ctx.client()).request<PurgeReport & { moved?: MigrationResult[] }>('purge', { node: p.args.NODE, module: p.args.MODULE, to: p.flags.to });
      if (ctx.json) ctx.out(JSON.stringify(report, null, 2));
      else {
        for (const m of report.moved ?? []) ctx.out(m.ok ? `moved ${m.pid} to ${m.to}` : `could not move ${m.pid}: ${m.error?.message ?? 'refused'}`);
        ctx.out(purgeText(report, p.args.NODE!));
      }
      return report.ok ? 0 : refusedPurge(ctx, report, p.args.NODE!);
    },
  },
  {
    name: 'soft-purge', args: [{ name: 'NODE', kind: 'node' }, { name: 'MODULE', kind: 'module' }],
    summary: 'remove the old versions of a module only if no process runs them (exit 1 if refused)',
    async run(ctx, p) {
      const report = await (await ctx.client()).request<PurgeReport>('soft-purge', { node: p.args.NODE, module: p.args.MODULE });
      if (ctx.json) ctx.out(JSON.stringify(report, null, 2));
      else if (report.ok) ctx.out(purgeText(report, p.args.NODE!));
      return report.ok ? 0 : refusedPurge(ctx, report, p.args.NODE!);
    },
  },
  {
    name: 'lingering', args: [{ name: 'NODE', kind: 'node' }, { name: 'MODULE', kind: 'module' }],
    summary: 'the processes still running old code of a module',
    async run(ctx, p) {
      const pids = await (await ctx.client()).request<string[]>('lingering', { node: p.args.NODE, module: p.args.MODULE });
      if (ctx.json) return ctx.out(JSON.stringify(pids));
      ctx.out(pids.length ? pids.join('\n') : `(no process runs old code of ${p.args.MODULE} on ${p.args.NODE})`);
    },
  },
  {
    name: 'upgrade', args: [{ name: 'PLAN', kind: 'file' }],
    summary: 'apply an upgrade plan (JSON) node by node, each node as a transaction',
    help: `PLAN is a JSON file:
  { "modules": [{ "module": "counter", "source": { "path": "./counter.v2.ts" }, "extra": {...},
                  "dependsOn"?: [...], "change"?: "codeChange"|"load", "oldVsn"?: ... }],
    "nodes"?: "*" | ["a", "b"] | { "except": ["legacy"] }, "canary"?: "a",
    "purge"?: "soft"|"kill"|"none", "loadPurge"?: "soft"|"kill", "codeChangeTimeoutMs"?: N, "continueOnError"?: false }
Source paths are relative to the plan file. Progress goes to stderr; exit 1 unless every node upgraded.`,
    async run(ctx, p) {
      const plan = readPlan(resolve(ctx.cwd, p.args.PLAN!));
      const progress = new ProgressLine(ctx.progress, 'upgrade');
      let report: UpgradeReport;
      try {
        report = await (await ctx.client()).request<UpgradeReport>('upgrade', { plan }, (m) => {
          if ('progress' in m) progress.update(m.progress);
        });
      } finally {
        progress.end();
      }
      if (ctx.json) ctx.out(JSON.stringify(report, null, 2));
      else ctx.out(upgradeTable(report));
      if (report.ok) return 0;
      for (const n of report.nodes) {
        if (n.status === 'failed') ctx.err(`subnode: upgrade failed on ${n.node}: ${n.error.message}`);
        else if (n.status === 'rolled_back') ctx.err(`subnode: upgrade rolled back on ${n.node}${n.error ? ` at step ${n.error.step} (${n.error.op}): ${n.error.message}` : ''}`);
      }
      const skipped = report.nodes.filter((n) => n.status === 'skipped').map((n) => n.node);
      if (skipped.length) ctx.err(`subnode: not attempted: ${skipped.join(', ')}`);
      return 1;
    },
  },
  {
    name: 'migrate', args: [{ name: 'PID', kind: 'pid' }, { name: 'NODE', kind: 'node' }],
    flags: [{ name: 'extra', value: 'JSON', help: 'passed to the target version\'s codeChange(oldVsn, state, extra)' }],
    summary: 'move a live process to another node; it keeps its pid',
    help: 'The process is suspended at a safe point, its state converted by the target node\'s version of its module\n(codeChange, when the vsns differ) and resumed there. Messages to its pid keep arriving, in order.\nIf the conversion fails it stays where it was (exit 1).',
    async run(ctx, p) {
      const extra = p.flags.extra === undefined ? undefined : json(String(p.flags.extra), 'the --extra value', 'migrate');
      const pid = pidArg(p.args.PID!);
      const result = await (await ctx.client()).request<MigrationResult>('migrate', { pid, node: p.args.NODE, extra });
      if (ctx.json) return ctx.out(JSON.stringify(result, null, 2));
      const converted = result.vsn && inline(result.vsn.from) !== inline(result.vsn.to) ? `, state converted from vsn ${inline(result.vsn.from)} to ${inline(result.vsn.to)}` : '';
      ctx.out(`migrated ${result.pid} from ${result.from} to ${result.to}${converted}${result.moves ? ` (move ${result.moves})` : ''}`);
    },
  },
  {
    name: 'migrate-all', args: [{ name: 'FROM', kind: 'node' }, { name: 'TO', kind: 'node' }],
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
      const progress = new ProgressLine(ctx.progress, 'migrate');
      let results: MigrationResult[];
      try {
        results = await (await ctx.client()).request<MigrationResult[]>('migrate-all', { from: p.args.FROM, to: p.args.TO, module: p.flags.module, batch, extra }, (m) => {
          if ('progress' in m) progress.update(m.progress);
        });
      } finally {
        progress.end();
      }
      const failed = results.filter((r) => !r.ok);
      if (ctx.json) ctx.out(JSON.stringify(results, null, 2));
      else ctx.out(`migrated ${results.length - failed.length} of ${results.length} process${results.length === 1 ? '' : 'es'} from ${p.args.FROM} to ${p.args.TO}`);
      for (const r of failed) ctx.err(`subnode: ${r.pid} stayed on ${r.from}: ${r.error?.message ?? 'refused'}`);
      return failed.length ? 1 : 0;
    },
  },
  {
    name: 'spawn', args: [{ name: 'NODE', kind: 'node' }, { name: 'MODULE', kind: 'module' }, { name: 'FN', kind: 'text' }, { name: 'ARGS', kind: 'json', optional: true }],
    flags: [{ name: 'name', value: 'NAME', help: 'register the process under this name on its node' }],
    summary: 'start a process running MODULE.FN(...ARGS) (ARGS: a JSON list)',
    async run(ctx, p) {
      const args = p.args.ARGS === undefined ? [] : json(p.args.ARGS, 'the ARGS list', 'spawn');
      if (!Array.isArray(args)) throw new UsageError('ARGS must be a JSON list, e.g. \'[1, "x"]\'', 'spawn');
      const pid = await (await ctx.client()).request<string>('spawn', { node: p.args.NODE, module: p.args.MODULE, fn: p.args.FN, args, name: p.flags.name });
      ctx.out(ctx.json ? JSON.stringify({ pid }) : pid);
    },
  },
  {
    name: 'kill', args: [{ name: 'PID', kind: 'pid' }, { name: 'REASON', kind: 'json', optional: true }],
    summary: 'send an exit signal (default "kill", which cannot be trapped)',
    async run(ctx, p) {
      const reason = p.args.REASON === undefined ? 'kill' : jsonOrText(p.args.REASON);
      await (await ctx.client()).request('kill', { pid: pidArg(p.args.PID!), reason });
      ctx.out(ctx.json ? JSON.stringify({ sent: pidArg(p.args.PID!), reason }) : `exit signal ${inline(reason)} sent to ${pidArg(p.args.PID!)}`);
    },
  },
  {
    name: 'send', args: [{ name: 'DEST', kind: 'dest' }, { name: 'JSON', kind: 'json' }],
    summary: 'send a message (JSON) to a pid, NAME@NODE or global:NAME',
    help: 'The pid must be alive (messages to dead pids would be dropped silently). Quote for the shell:\n  subnode send "<a.3>" \'{"type":"inc"}\'   (a.3 works too)',
    async run(ctx, p) {
      const message = json(p.args.JSON!, 'the message', 'send');
      const to = await (await ctx.client()).request<string>('send', { to: pidArg(p.args.DEST!), message });
      ctx.out(ctx.json ? JSON.stringify({ sent: to }) : `sent to ${inline(to)}`);
    },
  },
  {
    name: 'call', args: [{ name: 'DEST', kind: 'dest' }, { name: 'JSON', kind: 'json' }],
    flags: [{ name: 'timeout', value: 'MS', help: 'how long to wait for the reply (default 5000)' }],
    summary: 'call a server process with a request (JSON) and print its reply',
    async run(ctx, p) {
      const request = json(p.args.JSON!, 'the request', 'call');
      const timeoutMs = p.flags.timeout === undefined ? undefined : Number(p.flags.timeout);
      if (timeoutMs !== undefined && !(timeoutMs > 0)) throw new UsageError('--timeout takes a number of ms > 0', 'call');
      const { reply } = await (await ctx.client()).request<{ reply: unknown }>('call', { to: pidArg(p.args.DEST!), request, timeoutMs });
      ctx.out(ctx.json || (typeof reply === 'object' && reply !== null) ? JSON.stringify(reply, null, 2) : inline(reply));
    },
  },
  {
    name: 'events', args: [],
    flags: [
      { name: 'follow', help: 'keep printing events as they happen, until Ctrl-C' },
      { name: 'last', value: 'N', help: 'how many recent events to print first (default 50, 0 with --follow)' },
      { name: 'node', value: 'NODE', help: 'only this node\'s events' },
      { name: 'type', value: 'TYPE', help: 'only events of this type (module_loaded, process_exit, upgrade_node, ...)' },
    ],
    summary: 'print the system\'s recent events; --follow to stream them',
    async run(ctx, p) {
      const follow = p.flags.follow === true;
      const last = p.flags.last === undefined ? undefined : Number(p.flags.last);
      if (last !== undefined && !(Number.isInteger(last) && last >= 0)) throw new UsageError('--last takes an integer >= 0', 'events');
      const wanted = (e: { event: { type: string; node?: string } }) =>
        (p.flags.node === undefined || e.event.node === p.flags.node) && (p.flags.type === undefined || e.event.type === p.flags.type);
      const print = (e: { at: string; event: Parameters<typeof eventLine>[1] }) => {
        if (wanted(e)) ctx.out(ctx.json ? JSON.stringify({ at: e.at, event: e.event }) : eventLine(e.at, e.event));
      };
      const client = await ctx.client();
      const stream: Message[] = [];
      let ready = false;
      const answer = await client.request<{ events: { at: string; event: Parameters<typeof eventLine>[1] }[] }>('events', { follow, last }, (m) => {
        if (!('event' in m)) return;
        if (ready) print(m); else stream.push(m);
      });
      if (!follow && ctx.json) return ctx.out(JSON.stringify(answer.events.filter(wanted), null, 2));
      for (const e of answer.events) print(e);
      if (!follow) return;
      for (const m of stream) print(m as { at: string; event: Parameters<typeof eventLine>[1] });
      ready = true;
      ctx.err(`following events from ${client.found.path} (Ctrl-C to stop)`);
      const closed = new Promise<void>((done) => client.onClose(() => done()));
      const how = await Promise.race([ctx.interrupted().then(() => 'interrupted'), closed.then(() => 'closed')]);
      client.forget();
      if (how === 'closed') ctx.err('the system stopped: no more events');
    },
  },
  {
    name: 'stop', args: [], summary: 'stop the system (every node) and its control socket',
    async run(ctx) {
      const result = await (await ctx.client()).request<{ pid: number }>('stop');
      ctx.out(ctx.json ? JSON.stringify(result) : `stopping the system (pid ${result.pid})`);
    },
  },
  { name: 'help', args: [{ name: 'COMMAND', kind: 'command', optional: true }], summary: 'help for all commands, or one' },
  { name: 'history', where: 'shell', args: [], summary: 'the commands entered in this shell, newest last' },
  { name: 'exit', where: 'shell', args: [], summary: 'leave the shell (also quit, Ctrl-D)' },
];

export function findCommand(name: string, where: 'cli' | 'shell'): Command | undefined {
  if (where === 'shell' && name === 'quit') name = 'exit';
  return COMMANDS.find((c) => c.name === name && (!c.where || c.where === where));
}

export function commandNames(where: 'cli' | 'shell'): string[] {
  return COMMANDS.filter((c) => !c.where || c.where === where).map((c) => c.name);
}

export function usageLine(command: Command, where: 'cli' | 'shell' = 'cli'): string {
  const args = command.args.map((a) => (a.optional ? `[${a.name}]` : a.name));
  const flags = (command.flags ?? []).map((f) => `[--${f.name}${f.value ? ` ${f.value}` : ''}]`);
  return `${where === 'cli' ? 'subnode ' : ''}${[command.name, ...args, ...flags].join(' ')}`;
}

export function helpText(where: 'cli' | 'shell', name?: string): string {
  if (name) {
    const command = findCommand(name, where);
    if (!command) throw new UsageError(`no command '${name}'; \`help\` lists them`);
    const lines = [`usage: ${usageLine(command, where)}`, '', command.summary];
    if (command.help) lines.push('', command.help);
    const flags = [...(command.flags ?? []), ...(where === 'cli' && command.name !== 'run' && command.name !== 'help' ? GLOBAL_FLAGS : [])];
    if (flags.length) {
      lines.push('', 'options:');
      for (const f of flags) lines.push(`  --${f.name}${f.value ? ` ${f.value}` : ''}`.padEnd(22) + f.help);
    }
    return lines.join('\n');
  }
  const visible = COMMANDS.filter((c) => !c.where || c.where === where);
  const width = Math.max(...visible.map((c) => usageLine(c, 'shell').length));
  const lines = where === 'cli'
    ? ['usage: subnode COMMAND [ARGS] [--json] [--socket PATH]', '', 'Run a subnode system from a config file, and operate it while it runs.', '', 'commands:']
    : ['commands:'];
  for (const c of visible) lines.push(`  ${usageLine(c, 'shell').padEnd(width)}  ${c.summary}`);
  if (where === 'cli') {
    lines.push('', 'options for every command:');
    for (const f of GLOBAL_FLAGS) lines.push(`  --${f.name}${f.value ? ` ${f.value}` : ''}`.padEnd(18) + f.help);
    lines.push('', 'exit codes: 0 ok, 1 refused or failed (the reason on stderr), 2 usage or bad config.',
      'The socket is found from --socket, $SUBNODE_SOCKET, or .subnode.sock (written by `subnode run` beside its config)',
      'in the current directory or a parent. `subnode help COMMAND` for more.');
  }
  return lines.join('\n');
}

/**
 * Splits a command's words into arguments and flags (`--flag`, `--flag VALUE`, `--flag=VALUE`).
 * Global flags (--json, --socket, --help) are taken out first by the caller.
 */
export function parseArgs(command: Command, words: string[]): Parsed {
  const parsed: Parsed = { args: {}, flags: {} };
  const positional: string[] = [];
  let flagsDone = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (!flagsDone && word === '--') { flagsDone = true; continue; }
    if (!flagsDone && word.startsWith('--') && word.length > 2) {
      const [key, inlineValue] = splitFlag(word.slice(2));
      const spec = (command.flags ?? []).find((f) => f.name === key);
      if (!spec) throw new UsageError(`unknown option --${key} for ${command.name}`, command.name);
      if (spec.value) {
        const value = inlineValue ?? words[++i];
        if (value === undefined) throw new UsageError(`--${key} needs a value (${spec.value})`, command.name);
        parsed.flags[key] = value;
      } else {
        if (inlineValue !== undefined) throw new UsageError(`--${key} takes no value`, command.name);
        parsed.flags[key] = true;
      }
      continue;
    }
    positional.push(word);
  }
  const specs = command.args;
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    const value = positional[i];
    if (value === undefined && !spec.optional) throw new UsageError(`${command.name}: missing ${spec.name}`, command.name);
    parsed.args[spec.name] = value;
  }
  if (positional.length > specs.length) {
    throw new UsageError(`${command.name}: unexpected argument ${JSON.stringify(positional[specs.length])}${specs.some((s) => s.kind === 'json') ? ' (quote JSON for the shell)' : ''}`, command.name);
  }
  return parsed;
}

export function splitFlag(word: string): [string, string | undefined] {
  const eq = word.indexOf('=');
  return eq < 0 ? [word, undefined] : [word.slice(0, eq), word.slice(eq + 1)];
}

/** `a.3` → `<a.3>`; anything else unchanged (the server says what is wrong with it). */
export function pidArg(value: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*\.\d+(\.\d+)?$/.test(value) ? `<${value}>` : value;
}

function json(text: string, what: string, command: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not valid JSON (${(error as Error).message}); quote it for the shell, e.g. '{"type":"inc"}'`, command);
  }
}

function jsonOrText(text: string): unknown {
  try { return JSON.parse(text); } catch { return text; }
}

function purgeText(report: PurgeReport, node: string): string {
  if (!report.ok) return `purge of ${report.module} on ${node} refused`;
  if (!report.purged.length) return `nothing to purge: ${report.module} has no old version on ${node}`;
  return `purged ${report.module} ${report.purged.map((v) => `v${v}`).join(', ')} on ${node}${report.killed.length ? `; killed ${report.killed.join(' ')}` : ''}`;
}

function refusedPurge(ctx: Context, report: PurgeReport, node: string): number {
  const n = report.lingering.length;
  ctx.err(`subnode: soft-purge refused: ${n} process${n === 1 ? '' : 'es'} still run${n === 1 ? 's' : ''} old code of ${report.module} on ${node}: ${report.lingering.join(' ')}\n` +
    `  Let them move to the current version, or kill them with \`subnode purge ${node} ${report.module}\`.`);
  return 1;
}

function upgradeTable(report: UpgradeReport): string {
  if (!report.nodes.length) return '(no nodes selected)';
  return table(['NODE', 'STATUS', 'LOADED', 'CONVERTED', 'LINGERING', 'KILLED'], report.nodes.map((n) => {
    if (n.status === 'failed' || n.status === 'skipped') return [n.node, n.status, '-', '-', '-', '-'];
    const lingering = Object.values(n.lingering).reduce((sum, pids) => sum + pids.length, 0);
    return [n.node, n.status.replace('_', ' '), n.loaded.map((l) => `${l.module} v${l.version}`).join(', ') || '-', n.upgraded.length, lingering, n.killed.length];
  }));
}

/** Reads a plan file; `{ "path" }` sources become absolute paths, checked to be readable. */
export function readPlan(file: string): UpgradePlan {
  let plan: UpgradePlan;
  try {
    plan = JSON.parse(readFileSync(file, 'utf8')) as UpgradePlan;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [code ? `cannot read the plan (${code})` : `not valid JSON: ${(error as Error).message}`], 'plan');
  }
  const problems: string[] = [];
  if (!plan || typeof plan !== 'object' || !Array.isArray(plan.modules)) {
    throw new ConfigError(file, ['modules: a plan needs "modules": [{ "module", "source": { "path" } }]'], 'plan');
  }
  plan.modules.forEach((m, i) => {
    const source = (m as { source?: unknown })?.source;
    if (source && typeof source === 'object' && typeof (source as { path?: unknown }).path === 'string') {
      const given = (source as { path: string }).path;
      const path = resolve(dirname(file), given);
      try {
        accessSync(path, constants.R_OK);
        m.source = { path };
      } catch (error) {
        problems.push(`modules[${i}].source: cannot read ${given} (${(error as NodeJS.ErrnoException).code})`);
      }
    } else if (typeof source !== 'string') {
      problems.push(`modules[${i}].source: must be { "path": "file relative to the plan" } or the source text`);
    }
  });
  if (problems.length) throw new ConfigError(file, problems, 'plan');
  return plan;
}

/** One updating line on a terminal; plain lines otherwise. */
export class ProgressLine {
  private shown = false;
  constructor(private readonly sink: Context['progress'], private readonly label: string) {}

  update(p: Progress): void {
    const phase = p.phase === 'start' ? 'upgrading' : p.phase.replace('_', ' ');
    if (!this.sink.tty) {
      this.sink.write(`${this.label}: ${p.node} ${phase} (${p.done}/${p.total})\n`);
      return;
    }
    const width = 20;
    const filled = p.total ? Math.round((p.done / p.total) * width) : 0;
    this.sink.write(`\r\x1b[2K${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.total} ${p.node}: ${phase}`);
    this.shown = true;
  }

  end(): void {
    if (this.shown) this.sink.write('\n');
    this.shown = false;
  }
}

export interface GlobalOptions {
  json: boolean;
  socket?: string;
  help: boolean;
}

/** Takes --json, --socket PATH and --help out of the words, wherever they are (up to `--`). */
export function takeGlobalFlags(words: string[]): { options: GlobalOptions; rest: string[] } {
  const options: GlobalOptions = { json: false, help: false };
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') { rest.push(...words.slice(i)); break; }
    const [key, value] = word.startsWith('--') ? splitFlag(word.slice(2)) : [undefined, undefined];
    if (key === 'json' && value === undefined) options.json = true;
    else if (key === 'help' || word === '-h') options.help = true;
    else if (key === 'socket') {
      const path = value ?? words[++i];
      if (!path) throw new UsageError('--socket needs a path');
      options.socket = path;
    } else rest.push(word);
  }
  return { options, rest };
}

/** Prints an error the way its exit code calls for, and returns that code. */
export function report(error: unknown, commandName?: string, where: 'cli' | 'shell' = 'cli', err = (text: string) => { process.stderr.write(`${text}\n`); }): number {
  if (error instanceof UsageError) {
    err(`subnode: ${error.message}`);
    const command = findCommand(error.command ?? commandName ?? '', where);
    err(command ? `usage: ${usageLine(command, where)}` : where === 'cli' ? 'usage: subnode COMMAND [ARGS] [--json] [--socket PATH]; `subnode --help` lists the commands' : '`help` lists the commands');
    return 2;
  }
  if (error instanceof CliError) {
    err(error.exitCode === 2 ? error.message : `subnode: ${error.message}`);
    return error.exitCode;
  }
  err(`subnode: internal error: ${(error as Error)?.stack ?? String(error)}`);
  return 1;
}
