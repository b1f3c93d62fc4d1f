/**
 * The control socket's server: accepts connections (mode 0600), reads request lines, checks each
 * against the op list (`checkRequest`), runs its handler and writes the answer; streams progress
 * and followed events. It knows nothing of what the ops do (handlers.ts does).
 */
import { chmodSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { toWire } from '../errors.js';
import type { SystemEvent } from '../host/events.js';
import type { System } from '../host/system.js';
import type { LoadedConfig } from './config.js';
import { CliError } from './errors.js';
import { makeHandlers, type Call, type Handler, type Handlers } from './handlers.js';
import { BadRequest, checkRequest, MAX_LINE, type EventRecord, type Id, type Message, type Op, type Request, type WireFailure } from '../wire/cli.js';

const RECENT = 500;

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly followers = new Map<Socket, Set<Id>>();
  private readonly recent: EventRecord[] = [];
  private readonly handlers: Handlers;
  onStop: () => void = () => {};

  constructor(
    private readonly system: System,
    private readonly config: LoadedConfig,
    private readonly path: string,
    log: (at: string, event: SystemEvent) => void,
    say: (text: string) => void,
  ) {
    this.handlers = makeHandlers({
      system,
      config,
      socketPath: path,
      startedAt: new Date(),
      say,
      recent: () => this.recent,
      stop: () => this.onStop(),
    });
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
      await this.system.node(node).startServer(s.module, s.args, { ...(s.name ? { name: s.name } : {}), ...(s.durable ? { durable: s.durable } : {}) });
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
    setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, 500).unref();
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
        this.write(socket, { id: null, error: { code: 'bad_request', message: `request longer than ${MAX_LINE} bytes` } });
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
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch (error) {
        throw new BadRequest(`bad request: not JSON (${(error as Error).message})`, { problems: ['json'] });
      }
      request = checkRequest(parsed);
    } catch (error) {
      return this.write(socket, { id: idOf(line), error: failure(error) });
    }
    const call: Call = {
      id: request.id,
      progress: (progress) => this.write(socket, { id: request.id, progress }),
      follow: () => {
        let ids = this.followers.get(socket);
        if (!ids) this.followers.set(socket, (ids = new Set()));
        ids.add(request.id);
      },
    };
    try {
      // Each op's args were checked against its own fields: the handler for that op takes them.
      const handler = this.handlers[request.op] as Handler<Op>;
      const result = await handler(request.args as never, call);
      this.write(socket, { id: request.id, ok: result ?? null });
    } catch (error) {
      this.write(socket, { id: request.id, error: failure(error) });
    }
  }
}

/** The id of a request that failed its check, so the client can match the error to it. */
function idOf(line: string): Id | null {
  try {
    const id = (JSON.parse(line) as { id?: unknown })?.id;
    return typeof id === 'number' || typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

function failure(error: unknown): WireFailure {
  if (error instanceof BadRequest) return { code: error.code, message: error.message, details: error.details };
  const wire = toWire(error);
  return { code: wire.code, message: wire.message, ...(wire.details !== undefined ? { details: safeDetails(wire.details) } : {}) };
}

function safeDetails(details: unknown): unknown {
  try {
    JSON.stringify(details);
    return details;
  } catch {
    return undefined;
  }
}
