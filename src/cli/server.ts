/**
 * `subnode run CONFIG`: starts the system a config describes, logs its events one per line, and
 * serves the control socket (control.ts) until SIGINT / SIGTERM / SIGHUP, `subnode stop`, or the
 * death of the launcher that relaunched it; then stops every node in order (each node's trees from
 * the top, servers' terminate callbacks run, bounded by a deadline), removes the socket, its
 * pointer file and its locks, and resolves with the exit code (0, or 1 if stopping failed).
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { toWire } from '../errors.js';
import type { SystemEvent } from '../host/events.js';
import { System } from '../host/system.js';
import { loadConfig, type LoadedConfig } from './config.js';
import { ControlServer } from './control.js';
import { CliError, ConfigError } from './errors.js';
import { eventLine } from './format.js';
import { acquireLock, LOCK_FILE, type Lock } from './lock.js';
import { LAUNCHER_ENV } from './relaunch.js';
import { claimSocketPath, defaultSocketPath, POINTER_FILE } from './socket.js';

export interface RunOptions {
  socket?: string;
  json?: boolean;
  out?: (line: string) => void;
  /** How long an orderly stop (SIGTERM, SIGINT, `subnode stop`) may take before the rest is killed. */
  shutdownTimeoutMs?: number;
  /** NATS server URLs (comma-separated): the system joins that cluster as host `host`. */
  cluster?: string;
  host?: string;
  /** A file with the NATS credentials for `cluster` (see credentialsFromFile). */
  credentials?: string;
}

/** The default bound of an orderly stop; a second signal stops at once. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function run(configPath: string, options: RunOptions = {}): Promise<number> {
  const out =
    options.out ??
    ((line: string) => {
      try {
        process.stdout.write(`${line}\n`);
      } catch {
        /* closed */
      }
    });
  const config = await loadConfig(configPath);
  const socketPath = options.socket ? resolve(options.socket) : (config.socket ?? defaultSocketPath());

  // From here on a stop request (signal, lost launcher) is remembered, never the default kill.
  let stopWhy: string | undefined;
  let onStopRequest: (why: string) => void = () => {};
  const requestStop = (why: string) => {
    stopWhy ??= why;
    onStopRequest(why);
  };
  const listeners = STOP_SIGNALS.map((signal) => [signal, () => requestStop(signal)] as const);
  for (const [signal, listener] of listeners) process.on(signal, listener);
  const launched = process.env[LAUNCHER_ENV] !== undefined && process.channel !== undefined;
  const onDisconnect = () => requestStop('the launcher exited');
  if (launched) {
    process.channel!.unref();
    process.on('disconnect', onDisconnect);
  }

  const locks: Lock[] = [];
  try {
    const holder = { pid: process.pid, socket: socketPath, config: config.file, startedAt: new Date().toISOString() };
    if (config.pointer)
      locks.push(acquireLock(join(config.dir, LOCK_FILE), holder, `keep its config in another directory (its .subnode.sock pointer is the running one's)`));
    locks.push(acquireLock(`${socketPath}.lock`, holder, 'choose another socket (--socket PATH or control.socket)'));
    await claimSocketPath(socketPath);
    return await serve(config, socketPath, options, out, (listener) => {
      onStopRequest = listener;
      if (stopWhy) listener(stopWhy);
    });
  } finally {
    for (const lock of locks) lock.release();
    for (const [signal, listener] of listeners) process.off(signal, listener);
    if (launched) process.off('disconnect', onDisconnect);
  }
}

