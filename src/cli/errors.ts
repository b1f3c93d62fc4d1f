/** The command's own errors, each with the exit code it ends the command with. */

/** An operation that failed or was refused: exit 1, the message on stderr. */
export class CliError extends Error {
  readonly exitCode: number = 1;
  override get name(): string { return this.constructor.name; }
}

/** An error the running system answered with (a SubnodeError's `code` and message). */
export class RemoteError extends CliError {
  constructor(readonly code: string, message: string, readonly details?: unknown) {
    super(message);
  }
}

/** Wrong command line: exit 2, the message and a usage line on stderr. */
export class UsageError extends CliError {
  override readonly exitCode = 2;
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** A config or plan file that cannot be used: exit 2, every problem named by its field. */
export class ConfigError extends CliError {
  override readonly exitCode = 2;
  constructor(readonly file: string, readonly problems: string[], what = 'config') {
    super(`bad ${what} ${file}:\n${problems.map((p) => `  ${p.replace(/\n\s*/g, '\n      ')}`).join('\n')}`);
  }
}
