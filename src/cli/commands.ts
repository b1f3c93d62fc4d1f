/**
 * The client commands, shared by the one-shot command line (`subnode ps a`) and the shell
 * (`subnode attach`): the list (the verbs live in verbs-*.ts, grouped by what they act on), help,
 * and how an error becomes output and an exit code, for people or, with `--json`, for scripts.
 */
import { GLOBAL_FLAGS, type Command } from './command.js';
import { CliError, ConfigError, RemoteError, UsageError } from './errors.js';
import { CODE_COMMANDS } from './verbs-code.js';
import { OBSERVE_COMMANDS } from './verbs-observe.js';
import { PROCESS_COMMANDS } from './verbs-process.js';
import { SYSTEM_COMMANDS } from './verbs-system.js';
import { RELEASE_COMMANDS } from './verbs-releases.js';

export { parseArgs, ProgressLine, readPlan, takeGlobalFlags, type Command, type Context, type Parsed } from './command.js';

export const COMMANDS: Command[] = [
  {
    name: 'run',
    where: 'cli',
    args: [{ name: 'CONFIG', kind: 'file' }],
    flags: [
      { name: 'socket', value: 'PATH', help: 'listen here instead of control.socket or the default' },
      { name: 'cluster', value: 'URLS', help: 'join a cluster of hosts on NATS (nats://host:4222, comma-separated for several servers)' },
      { name: 'host', value: 'NAME', help: "this host's name in the cluster (default: the machine name and the pid)" },
      {
        name: 'credentials',
        value: 'FILE',
        help: 'NATS credentials for --cluster: a JWT .creds file, an nkey seed file, or JSON { "user", "pass" } / { "token" }',
      },
    ],
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
SIGINT, SIGTERM, SIGHUP and \`subnode stop\` stop every node gracefully, remove the socket and exit 0
(1 if stopping failed). SIGHUP stops it too, also under nohup (Node resets an inherited ignore):
keep a system past a closed terminal with a supervisor, setsid or tmux. It stays one process for a
supervisor: when Node needs --no-node-snapshot added, the relaunched child gets every signal
forwarded, exits when its launcher dies, and the launcher exits with its code.
One run per system: a second run of the same config directory, or on the same socket, is refused
(exit 1) naming the running one's pid and socket; a lock left by a killed run is taken over.`,
  },
  {
    name: 'attach',
    where: 'cli',
    args: [],
    summary: 'an interactive shell on the running system (history, tab completion)',
    help: 'Every command below works in the shell, plus `history` and `exit`. Tab completes commands, nodes, modules and pids.\nHistory is kept in $XDG_STATE_HOME/subnode/history (default ~/.local/state/subnode/history).',
  },
  ...SYSTEM_COMMANDS.filter((c) => c.name !== 'stop'),
  ...CODE_COMMANDS,
  ...RELEASE_COMMANDS,
  ...PROCESS_COMMANDS,
  ...OBSERVE_COMMANDS,
  ...SYSTEM_COMMANDS.filter((c) => c.name === 'stop'),
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
  const lines =
    where === 'cli'
      ? [
          'usage: subnode COMMAND [ARGS] [--json] [--socket PATH] [--timeout MS]',
          '',
          'Run a subnode system from a config file, and operate it while it runs.',
          '',
          'commands:',
        ]
      : ['commands:'];
  for (const c of visible) lines.push(`  ${usageLine(c, 'shell').padEnd(width)}  ${c.summary}`);
  if (where === 'cli') {
    lines.push('', 'options for every command:');
    for (const f of GLOBAL_FLAGS) lines.push(`  --${f.name}${f.value ? ` ${f.value}` : ''}`.padEnd(18) + f.help);
    lines.push(
      '  --version'.padEnd(18) + 'the version of subnode',
      '',
      'exit codes: 0 ok; 1 refused or failed, unreachable, or --timeout passed (the reason on stderr);',
      '  2 bad usage or bad input (command line, config, plan, malformed arguments); 130 SIGINT, 143 SIGTERM.',
      'With --json, results go to stdout as JSON; errors go to stderr as one line {"error":{"code","message","exitCode"}}.',
      'The socket is found from --socket, $SUBNODE_SOCKET, or .subnode.sock (written by `subnode run` beside its config)',
      'in the current directory or a parent. `subnode help COMMAND` for more.',
    );
  }
  return lines.join('\n');
}

/** Prints an error the way its exit code calls for (with `json`: one JSON line), and returns that code. */
export function report(
  error: unknown,
  commandName?: string,
  where: 'cli' | 'shell' = 'cli',
  err = (text: string) => {
    process.stderr.write(`${text}\n`);
  },
  json = false,
): number {
  const command = error instanceof UsageError ? findCommand(error.command ?? commandName ?? '', where) : undefined;
  const usage = command
    ? `usage: ${usageLine(command, where)}`
    : where === 'cli'
      ? 'usage: subnode COMMAND [ARGS] [--json] [--socket PATH]; `subnode --help` lists the commands'
      : '`help` lists the commands';
  if (json) {
    const e = error instanceof CliError ? error : undefined;
    const body: Record<string, unknown> = e
      ? { code: e.code, message: error instanceof ConfigError ? `bad ${error.code.slice(4)} ${error.file}` : e.message, exitCode: e.exitCode }
      : { code: 'internal', message: String((error as Error)?.message ?? error), exitCode: 1 };
    if (error instanceof ConfigError) Object.assign(body, { file: error.file, problems: error.problems });
    if (error instanceof RemoteError && error.details !== undefined) body.details = error.details;
    if (error instanceof UsageError) body.usage = usage;
    err(JSON.stringify({ error: body }));
    return Number(body.exitCode);
  }
  if (error instanceof UsageError) {
    err(`subnode: ${error.message}`);
    err(usage);
    return 2;
  }
  if (error instanceof CliError) {
    err(error.exitCode === 2 && error instanceof ConfigError ? error.message : `subnode: ${error.message}`);
    return error.exitCode;
  }
  err(`subnode: internal error: ${(error as Error)?.stack ?? String(error)}`);
  return 1;
}
