/**
 * What a client command is (its arguments, which also drive completion; its flags; how it runs
 * with a Context), and the parsing shared by the command line and the shell.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { UpgradePlan } from '../host/upgrade-plan.js';
import { planReferenceProblems, upgradePlanSchema } from '../host/schema/plan.js';
import { validate } from '../host/schema/problems.js';
import { resolvePath } from '../host/source.js';
import type { Client } from './client.js';
import { ConfigError, UsageError } from './errors.js';
import type { Progress } from '../wire/cli.js';

export type ArgKind = 'node' | 'module' | 'pid' | 'dest' | 'file' | 'json' | 'command' | 'text';

export interface ArgSpec {
  name: string;
  kind: ArgKind;
  optional?: boolean;
}
export interface FlagSpec {
  name: string;
  value?: string;
  help: string;
}

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
  /**
   * Says why the command fails after its result was printed (a refused purge, a failed upgrade):
   * `subnode: MESSAGE` on stderr, or with --json `{"error":{"code","message"}}` there.
   */
  problem(message: string, code?: string): void;
  /** Progress output: stderr, and whether it is a terminal (one updating line) or not (plain lines). */
  progress: { write(text: string): void; tty: boolean };
  client(): Promise<Client>;
  /** The deadline for each wait (--timeout), and whether it was given (rather than the default). */
  timeoutMs: number;
  timeoutGiven: boolean;
  /** Resolves when the person asks to stop a streaming command (Ctrl-C in the shell). */
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
  /** Resolves with the exit code (none: 0). */
  run?(ctx: Context, p: Parsed): Promise<number | void>;
}

export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'json', help: 'JSON output: results on stdout; errors, progress and notices as JSON lines on stderr' },
  { name: 'socket', value: 'PATH', help: 'the control socket (default: $SUBNODE_SOCKET, or the path in .subnode.sock here or in a parent directory)' },
  { name: 'timeout', value: 'MS', help: "how long each wait may take (connecting, each answer; a call's reply) before exit 1 (default 60000)" },
  { name: 'help', help: 'help for the command' },
];

export interface GlobalOptions {
  json: boolean;
  socket?: string;
  timeoutMs?: number;
  help: boolean;
  version: boolean;
}

/** Takes --json, --socket PATH, --timeout MS, --help and --version out of the words, wherever they are (up to `--`). */
export function takeGlobalFlags(words: string[]): { options: GlobalOptions; rest: string[] } {
  const options: GlobalOptions = { json: false, help: false, version: false };
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      rest.push(...words.slice(i));
      break;
    }
    const [key, value] = word.startsWith('--') ? splitFlag(word.slice(2)) : [undefined, undefined];
    if (key === 'json' && value === undefined) options.json = true;
    else if (key === 'help' || word === '-h') options.help = true;
    else if (key === 'version' && value === undefined) options.version = true;
    else if (key === 'socket') {
      const path = value ?? words[++i];
      if (!path) throw new UsageError('--socket needs a path');
      options.socket = path;
    } else if (key === 'timeout') {
      const ms = Number(value ?? words[++i]);
      if (!(Number.isInteger(ms) && ms > 0)) throw new UsageError('--timeout takes a number of ms > 0');
      options.timeoutMs = ms;
    } else rest.push(word);
  }
  return { options, rest };
}

/**
 * Splits a command's words into arguments and flags (`--flag`, `--flag VALUE`, `--flag=VALUE`).
 * Global flags are taken out first by the caller.
 */
export function parseArgs(command: Command, words: string[]): Parsed {
  const parsed: Parsed = { args: {}, flags: {} };
  const positional: string[] = [];
  let flagsDone = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (!flagsDone && word === '--') {
      flagsDone = true;
      continue;
    }
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
    throw new UsageError(
      `${command.name}: unexpected argument ${JSON.stringify(positional[specs.length])}${specs.some((s) => s.kind === 'json') ? ' (quote JSON for the shell)' : ''}`,
      command.name,
    );
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

export function json(text: string, what: string, command: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not valid JSON (${(error as Error).message}); quote it for the shell, e.g. '{"type":"inc"}'`, command);
  }
}

export function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Reads a plan file and checks it against the plan schema (every problem named, exit 2);
 * `{ "path" }` sources become absolute paths (relative to the plan, or to their `base`), checked
 * to be readable.
 */
export function readPlan(file: string): UpgradePlan {
  let plan: UpgradePlan;
  try {
    plan = JSON.parse(readFileSync(file, 'utf8')) as UpgradePlan;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [code ? `cannot read the plan (${code})` : `not valid JSON: ${(error as Error).message}`], 'plan');
  }
  const problems = validate(upgradePlanSchema, plan, planReferenceProblems);
  if (problems.length) throw new ConfigError(file, problems, 'plan');
  plan.modules.forEach((m, i) => {
    if (!('path' in m.source)) return;
    const { path: given, base } = m.source as { path: string; base?: string };
    try {
      const path = resolvePath(given, base ?? dirname(file));
      accessSync(path, constants.R_OK);
      m.source = { path };
    } catch (error) {
      problems.push(`modules[${i}].source: cannot read ${given} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  });
  if (problems.length) throw new ConfigError(file, problems, 'plan');
  return plan;
}

/** One updating line on a terminal; plain lines otherwise; JSON lines (`{"progress":{...}}`) with --json. */
export class ProgressLine {
  private shown = false;
  constructor(
    private readonly sink: Context['progress'],
    private readonly label: string,
    private readonly json = false,
  ) {}

  update(p: Progress): void {
    if (this.json) {
      this.sink.write(`${JSON.stringify({ progress: { label: this.label, ...p } })}\n`);
      return;
    }
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
