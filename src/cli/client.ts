/** The client end of the control socket: requests with ids, answers and streamed lines. */
import { connect, type Socket } from 'node:net';
import { CliError, RemoteError } from './errors.js';
import type { Message } from '../wire/cli.js';
import { unreachable, type FoundSocket } from './socket.js';

type Streamed = Extract<Message, { event: unknown } | { progress: unknown }>;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onMessage?: (message: Streamed) => void;
  /** Still wants streamed lines after its answer (events --follow). */
  open: boolean;
}

export class Client {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer = '';
  private closedWith: Error | undefined;
  private readonly closeListeners = new Set<(error: Error) => void>();

  private constructor(private readonly socket: Socket, readonly found: FoundSocket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.data(chunk));
    socket.on('error', (error) => this.fail(new CliError(`control connection failed: ${error.message}`)));
    socket.on('close', () => this.fail(new CliError('the system closed the control connection (it stopped)')));
  }

  static connect(found: FoundSocket, timeoutMs = 5_000): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect(found.path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CliError(`no answer from the control socket ${found.path} within ${timeoutMs} ms: the system may be hung`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Client(socket, found));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(unreachable(found, error as NodeJS.ErrnoException));
      });
    });
  }

  /**
   * Sends one request; resolves with its `ok`, rejects with a RemoteError carrying the system's
   * error code. Streamed lines for it (progress, followed events) go to `onMessage`.
   */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}, onMessage?: (message: Streamed) => void): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onMessage, open: op === 'events' && Boolean(args.follow) });
      this.socket.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** Called once when the connection ends, with the reason. */
  onClose(listener: (error: Error) => void): () => void {
    if (this.closedWith) {
      listener(this.closedWith);
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Stops streaming to a request's listener (ends a follow). */
  forget(id?: number): void {
    if (id === undefined) for (const [key, p] of this.pending) { if (p.open) this.pending.delete(key); }
    else this.pending.delete(id);
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private data(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (!line.trim()) continue;
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        continue;
      }
      const id = message.id;
      const pending = typeof id === 'number' ? this.pending.get(id) : undefined;
      if (!pending) {
        if (id === null && 'error' in message) this.fail(new RemoteError(message.error.code, message.error.message));
        continue;
      }
      if ('event' in message || 'progress' in message) {
        pending.onMessage?.(message as Streamed);
      } else if ('error' in message) {
        this.pending.delete(id as number);
        pending.reject(new RemoteError(message.error.code, message.error.message, message.error.details));
      } else {
        if (!pending.open) this.pending.delete(id as number);
        pending.resolve(message.ok);
      }
    }
  }

  private fail(error: Error): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const listener of this.closeListeners) listener(error);
    this.closeListeners.clear();
  }
}
