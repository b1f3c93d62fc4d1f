/**
 * The command's own errors, each with the exit code it ends the command with and a `code` for
 * `--json` (printed as `{"error":{"code","message","exitCode",...}}` on stderr).
 *
 *   0    ok
 *   1    the operation failed or was refused, the system is unreachable, or a wait passed its deadline
 *   2    bad usage or bad input: command line, config, plan, or arguments the system rejected as malformed
 *   130  interrupted by SIGINT (Ctrl-C);  143  ended by SIGTERM  (128 + the signal's number)
 */
import { constants } from 'node:os';

/** An operation that failed or was refused: exit 1, the message on stderr. */
export class CliError extends Error {
  readonly exitCode: number = 1;
  readonly code: string = 'failed';
  override get name(): string {
    return this.constructor.name;
  }
}

/** Input the system rejects as malformed is bad input (exit 2), like a bad command line. */
const BAD_INPUT = new Set(['bad_request', 'bad_argument']);

/** An error the running system answered with (a SubnodeError's `code` and message). */
export class RemoteError extends CliError {
  override readonly exitCode: number;
  constructor(
    override readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.exitCode = BAD_INPUT.has(code) ? 2 : 1;
  }
}

/** The control socket cannot be found or reached. */
export class Unreachable extends CliError {
  override readonly code = 'unreachable';
}

/** A wait that passed its deadline (--timeout): exit 1. */
export class DeadlineError extends CliError {
  override readonly code = 'timeout';
  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/** A signal ended the command: exit 128 + its number (130 for SIGINT, 143 for SIGTERM). */
export class Interrupted extends CliError {
  override readonly code = 'interrupted';
  override readonly exitCode: number;
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.exitCode = 128 + (constants.signals[signal] ?? 0);
  }
}

/** Wrong command line: exit 2, the message and a usage line on stderr. */
export class UsageError extends CliError {
  override readonly exitCode = 2;
  override readonly code = 'usage';
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

/** A config or plan file that cannot be used: exit 2, every problem named by its field. */
export class ConfigError extends CliError {
  override readonly exitCode = 2;
  override readonly code: string;
  constructor(
    readonly file: string,
    readonly problems: string[],
    what = 'config',
  ) {
    super(`bad ${what} ${file}:\n${problems.map((p) => `  ${p.replace(/\n\s*/g, '\n      ')}`).join('\n')}`);
    this.code = `bad_${what}`;
  }
}
