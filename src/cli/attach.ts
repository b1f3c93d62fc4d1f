/**
 * `subnode attach`: a shell on a running system, like Erlang's remote shell for its operators.
 * The same commands as the command line, over one connection; history in memory and in
 * `$XDG_STATE_HOME/subnode/history` (default `~/.local/state/subnode/history`); Tab completes
 * command names, node names, the node's module names and pids, fetched from the system.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { Client, DEFAULT_TIMEOUT_MS } from './client.js';
import { findCommand, helpText, parseArgs, report, takeGlobalFlags, type Context } from './commands.js';
import { makeCompleter, tokenize } from './complete.js';
import { UsageError } from './errors.js';
import { findSocket } from './socket.js';

const HISTORY_SIZE = 1000;

export function historyPath(): string {
  const state = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'subnode', 'history');
}

function readHistory(path: string): string[] {
  try {
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    const kept = lines.slice(-HISTORY_SIZE);
    if (kept.length < lines.length) writeFileSync(path, `${kept.join('\n')}\n`, { mode: 0o600 });
    return kept;
  } catch {
    return [];
  }
}

export interface AttachOptions {
  socket?: string;
  input?: Readable;
  output?: Writable;
  error?: Writable;
  historyFile?: string;
  /** The deadline for each wait (default DEFAULT_TIMEOUT_MS); `--timeout MS` on a line overrides it for that line. */
  timeoutMs?: number;
}

export async function attach(options: AttachOptions = {}): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const errors = options.error ?? process.stderr;
  const found = findSocket(options.socket);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = await Client.connect(found, timeoutMs);
  const info = await client.request('info', {});
  const terminal = Boolean((input as { isTTY?: boolean }).isTTY && (output as { isTTY?: boolean }).isTTY);
  const historyFile = options.historyFile ?? historyPath();
  const saved = readHistory(historyFile);
  const session: string[] = [];

  const rl = createInterface({
    input,
    output,
    terminal,
    prompt: 'subnode> ',
    history: [...saved].reverse(), // readline wants the newest first
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: makeCompleter(() => client.request('names', {})),
  });
  const out = (text: string) => {
    output.write(`${text}\n`);
  };
  const err = (text: string) => {
    errors.write(`${text}\n`);
  };

  let interrupt: (() => void) | undefined;
  let lost = false;
  const offClose = client.onClose(() => {
    lost = true;
    interrupt?.();
    err('subnode: the system closed the connection (it stopped); leaving the shell');
    rl.close();
  });
  rl.on('SIGINT', () => {
    if (interrupt) return interrupt();
    if (rl.line) {
      output.write('^C\n');
      (rl as unknown as { line: string }).line = '';
      rl.prompt();
    } else {
      output.write('\n(type exit or press Ctrl-D to leave)\n');
      rl.prompt();
    }
  });

  if (terminal) {
    out(`attached to subnode system pid ${info.pid} (${info.nodes} node${info.nodes === 1 ? '' : 's'}, config ${info.config})`);
    out('`help` lists the commands, Tab completes, `exit` or Ctrl-D leaves.');
    rl.prompt();
  }

  const ctxFor = (json: boolean, lineTimeout?: number): Context => ({
    json,
    cwd: process.cwd(),
    out,
    err,
    problem: (message, code = 'refused') => err(json ? JSON.stringify({ error: { code, message, exitCode: 1 } }) : `subnode: ${message}`),
    timeoutMs: lineTimeout ?? timeoutMs,
    timeoutGiven: lineTimeout !== undefined || options.timeoutMs !== undefined,
    progress: {
      write: (text) => {
        errors.write(text);
      },
      tty: Boolean((errors as { isTTY?: boolean }).isTTY),
    },
    client: async () => {
      client.timeoutMs = lineTimeout ?? timeoutMs;
      return client;
    },
    interrupted: () =>
      new Promise<void>((done) => {
        interrupt = done;
      }),
  });

  let code = 0;
  for await (const raw of rl) {
    const line = raw.trim();
    if (line) {
      session.push(line);
      try {
        mkdirSync(dirname(historyFile), { recursive: true, mode: 0o700 });
        appendFileSync(historyFile, `${line.replace(/\n/g, ' ')}\n`, { mode: 0o600 });
      } catch {
        /* history is a convenience */
      }
      const stop = await runLine(line, ctxFor, session, out, err);
      interrupt = undefined;
      if (stop) break;
    }
    if (lost) {
      code = 1;
      break;
    }
    if (terminal) rl.prompt();
  }
  offClose();
  rl.close();
  client.close();
  return lost ? 1 : code;
}

/** Runs one line of the shell; true when the shell should end. Errors are printed, never thrown. */
async function runLine(
  line: string,
  ctxFor: (json: boolean, timeoutMs?: number) => Context,
  session: string[],
  out: (t: string) => void,
  err: (t: string) => void,
): Promise<boolean> {
  let name: string | undefined;
  let json = false;
  try {
    const { words } = tokenize(line);
    const { options, rest } = takeGlobalFlags(words);
    json = options.json;
    name = rest[0];
    if (!name) return false;
    if (options.socket) throw new UsageError('--socket cannot change inside the shell: leave and attach to the other system');
    if (name === 'exit' || name === 'quit') return true;
    if (name === 'help') {
      out(helpText('shell', rest[1]));
      return false;
    }
    if (name === 'history') {
      session.forEach((entry, i) => out(`${String(i + 1).padStart(4)}  ${entry}`));
      return false;
    }
    const command = findCommand(name, 'shell');
    if (!command?.run) throw new UsageError(`unknown command '${name}'${name === 'run' || name === 'attach' ? ' in the shell' : ''}`);
    if (options.help) {
      out(helpText('shell', command.name));
      return false;
    }
    const parsed = parseArgs(command, rest.slice(1));
    const returned = await command.run(ctxFor(options.json, options.timeoutMs), parsed);
    const code = typeof returned === 'number' ? returned : 0;
    if (code !== 0) err(`(exit ${code})`);
  } catch (error) {
    if (error instanceof Error && /^unterminated/.test(error.message)) err(`subnode: ${error.message}`);
    else report(error, name, 'shell', err, json);
  }
  return false;
}
