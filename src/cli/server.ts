/**
 * `subnode run CONFIG`: starts the system a config describes, logs its events one per line, and
 * serves the control socket until SIGINT / SIGTERM (or `subnode stop`), then stops every node and
 * removes the socket and its pointer file.
 */
import { chmodSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { BadArgument, NoProcess, Refused, Timeout, UnknownModule, UnknownNode, toWire, type SubnodeError } from '../errors.js';
import type { SystemEvent } from '../host/events.js';
import type { NodeHandle } from '../host/node-handle.js';
import { System } from '../host/system.js';
import type { MigrationResult } from '../host/migration.js';
import type { UpgradePlan } from '../host/upgrade-plan.js';
import { parsePid, type Pid } from '../kernel/pid.js';
import type { Dest } from '../kernel/types.js';
import { loadConfig, type LoadedConfig } from './config.js';
import { CliError, ConfigError } from './errors.js';
import { eventLine } from './format.js';
import { MAX_LINE, type Message, type Names, type NodeRow, type Request, type SystemInfo } from '../wire/cli.js';
import { claimSocketPath, defaultSocketPath, POINTER_FILE } from './socket.js';

export interface RunOptions {
  socket?: string;
  json?: boolean;
  out?: (line: string) => void;
}

const RECENT = 500;

export async function run(configPath: string, options: RunOptions = {}): Promise<number> {
  const out = options.out ?? ((line: string) => { try { process.stdout.write(`${line}\n`); } catch { /* closed */ } });
  const config = await loadConfig(configPath);
  const socketPath = options.socket ? resolve(options.socket) : config.socket ?? defaultSocketPath();
  await claimSocketPath(socketPath);

  const nodeWidth = Math.max(7, ...config.nodes.map((n) => n.name.length));
  const log = (at: string, event: SystemEvent): void => out(options.json ? JSON.stringify({ at, event }) : eventLine(at, event, nodeWidth));
  const say = (text: string, extra: Record<string, unknown> = {}): void =>
    out(options.json ? JSON.stringify({ at: new Date().toISOString(), subnode: text, ...extra }) : `${new Date().toISOString()}  ${'subnode'.padEnd(nodeWidth)}  ${text}`);

  const system = await System.start({});
  const control = new ControlServer(system, config, socketPath, (at, event) => log(at, event), say);
  try {
    await Promise.all(config.nodes.map(async (spec, i) => {
      try {
        await system.addNode(spec);
        await control.startServers(spec.name);
      } catch (error) {
        throw startFailure(config, i, error);
      }
    }));
  } catch (error) {
    await system.stop();
    throw error;
  }

  try {
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
      if (stopping) return;
      stopping = true;
      say(`stopping (${why})`);
      await control.close();
      try { await system.stop(); } catch (error) { say(`stop: ${(error as Error).message}`); }
      try { unlinkSync(socketPath); } catch { /* already gone */ }
      if (pointer) {
        try { if (readFileSync(pointer, 'utf8').trim() === socketPath) unlinkSync(pointer); } catch { /* gone or replaced */ }
      }
      say('stopped');
      done(0);
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGHUP', () => void shutdown('SIGHUP'));
    control.onStop = () => void shutdown('stop command');
  });
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

class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly followers = new Map<Socket, Set<number | string>>();
  private readonly recent: { at: string; event: SystemEvent }[] = [];
  private readonly startedAt = new Date();
  private upgrading = false;
  onStop: () => void = () => {};

  constructor(
    private readonly system: System,
    private readonly config: LoadedConfig,
    private readonly path: string,
    log: (at: string, event: SystemEvent) => void,
    private readonly say: (text: string) => void,
  ) {
    system.on('*', (event) => {
      const at = new Date().toISOString();
      log(at, event);
      this.recent.push({ at, event });
      if (this.recent.length > RECENT) this.recent.shift();
      for (const [socket, ids] of this.followers) for (const id of ids) this.write(socket, { id, at, event });
    });
    system.on('node_restarted', (event) => {
      this.startServers(event.node).catch((error) => say(`${event.node}: restarting its servers failed: ${(error as Error).message}`));
    });
  }

  /** The config's `server: true` start entries of a node. */
  async startServers(node: string): Promise<void> {
    for (const s of this.config.servers.get(node) ?? []) {
      await this.system.node(node).startServer(s.module, s.args, s.name ? { name: s.name } : {});
    }
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.accept(socket));
      server.once('error', (error) => reject(new CliError(`cannot listen on ${this.path}: ${error.message}`)));
      // The socket file is created by bind() inside listen(): a umask of 0177 makes it 0600 from
      // the start, so no other user can connect in the moment before the chmod below.
      const umask = process.umask(0o177);
      try {
        server.listen(this.path, () => {
          try {
            chmodSync(this.path, 0o600);
            const mode = statSync(this.path).mode & 0o777;
            if (mode !== 0o600) throw new Error(`mode is ${mode.toString(8)}`);
          } catch (error) {
            server.close();
            return reject(new CliError(`cannot make ${this.path} private (0600): ${(error as Error).message}`));
          }
          this.server = server;
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.followers.clear();
    for (const socket of this.sockets) socket.end();
    setTimeout(() => { for (const socket of this.sockets) socket.destroy(); }, 500).unref();
    if (server) await new Promise<void>((done) => server.close(() => done()));
  }

  private accept(socket: Socket): void {
    // Node cannot read SO_PEERCRED; the socket's mode (0600) is what keeps other users out.
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) void this.handle(socket, line);
      }
      if (buffer.length > MAX_LINE) {
        this.write(socket, { id: null, error: { code: 'bad_argument', message: `request longer than ${MAX_LINE} bytes` } });
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.followers.delete(socket);
    });
  }

  private write(socket: Socket, message: Message): void {
    if (socket.destroyed || !socket.writable) return;
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (error) {
      text = JSON.stringify({ id: message.id, error: { code: 'refused', message: `the result cannot be sent as JSON: ${(error as Error).message}` } });
    }
    socket.write(`${text}\n`);
  }

  private async handle(socket: Socket, line: string): Promise<void> {
    let request: Request;
    try {
      request = JSON.parse(line) as Request;
      if (!request || typeof request !== 'object' || typeof request.op !== 'string' || (typeof request.id !== 'number' && typeof request.id !== 'string')) {
        throw new Error('expected { id, op, args }');
      }
    } catch (error) {
      return this.write(socket, { id: null, error: { code: 'bad_argument', message: `bad request: ${(error as Error).message}` } });
    }
    const args = request.args && typeof request.args === 'object' ? request.args : {};
    try {
      const result = await this.op(socket, request.id, request.op, args);
      this.write(socket, { id: request.id, ok: result ?? null });
    } catch (error) {
      const wire = toWire(error);
      this.write(socket, { id: request.id, error: { code: wire.code, message: wire.message, ...(wire.details !== undefined ? { details: safeDetails(wire.details) } : {}) } });
    }
  }

  private async op(socket: Socket, id: number | string, op: string, a: Record<string, unknown>): Promise<unknown> {
    switch (op) {
      case 'info': return this.info();
      case 'nodes': return this.nodes();
      case 'ps': return this.ps(a.node);
      case 'modules': return this.modules(a.node);
      case 'names': return this.names();
      case 'load': {
        const node = this.node(a.node);
        const module = text(a.module, 'module');
        const path = text(a.path, 'path');
        const purge = a.purge === undefined ? {} : { purge: a.purge as 'kill' | 'soft' };
        const report = await node.load(module, { path }, purge);
        this.say(`control: loaded ${module} v${report.version} on ${node.name} from ${path}`);
        return report;
      }
      case 'purge':
      case 'soft-purge': {
        const node = this.node(a.node);
        const module = text(a.module, 'module');
        if (op === 'purge' && a.to !== undefined) {
          const to = this.node(a.to);
          const { moved, purge } = await this.withModules(node, () => this.system.purgeToNode(node.name, module, to.name));
          this.say(`control: purge ${module} on ${node.name}: moved ${moved.filter((m) => m.ok).length} process(es) to ${to.name}; ${purge.ok ? `purged [${purge.purged.map((v) => `v${v}`).join(', ')}]${purge.killed.length ? `, killed ${purge.killed.join(' ')}` : ''}` : 'refused'}`);
          return { ...purge, moved };
        }
        const report = await this.withModules(node, () => op === 'purge' ? node.purge(module) : node.softPurge(module));
        this.say(`control: ${op} ${module} on ${node.name}: ${report.ok ? `purged [${report.purged.map((v) => `v${v}`).join(', ')}]${report.killed.length ? `, killed ${report.killed.join(' ')}` : ''}` : `refused, lingering ${report.lingering.join(' ')}`}`);
        return report;
      }
      case 'lingering': {
        const node = this.node(a.node);
        const module = text(a.module, 'module');
        return this.withModules(node, () => node.lingering(module));
      }
      case 'upgrade': return this.upgrade(socket, id, a.plan as UpgradePlan);
      case 'migrate': return this.migrate(a);
      case 'migrate-all': return this.migrateAll(socket, id, a);
      case 'spawn': {
        const node = this.node(a.node);
        const args = a.args === undefined ? [] : a.args;
        if (!Array.isArray(args)) throw new BadArgument('args must be a list');
        const module = text(a.module, 'module');
        const pid = await this.withModules(node, () => node.spawn(module, text(a.fn, 'fn'), args, typeof a.name === 'string' ? { name: a.name } : {}));
        this.say(`control: spawned ${pid} (${module}.${String(a.fn)}) on ${node.name}`);
        return pid;
      }
      case 'kill': {
        const pid = await this.livePid(a.pid);
        await this.system.node(this.system.locate(pid).node).exit(pid, a.reason ?? 'kill');
        this.say(`control: exit signal ${JSON.stringify(a.reason ?? 'kill')} sent to ${pid}`);
        return true;
      }
      case 'send': {
        const dest = await this.dest(a.to);
        this.system.send(dest, a.message);
        return dest;
      }
      case 'call': {
        const dest = await this.dest(a.to);
        const timeout = a.timeoutMs === undefined ? 5_000 : Number(a.timeoutMs);
        if (!(timeout > 0)) throw new BadArgument('timeoutMs must be a number > 0');
        try {
          return { reply: await this.system.call(dest, a.request, timeout) };
        } catch (error) {
          if ((error as SubnodeError)?.code !== 'timeout') throw error;
          throw new Timeout(`no reply from ${a.to} within ${timeout} ms: is it a server (\`subnode ps\` shows what it runs), and busy? --timeout MS waits longer`, { dest });
        }
      }
      case 'events': {
        const last = a.last === undefined ? (a.follow ? 0 : 50) : Number(a.last);
        const events = last > 0 ? this.recent.slice(-last) : [];
        if (a.follow) {
          let ids = this.followers.get(socket);
          if (!ids) this.followers.set(socket, (ids = new Set()));
          ids.add(id);
        }
        return { events, following: Boolean(a.follow) };
      }
      case 'stop':
        setImmediate(() => this.onStop());
        return { stopping: true, pid: process.pid };
      default:
        throw new BadArgument(`unknown op ${JSON.stringify(op)}`);
    }
  }

  private info(): SystemInfo {
    return {
      pid: process.pid,
      config: this.config.file,
      socket: this.path,
      startedAt: this.startedAt.toISOString(),
      uptimeMs: Date.now() - this.startedAt.getTime(),
      nodes: this.system.nodes().length,
    };
  }

  private async nodes(): Promise<NodeRow[]> {
    return Promise.all(this.system.nodes().map(async (n) => {
      const running = n.status === 'running';
      const handle = this.system.node(n.name);
      const [processes, modules] = running
        ? await Promise.all([handle.processes().then((p) => p.length, () => null), handle.modules().then((m) => m.length, () => null)])
        : [null, null];
      return { ...n, processes, modules };
    }));
  }

  private async ps(name: unknown) {
    const handles = name === undefined || name === null ? this.running() : [this.node(name)];
    const lists = await Promise.all(handles.map(async (h) => (await h.processes()).map((p) => ({ node: h.name, ...p }))));
    return lists.flat();
  }

  private async modules(name: unknown) {
    const handles = name === undefined || name === null ? this.running() : [this.node(name)];
    const lists = await Promise.all(handles.map(async (h) => (await h.modules()).map((m) => ({ node: h.name, ...m }))));
    return lists.flat();
  }

  private async names(): Promise<Names> {
    const names: Names = { nodes: this.system.nodes().map((n) => n.name), modules: {}, pids: [] };
    await Promise.all(this.running().map(async (h) => {
      const [modules, processes] = await Promise.all([h.modules().catch(() => []), h.processes().catch(() => [])]);
      names.modules[h.name] = modules.map((m) => m.name);
      for (const p of processes) if (names.pids.length < 10_000) names.pids.push(p.pid);
    }));
    return names;
  }

  private running(): NodeHandle[] {
    return this.system.nodes().filter((n) => n.status === 'running').map((n) => this.system.node(n.name));
  }

  private async upgrade(socket: Socket, id: number | string, plan: UpgradePlan): Promise<unknown> {
    if (!plan || typeof plan !== 'object') throw new BadArgument('upgrade needs a plan');
    if (this.upgrading) throw new Refused('another upgrade is running; wait for it to finish');
    this.upgrading = true;
    const all = this.system.nodes();
    const which = plan.nodes ?? '*';
    const total = Array.isArray(which) ? which.length
      : all.filter((n) => n.status === 'running' && !(typeof which === 'object' && Array.isArray(which.except) && which.except.includes(n.name))).length;
    let done = 0;
    const off = this.system.on('upgrade_node', (event) => {
      if (event.phase !== 'start') done++;
      this.write(socket, { id, progress: { node: event.node, phase: event.phase, done, total } });
    });
    try {
      const report = await this.system.upgrade(plan);
      this.say(`control: upgrade of ${plan.modules.map((m) => m.module).join(', ')}: ${report.nodes.map((n) => `${n.node} ${n.status}`).join(', ') || 'no nodes'}`);
      return report;
    } catch (error) {
      throw this.explain(error);
    } finally {
      off();
      this.upgrading = false;
    }
  }

  private async migrate(a: Record<string, unknown>): Promise<unknown> {
    const pid = await this.livePid(a.pid);
    const target = this.node(a.node);
    const result = await this.system.migrate(pid, target.name, a.extra === undefined ? {} : { extra: a.extra });
    this.say(`control: migrated ${pid} from ${result.from} to ${result.to}${result.vsn && result.vsn.from !== result.vsn.to ? ` (state converted ${JSON.stringify(result.vsn.from)} -> ${JSON.stringify(result.vsn.to)})` : ''}`);
    return result;
  }

  /** Every process using a module (or every process) on one node, moved to another in batches, with progress. */
  private async migrateAll(socket: Socket, id: number | string, a: Record<string, unknown>): Promise<MigrationResult[]> {
    const from = this.node(a.from);
    const to = this.node(a.to);
    const batch = a.batch === undefined ? 100 : Number(a.batch);
    if (!(Number.isInteger(batch) && batch > 0)) throw new BadArgument('batch must be an integer > 0');
    let pids: Pid[] | undefined;
    if (a.module === undefined) pids = (await from.processes()).map((p) => p.pid).filter((pid) => this.system.locate(pid).node === from.name);
    else await this.withModules(from, () => from.lingering(text(a.module, 'module'))); // an unknown module fails here, with the node's list
    const results = await this.system.migrateAll({
      from: from.name,
      to: to.name,
      ...(a.module !== undefined ? { module: text(a.module, 'module') } : { pids }),
      ...(a.extra !== undefined ? { extra: a.extra } : {}),
      batch,
      onProgress: (done, total) => this.write(socket, { id, progress: { node: to.name, phase: 'migrated', done, total } }),
    });
    const moved = results.filter((r) => r.ok).length;
    this.say(`control: migrated ${moved} of ${results.length} process${results.length === 1 ? '' : 'es'} from ${from.name} to ${to.name}`);
    return results;
  }

  /** A node by name, or an UnknownNode error that lists the nodes there are. */
  private node(name: unknown): NodeHandle {
    if (typeof name !== 'string' || !name) throw new BadArgument('a node name is required');
    try {
      return this.system.node(name);
    } catch (error) {
      throw this.explain(error);
    }
  }

  private explain(error: unknown): unknown {
    const e = error as SubnodeError;
    if (e?.code === 'unknown_node' && !/\(nodes:/.test(e.message)) {
      return new UnknownNode(`${e.message} (nodes: ${this.system.nodes().map((n) => n.name).join(', ') || 'none'})`, e.details);
    }
    return error;
  }

  /** Runs `fn`; an UnknownModule error gets the node's module list added. */
  private async withModules<T>(node: NodeHandle, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if ((error as SubnodeError)?.code !== 'unknown_module') throw error;
      const names = await node.modules().then((m) => m.map((x) => x.name), () => []);
      throw new UnknownModule(`${(error as Error).message} (modules on '${node.name}': ${names.join(', ') || 'none'})`, (error as SubnodeError).details);
    }
  }

  /** A pid of a live process, or an error saying which part is wrong. */
  private async livePid(value: unknown): Promise<Pid> {
    const parts = parsePid(value);
    if (!parts) throw new BadArgument(`${JSON.stringify(value)} is not a pid: pids look like <node.N> (or <node.N.C> after a restart)`);
    const pid = value as Pid;
    const known = this.system.nodes().map((n) => n.name);
    if (!known.includes(parts.node)) {
      throw new UnknownNode(`pid ${pid}: no node named '${parts.node}' (nodes: ${known.join(', ')})`, { node: parts.node });
    }
    // A process that migrated runs elsewhere; its home node only forwards to it.
    const where = this.system.locate(pid).node;
    if (!(await this.system.node(where).processInfo(pid))) {
      throw new NoProcess(`no process ${pid} on node '${where}': it has ended, or never existed (\`subnode ps ${where}\` lists the live ones)`, { pid });
    }
    return pid;
  }

  /** A pid, `name@node` (a registered name) or `global:name`, checked to be alive. */
  private async dest(value: unknown): Promise<Dest> {
    if (typeof value !== 'string' || !value) throw new BadArgument('a destination is required: a pid, NAME@NODE or global:NAME');
    if (value.startsWith('global:')) {
      const name = value.slice(7);
      const pid = this.system.whereis(name);
      if (!pid) throw new NoProcess(`no process is registered globally as '${name}'`, { name });
      return pid;
    }
    const at = value.lastIndexOf('@');
    if (at > 0 && !value.startsWith('<')) {
      const name = value.slice(0, at);
      const node = this.node(value.slice(at + 1));
      const pid = await node.whereis(name);
      if (!pid) throw new NoProcess(`no process registered as '${name}' on node '${node.name}'`, { name, node: node.name });
      return pid;
    }
    return this.livePid(value);
  }
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || !value) throw new BadArgument(`${field} is required`);
  return value;
}

function safeDetails(details: unknown): unknown {
  try {
    JSON.stringify(details);
    return details;
  } catch {
    return undefined;
  }
}
