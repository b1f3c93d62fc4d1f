#!/usr/bin/env node
/**
 * `subnode`: run a system from a config file (`subnode run CONFIG`), and operate it while it runs
 * through its control socket (`subnode ps`, `load`, `upgrade`, ..., or the `attach` shell).
 * `subnode --help` lists the commands.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from './client.js';
import { findCommand, helpText, parseArgs, report, takeGlobalFlags, type Context } from './commands.js';
import { UsageError } from './errors.js';
import { findSocket } from './socket.js';

/** Runs Node again with --no-node-snapshot (isolate nodes need it), forwarding signals and the exit code. */
function reexec(): Promise<number> {
  const child = spawn(process.execPath, ['--no-node-snapshot', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => () => { child.kill(signal); };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, forward(signal));
  return new Promise((done) => {
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? constants.signals[signal] ?? 1 : 1)));
    child.on('error', (error) => {
      process.stderr.write(`subnode: cannot start ${process.execPath}: ${error.message}\n`);
      done(1);
    });
  });
}

function hasSnapshotFlag(): boolean {
  return process.execArgv.includes('--no-node-snapshot') || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes('--no-node-snapshot');
}

export async function main(argv: string[]): Promise<number> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const err = (text: string) => process.stderr.write(`${text}\n`);
  let commandName: string | undefined;
  try {
    const { options, rest } = takeGlobalFlags(argv);
    commandName = rest[0];
    if (!commandName) {
      if (options.help) { out(helpText('cli')); return 0; }
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
    if (options.help) { out(helpText('cli', command.name)); return 0; }
    const parsed = parseArgs(command, rest.slice(1));

    if (command.name === 'run') {
      if (!hasSnapshotFlag()) return await reexec();
      const { run } = await import('./server.js');
      return await run(parsed.args.CONFIG!, { socket: options.socket, json: options.json });
    }
    if (command.name === 'attach') {
      const { attach } = await import('./attach.js');
      return await attach({ socket: options.socket });
    }

    let client: Client | undefined;
    let interrupt: (() => void) | undefined;
    const interrupted = new Promise<void>((done) => { interrupt = done; });
    const onSignal = () => interrupt?.();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const ctx: Context = {
      json: options.json,
      cwd: process.cwd(),
      out,
      err,
      progress: { write: (text) => process.stderr.write(text), tty: Boolean(process.stderr.isTTY) },
      client: async () => (client ??= await Client.connect(findSocket(options.socket))),
      interrupted: () => interrupted,
    };
    try {
      return (await command.run!(ctx, parsed)) ?? 0;
    } finally {
      client?.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } catch (error) {
    return report(error, commandName);
  }
}

const invoked = process.argv[1] ? fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1]) : false;
if (invoked) {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => { if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0); });
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // Everything is closed by now (after `run`: every node stopped); a stray handle must not keep the command up.
  setTimeout(() => process.exit(code), 2_000).unref();
}
