/**
 * Where the control socket lives, and how a client finds it.
 *
 * `subnode run` listens on `control.socket` from the config, or `--socket PATH`, or by default
 * `${XDG_RUNTIME_DIR or os.tmpdir()}/subnode-<pid>.sock`, and writes that path into a pointer
 * file, `.subnode.sock`, in the config's directory. A client looks, in order, at `--socket PATH`,
 * `$SUBNODE_SOCKET`, then `.subnode.sock` in the current directory and each parent.
 */
import { existsSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CliError, Unreachable } from './errors.js';

export const POINTER_FILE = '.subnode.sock';
export const SOCKET_ENV = 'SUBNODE_SOCKET';
/** sun_path is 108 bytes on Linux, 104 on macOS, including the terminating NUL. */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;

export function defaultSocketPath(): string {
  const dir = process.env.XDG_RUNTIME_DIR && existsSync(process.env.XDG_RUNTIME_DIR) ? process.env.XDG_RUNTIME_DIR : tmpdir();
  return join(dir, `subnode-${process.pid}.sock`);
}

export interface FoundSocket {
  path: string;
  /** How it was found, to say so when it cannot be reached. */
  via: string;
}

/** The socket a client should talk to. Throws a CliError saying how to point at one. */
export function findSocket(flag: string | undefined, cwd = process.cwd()): FoundSocket {
  if (flag) return { path: resolve(cwd, flag), via: '--socket' };
  const env = process.env[SOCKET_ENV];
  if (env) return { path: resolve(cwd, env), via: `$${SOCKET_ENV}` };
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const pointer = join(dir, POINTER_FILE);
    let text: string | undefined;
    try {
      text = readFileSync(pointer, 'utf8').trim();
    } catch {
      /* not here */
    }
    if (text) return { path: resolve(dir, text), via: pointer };
    if (dirname(dir) === dir) break;
  }
  throw new Unreachable(
    `no running system found: no --socket PATH, no $${SOCKET_ENV}, and no ${POINTER_FILE} in ${cwd} or its parents.\n` +
      `  Start one with \`subnode run CONFIG\` (it writes ${POINTER_FILE} next to the config), run this command in that directory,\n` +
      `  or point to the socket \`subnode run\` printed: --socket PATH or ${SOCKET_ENV}=PATH.`,
  );
}

/** What to tell a person whose connection to `found` failed with `error`. */
export function unreachable(found: FoundSocket, error: NodeJS.ErrnoException): Unreachable {
  const how = found.via.startsWith('--') || found.via.startsWith('$') ? `from ${found.via}` : `from the pointer ${found.via}`;
  const why =
    error.code === 'ENOENT'
      ? 'it does not exist: the system is not running (or stopped)'
      : error.code === 'ECONNREFUSED'
        ? 'nothing listens on it: the system that made it is gone'
        : error.code === 'EACCES'
          ? 'permission denied: the socket belongs to another user (it is mode 0600)'
          : error.code === 'ENOTSOCK'
            ? 'it is not a socket'
            : `${error.code ?? 'error'}: ${error.message}`;
  return new Unreachable(
    `cannot reach the control socket ${found.path} (${how}): ${why}.\n` +
      `  Start the system with \`subnode run CONFIG\`, or pass the path it printed with --socket PATH or ${SOCKET_ENV}=PATH.`,
  );
}

/** Whether something answers on the socket at `path` (a live system) or not (a stale file). */
export function probe(path: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      done(true);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      done(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      done(false);
    });
  });
}

/**
 * Makes `path` free to listen on: absent, or a stale socket of this user (removed). Refuses a
 * path that is too long, is not a socket, belongs to someone else, or has a live system on it.
 */
export async function claimSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new CliError(
      `control socket path ${path} is ${Buffer.byteLength(path)} bytes; Unix sockets allow ${MAX_SOCKET_PATH}. Choose a shorter control.socket or --socket.`,
    );
  }
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CliError(`cannot use control socket path ${path}: ${(error as Error).message}`);
  }
  if (!stat.isSocket()) throw new CliError(`control socket path ${path} exists and is not a socket; refusing to replace it. Remove it or choose another path.`);
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) {
    throw new CliError(`control socket path ${path} belongs to another user (uid ${stat.uid}); refusing to use it.`);
  }
  if (await probe(path))
    throw new CliError(`a system is already listening on ${path}. Stop it first (\`subnode --socket ${path} stop\`) or choose another path.`);
  unlinkSync(path); // stale: left by a system that did not stop cleanly
}
