/**
 * The client end of the control socket: requests typed by the op list (src/wire/cli.ts), each
 * with a deadline, matched to their answers and streamed lines by id.
 */
import { connect, type Socket } from 'node:net';
import { CliError, DeadlineError, RemoteError, Unreachable } from './errors.js';
import type { ArgsOf, Message, Op, ResultOf, StreamedMessage, StreamOf } from '../wire/cli.js';
import { unreachable, type FoundSocket } from './socket.js';

/** How long a request may wait for its answer unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 60_000;

interface Pending {
  op: Op;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onMessage?: (message: StreamedMessage) => void;
  /** Still wants streamed lines after its answer (events --follow). */
  open: boolean;
  timer?: NodeJS.Timeout;
}

export interface RequestOptions<O extends Op> {
  /** Streamed lines for this request: progress before the answer, events after it. */
  onMessage?: (message: StreamOf<O>) => void;
  /** Deadline for the answer (default: the client's). */
  timeoutMs?: number;
}

export class Client {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer = '';
  private closedWith: Error | undefined;
  private readonly closeListeners = new Set<(error: Error) => void>();

  /** @param timeoutMs the default deadline of each request (the shell sets it per line). */
  private constructor(
    private readonly socket: Socket,
    readonly found: FoundSocket,
    public timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.data(chunk));
    socket.on('error', (error) => this.fail(new Unreachable(`control connection failed: ${error.message}`)));
    socket.on('close', () => this.fail(new CliError('the system closed the control connection (it stopped)')));
  }

  /** Connects within `timeoutMs`, which is also every request's default deadline. */
  static connect(found: FoundSocket, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect(found.path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new DeadlineError(`no answer from the control socket ${found.path} within ${timeoutMs} ms: the system may be hung`, timeoutMs));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Client(socket, found, timeoutMs));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(unreachable(found, error as NodeJS.ErrnoException));
      });
    });
  }

  /**
   * Sends one request; resolves with its result, rejects with a RemoteError carrying the system's
   * error code, or a DeadlineError when no answer comes within the deadline.
   */
  request<O extends Op>(op: O, args: ArgsOf<O>, options: RequestOptions<O> = {}): Promise<ResultOf<O>> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<ResultOf<O>>((resolve, reject) => {
      const pending: Pending = {
        op,
        resolve: resolve as (v: unknown) => void,
        reject,
        onMessage: options.onMessage as ((m: StreamedMessage) => void) | undefined,
        open: op === 'events' && Boolean((args as ArgsOf<'events'>).follow),
      };
      pending.timer = setTimeout(() => {
        if (this.pending.get(id) !== pending) return;
        this.pending.delete(id);
        reject(new DeadlineError(`no answer to ${op} from ${this.found.path} within ${timeoutMs} ms (--timeout MS waits longer)`, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, pending);
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
    if (id === undefined)
      for (const [key, p] of this.pending) {
        if (p.open) this.pending.delete(key);
      }
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
        if (id === null && 'error' in message) this.fail(new RemoteError(message.error.code, message.error.message, message.error.details));
        continue;
      }
      if ('event' in message || 'progress' in message) {
        pending.onMessage?.(message);
        continue;
      }
      clearTimeout(pending.timer);
      if ('error' in message) {
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
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
    for (const listener of this.closeListeners) listener(error);
    this.closeListeners.clear();
  }
}