async function serve(
  config: LoadedConfig,
  socketPath: string,
  options: RunOptions,
  out: (line: string) => void,
  onStop: (listener: (why: string) => void) => void,
): Promise<number> {
  const nodeWidth = Math.max(7, ...config.nodes.map((n) => n.name.length));
  // --json: one JSON object per line through pino (levels by name, structured fields: `event`, or
  // `subnode` with the message), written synchronously to `out` so no line is lost at exit.
  const logger = options.json
    ? pino(
        { base: null, timestamp: false, messageKey: 'subnode', formatters: { level: (label) => ({ level: label }) } },
        { write: (line: string) => out(line.replace(/\n$/, '')) },
      )
    : undefined;
  const log = (at: string, event: SystemEvent): void => {
    if (logger) logger[levelOf(event)]({ at, event });
    else out(eventLine(at, event, nodeWidth));
  };
  const say = (text: string, extra: Record<string, unknown> = {}): void => {
    if (logger) logger.info({ at: new Date().toISOString(), ...extra }, text);
    else out(`${new Date().toISOString()}  ${'subnode'.padEnd(nodeWidth)}  ${text}`);
  };

  const cluster = options.cluster
    ? {
        servers: options.cluster
          .split(',')
          .map((u) => u.trim())
          .filter(Boolean),
        name: options.host ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${process.pid}`,
        // Loaded only for a cluster, as the system loads the cluster code.
        ...(options.credentials ? { credentials: (await import('../cluster/options.js')).credentialsFromFile(resolve(options.credentials)) } : {}),
      }
    : undefined;
  const system = await System.start({ releases: config.releases, cluster });
  const control = new ControlServer(system, config, socketPath, log, say);
  try {
    await Promise.all(
      config.nodes.map(async (spec, i) => {
        try {
          await system.addNode(spec);
          await control.startServers(spec.name);
        } catch (error) {
          throw startFailure(config, i, error);
        }
      }),
    );
    // The first boot's releases are journaled before the system says it has started.
    if (config.releases) await system.releases.flushed();
    await control.listen();
  } catch (error) {
    await system.stop();
    throw error;
  }
  let pointer: string | undefined;
  if (config.pointer) {
    pointer = join(config.dir, POINTER_FILE);
    try {
      writeFileSync(pointer, `${socketPath}\n`);
    } catch (error) {
      say(`cannot write ${pointer} (${(error as NodeJS.ErrnoException).code}): clients need --socket ${socketPath}`);
      pointer = undefined;
    }
  }
  const kinds = config.nodes.map((n) => `${n.name} (${n.kind ?? 'thread'})`).join(', ');
  say(`started ${config.nodes.length} node${config.nodes.length === 1 ? '' : 's'} from ${config.file}: ${kinds}`, { nodes: config.nodes.map((n) => n.name) });
  say(`control socket ${socketPath}${pointer ? ` (pointer: ${pointer})` : ''}; pid ${process.pid}`, { socket: socketPath, pointer, pid: process.pid });

  return new Promise<number>((done) => {
    let stopping = false;
    const shutdown = async (why: string): Promise<void> => {
      if (stopping) {
        // A second request while the orderly stop runs: end everything now.
        say(`stopping at once (${why})`);
        void system.stop().catch(() => {});
        return;
      }
      stopping = true;
      const timeoutMs = options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS;
      say(`stopping (${why})`);
      await control.close();
      let code = 0;
      try {
        await system.stop({ graceful: true, timeoutMs });
      } catch (error) {
        say(`stop: ${(error as Error).message}`);
        code = 1;
      }
      try {
        unlinkSync(socketPath);
      } catch {
        /* already gone */
      }
      if (pointer) {
        try {
          if (readFileSync(pointer, 'utf8').trim() === socketPath) unlinkSync(pointer);
        } catch {
          /* gone or replaced */
        }
      }
      say('stopped');
      done(code);
    };
    control.onStop = () => void shutdown('stop command');
    onStop((why) => void shutdown(why));
  });
}

/** The log level of an event: failures are errors, trouble a warning, the rest information. */
function levelOf(event: SystemEvent): 'error' | 'warn' | 'info' {
  switch (event.type) {
    case 'node_failed':
    case 'node_down':
    case 'node_unresponsive':
    case 'upgrade_rollback':
    case 'checkpoint_failed':
    case 'durable_lost':
      return 'error';
    case 'process_exit':
    case 'capability_denied':
    case 'mailbox_overflow':
    case 'cpu_limit':
    case 'message_dropped':
    case 'global_conflict':
    case 'process_purged':
      return 'warn';
    case 'upgrade_node':
      return event.phase === 'failed' || event.phase === 'rolled_back' ? 'error' : 'info';
    case 'log':
      return event.level === 'error' ? 'error' : event.level === 'warn' ? 'warn' : 'info';
    default:
      return 'info';
  }
}

/** What a node that failed to start means for the person who wrote the config. */
function startFailure(config: LoadedConfig, index: number, error: unknown): CliError {
  const wire = toWire(error);
  const at = `nodes[${index}] (${config.nodes[index]!.name})`;
  if (['load_failed', 'unknown_module', 'unknown_function', 'bad_argument', 'not_allowed', 'name_taken'].includes(wire.code)) {
    return new ConfigError(config.file, [`${at}: ${wire.message}`]);
  }
  return new CliError(`cannot start ${at}: ${wire.message}`);
}
