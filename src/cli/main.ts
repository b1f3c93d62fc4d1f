#!/usr/bin/env node
/**
 * `subnode`: run a system from a config file (`subnode run CONFIG`), and operate it while it runs
 * through its control socket (`subnode ps`, `load`, `upgrade`, ..., or the `attach` shell).
 * `subnode --help` lists the commands; exit codes are listed in errors.ts.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, DEFAULT_TIMEOUT_MS } from './client.js';
import { findCommand, helpText, parseArgs, report, takeGlobalFlags, type Context } from './commands.js';
import { Interrupted, UsageError } from './errors.js';
import { hasSnapshotFlag, relaunch } from './relaunch.js';
import { findSocket } from './socket.js';

const ENDING_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const out = (text: string): void => {
    process.stdout.write(`${text}\n`);
  };
  const err = (text: string): void => {
    process.stderr.write(`${text}\n`);
  };
  let commandName: string | undefined;
  let json = argv.includes('--json');
  try {
    const { options, rest } = takeGlobalFlags(argv);
    json = options.json;
    commandName = rest[0];
    if (options.version) {
      out(json ? JSON.stringify({ version: version() }) : `subnode ${version()}`);
      return 0;
    }
    if (!commandName) {
      if (options.help) {
        out(helpText('cli'));
        return 0;
      }
      if (json) throw new UsageError('a command is needed');
      err(helpText('cli'));
      return 2;
    }
    if (commandName === 'help') {
      if (rest.length > 2) throw new UsageError('help takes one command name', 'help');
      out(helpText('cli', rest[1]));
      return 0;
    }
    const command = findCommand(commandName, 'cli');
    if (!command) throw new UsageError(`unknown command '${commandName}'`);
    if (options.help) {
      out(helpText('cli', command.name));
      return 0;
    }
    const parsed = parseArgs(command, rest.slice(1));

    if (command.name === 'run') {
      // A log reader that goes away must not take the system down with it.
      process.stdout.on('error', () => {});
      if (!hasSnapshotFlag()) return await relaunch(fileURLToPath(import.meta.url), process.argv.slice(2));
      const { run } = await import('./server.js');
      const cluster = parsed.flags.cluster;
      if (cluster === true) throw new UsageError('--cluster takes the NATS server URL(s): --cluster nats://host:4222[,nats://...]');
      const host = parsed.flags.host;
      if (host === true) throw new UsageError("--host takes this host's name in the cluster");
      const credentials = parsed.flags.credentials;
      if (credentials === true)
        throw new UsageError('--credentials takes a file: a JWT .creds file, an nkey seed file, or JSON { "user", "pass" } / { "token" }');
      if (credentials !== undefined && cluster === undefined) throw new UsageError('--credentials is for --cluster');
      return await run(parsed.args.CONFIG!, { socket: options.socket, json, cluster, host, credentials });
    }
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    });
    if (command.name === 'attach') {
      const { attach } = await import('./attach.js');
      return await attach({ socket: options.socket, timeoutMs: options.timeoutMs });
    }

    // A signal ends the command at once, whatever it waits for: 128 + its number.
    let client: Client | undefined;
    let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
    const signalled = new Promise<NodeJS.Signals>((done) => {
      onSignal = done;
    });
    const listeners = ENDING_SIGNALS.map((signal) => [signal, () => onSignal!(signal)] as const);
    for (const [signal, listener] of listeners) process.on(signal, listener);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const ctx: Context = {
      json,
      cwd: process.cwd(),
      out,
      err,
      problem: (message, code = 'refused') => err(json ? JSON.stringify({ error: { code, message, exitCode: 1 } }) : `subnode: ${message}`),
      progress: {
        write: (text) => {
          process.stderr.write(text);
        },
        tty: Boolean(process.stderr.isTTY),
      },
      client: async () => (client ??= await Client.connect(findSocket(options.socket), timeoutMs)),
      timeoutMs,
      timeoutGiven: options.timeoutMs !== undefined,
      interrupted: () => new Promise<void>(() => {}), // signals are handled here, not by the command
    };
    try {
      const ran = command.run!(ctx, parsed).then((code) => (typeof code === 'number' ? code : 0));
      const outcome = await Promise.race([ran.then((code) => ({ code })), signalled.then((signal) => ({ signal }))]);
      if ('code' in outcome) return outcome.code;
      ran.catch(() => {}); // it fails once its connection closes below; the signal decided already
      throw new Interrupted(outcome.signal);
    } finally {
      client?.close();
      for (const [signal, listener] of listeners) process.off(signal, listener);
    }
  } catch (error) {
    return report(error, commandName, 'cli', err, json);
  }
}

const invoked = process.argv[1] ? fileURLToPath(import.meta.url) === realpathSync(process.argv[1]) : false;
if (invoked) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // After a signal, at once; otherwise everything is closed by now (after `run`: every node
  // stopped), and a stray handle must not keep the command up.
  if (code >= 128) process.exit(code);
  setTimeout(() => process.exit(code), 2_000).unref();
}
