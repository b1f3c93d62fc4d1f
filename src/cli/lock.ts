/**
 * One `subnode run` per system: a lock file, created exclusively (O_EXCL), holding the pid and
 * socket of the system that owns it. `run` takes one beside its config (when it writes the
 * `.subnode.sock` pointer there) and one beside its socket, so a second run of the same config or
 * on the same socket path is refused, naming the running one, instead of taking its pointer. A
 * lock whose pid is dead (a system that was SIGKILLed) is stale and taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { CliError } from './errors.js';

export const LOCK_FILE = '.subnode.lock';

export interface LockInfo {
  pid: number;
  socket: string;
  config: string;
  startedAt: string;
}

/** A system already runs: exit 1, naming it. */
export class AlreadyRunning extends CliError {
  override readonly code = 'already_running';
  constructor(
    readonly lock: string,
    readonly holder: LockInfo,
    elsewhere: string,
  ) {
    super(
      `this system is already running: pid ${holder.pid}, control socket ${holder.socket} (config ${holder.config}; lock ${lock}).\n` +
        `  Stop it first (\`subnode --socket ${holder.socket} stop\`, or kill ${holder.pid}), or ${elsewhere}.`,
    );
  }
}

export interface Lock {
  path: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function read(path: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return Number.isInteger(info?.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock at `path` for this process, or throws AlreadyRunning. */
export function acquireLock(path: string, info: LockInfo, elsewhere: string): Lock {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new CliError(`cannot create the lock ${path}: ${(error as Error).message}`);
      const holder = read(path);
      if (holder && holder.pid !== process.pid && alive(holder.pid)) throw new AlreadyRunning(path, holder, elsewhere);
      // Stale (its system is gone), or half-written by a run that died at once: take it over.
      try {
        unlinkSync(path);
      } catch {
        /* another run took it over first: try again */
      }
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(info)}\n`);
    } finally {
      closeSync(fd);
    }
    return {
      path,
      release: () => {
        try {
          if (read(path)?.pid === process.pid) unlinkSync(path);
        } catch {
          /* gone */
        }
      },
    };
  }
  const holder = read(path);
  if (holder) throw new AlreadyRunning(path, holder, elsewhere);
  throw new CliError(`cannot take the lock ${path}: another run keeps replacing it`);
}
