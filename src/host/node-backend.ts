/**
 * One incarnation of a node: a worker thread running a node entry point (src/node/thread.js, or
 * src/node/isolate.js which runs the kernel in an isolate), or a share of a dense thread
 * (src/host/dense-pool.ts), and the host's end of the wire to it (src/wire/node.ts): control
 * requests with their answers, and the data path. Every kind speaks the same wire. A restart makes
 * a new backend; this one only starts, serves calls and ends.
 */
import { Worker, type MessagePort, type ResourceLimits, type Transferable } from 'node:worker_threads';
import { NodeDown, Timeout, fromWire } from '../errors.js';
import type { Envelope } from '../kernel/signals.js';
import type { ControlArgs, ControlOp, ControlReply, HostToNode, NodeData, NodeFaults, NodeToHost, Result } from '../wire/node.js';
import type { ClusterOptions } from '../cluster/options.js';
import type { Capabilities, Limits } from '../kernel/capabilities.js';
import { timerEntry, type TimerEntry } from '../kernel/timers.js';
import { hostDeadlines } from './deadlines.js';

export interface BackendExit {
  /** The worker's exit code (1 after an uncaught error or running out of memory). */
  code: number;
  error?: Error;
  /** True when the host asked it to stop. */
  requested: boolean;
}

export type NodeKind = 'thread' | 'isolate';

/** Where an incarnation runs: a worker of its own, or its share of a dense thread. */
export interface Incarnation {
  post(message: HostToNode, transfer?: readonly Transferable[]): void;
  /** Ends it as asked; settles once it has ended (and reported its exit). */
  terminate(): Promise<void>;
  /** Ends it as a crash would: its exit is reported as not requested. */
  kill(): void;
}

/** What an incarnation reports. */
export interface IncarnationEvents {
  message(message: NodeToHost): void;
  error(error: Error): void;
  exit(code: number): void;
}

/** Starts an incarnation of a dense node (src/host/dense-pool.ts). */
export interface DenseHost {
  add(data: NodeData, events: IncarnationEvents): Incarnation;
}

export interface NodeBackendOptions {
  node: string;
  kind: NodeKind;
  creation: number;
  capabilities: Capabilities;
  limits: Limits;
  /** Isolate nodes in dense mode: the pool of threads they share. */
  dense?: DenseHost;
  resourceLimits?: ResourceLimits;
  imports: [string, string][];
  /** Code that runs longer than `ms` without returning to the thread's event loop ends the thread (`what` says which limit). */
  watchdog: { ms: number; what: string };
  /** A message of the node's thread (`from`: this incarnation, which answers go to, even before it is ready). */
  onMessage(message: Envelope[] | Extract<NodeToHost, { t: 'route' | 'routeEncoded' | 'event' | 'whois' | 'cluster' }>, from: NodeBackend): void;
  /** The node stopped answering (it is being ended); `ms` is how long it has been busy. */
  onUnresponsive(ms: number): void;
  onExit(exit: BackendExit): void;
  startTimeoutMs?: number;
  /** Testing only: faults to inject into this incarnation. */
  faults?: NodeFaults;
  /** On a host of a cluster (not for a dense node): the node opens a NATS connection of its own with these. */
  nats?: ClusterOptions;
}

/** How long a killed thread may take to end before it is given up on. */
const KILL_GRACE_MS = 2_000;
/** How long ending a node waits for what it sent on its own NATS connection to reach the server. */
const DRAIN_MS = 1_000;

/** How long a control call may wait for its answer unless the caller says otherwise. */
export const CONTROL_TIMEOUT_MS = 30_000;

/**
 * The compiled entry point. Running from TypeScript sources (under vitest) the host still starts
 * the built worker, so `npm test` builds first.
 */
function entryUrl(kind: NodeKind): URL {
  const here = import.meta.url;
  const file = kind === 'isolate' ? 'isolate.js' : 'thread.js';
  return here.endsWith('.ts') ? new URL(`../../dist/src/node/${file}`, here) : new URL(`../node/${file}`, here);
}

/**
 * The process's Node options, less those that describe the main script (`-e CODE`, `--input-type`):
 * a worker that inherited them would refuse to start.
 */
export function workerExecArgv(): string[] | undefined {
  const argv = process.execArgv;
  const describesScript = (arg: string) => /^(-e|-p|--eval|--print|--input-type)(=|$)/.test(arg);
  if (!argv.some(describesScript)) return undefined; // inherited as they are
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-e' || arg === '--eval' || arg === '-p' || arg === '--print') {
      i++;
      continue;
    }
    // Process-wide options a worker may not be given (it has them through the process anyway).
    if (describesScript(arg) || arg === '--no-node-snapshot') continue;
    out.push(arg);
  }
  return out;
}

interface Pending {
  resolve(result: Result<unknown>): void;
  reject(error: Error): void;
  deadline: TimerEntry;
}

export class NodeBackend {
  private stopping = false;
  private exited = false;
  private lastError: Error | undefined;
  private nextId = 0;
  /** Reports the thread's end, once (from its exit event, or when it cannot be ended in time). */
  private exit: (code: number) => void = () => {};
  private readonly pending = new Map<number, Pending>();
  private readonly deadlines = hostDeadlines();

  private thread!: Incarnation;
  /** The node was given its host's cluster options (it drains its own connection before it ends). */
  private hasConnection = false;
  /** The node opened a NATS connection of its own and reads its subject itself. */
  direct = false;
  /** Settles the wait of `terminate` for the node's `drained`. */
  private drained: (() => void) | undefined;

  private constructor(private readonly node: string) {}

  static start(options: NodeBackendOptions): Promise<NodeBackend> {
    // Every node gets a heartbeat cell the host watches: when did the code running now start?
    const heartbeat = new SharedArrayBuffer(4);
    const epoch = Date.now();
    const data: NodeData = {
      node: options.node,
      creation: options.creation,
      capabilities: options.capabilities,
      limits: options.limits,
      heartbeat,
      epoch,
      imports: options.imports,
      ...(options.faults ? { faults: options.faults } : {}),
      ...(options.nats ? { nats: options.nats } : {}),
    };
    const backend = new NodeBackend(options.node);
    backend.hasConnection = options.nats !== undefined;
    const startMs = options.startTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let ready = false;
      const expire = (): void => {
        void backend.terminate();
        reject(new NodeDown(`node '${options.node}' did not start within ${startMs} ms`, { node: options.node }));
      };
      let timer = setTimeout(expire, startMs);
      const events: IncarnationEvents = {
        message: (message) => {
          if (Array.isArray(message)) return options.onMessage(message, backend);
          switch (message.t) {
            case 'reply':
              // The events of serving it first, exactly as if each had come in its own message.
              for (const event of message.events ?? []) options.onMessage({ t: 'event', event }, backend);
              return backend.settle(message.id, message.result);
            case 'booting':
              // A dense thread boots its nodes one at a time: the deadline counts from this node's turn.
              clearTimeout(timer);
              timer = setTimeout(expire, startMs);
              return;
            case 'ready':
              if (ready) return;
              ready = true;
              backend.direct = message.direct === true;
              clearTimeout(timer);
              return resolve(backend);
            case 'drained':
              return backend.drained?.();
            default:
              return options.onMessage(message, backend);
          }
        },
        error: (error) => {
          backend.lastError ??= error;
        },
        exit: (code) => backend.exit(code),
      };
      backend.watch(new Int32Array(heartbeat), epoch, options.watchdog, options.onUnresponsive);
      backend.exit = (code) => {
        if (backend.exited) return;
        backend.exited = true;
        backend.failPending(new NodeDown(`node '${options.node}' went down: ${backend.lastError?.message ?? `exit code ${code}`}`, { node: options.node }));
        if (!ready) {
          clearTimeout(timer);
          reject(new NodeDown(`node '${options.node}' exited while starting: ${backend.lastError?.message ?? `code ${code}`}`, { node: options.node }));
          return;
        }
        options.onExit({ code, error: backend.lastError, requested: backend.stopping });
      };
      backend.thread = options.dense ? options.dense.add(data, events) : workerIncarnation(options, data, events);
    });
  }

  /**
   * One control operation, answered by the node or failed with a typed error: `NodeDown` when the
   * thread ends first, `Timeout` when no answer comes within `timeoutMs`.
   */
  call<K extends ControlOp>(op: K, args: ControlArgs<K>, timeoutMs = CONTROL_TIMEOUT_MS): Promise<ControlReply<K>> {
    if (this.exited) return Promise.reject(new NodeDown(`node '${this.node}' is down`, { node: this.node }));
    const id = ++this.nextId;
    return new Promise<Result<unknown>>((resolve, reject) => {
      const deadline = timerEntry(this.expire, id, { op, timeoutMs });
      this.deadlines.arm(deadline, performance.now() + timeoutMs);
      this.pending.set(id, { resolve, reject, deadline });
      this.post({ t: 'control', id, op, args } as HostToNode);
    }).then((result) => {
      if ('error' in result) throw fromWire(result.error);
      return result.ok as ControlReply<K>;
    });
  }

  /** Hands the node the port `node` offered to send to it on. */
  connect(node: string, port: MessagePort): void {
    if (this.exited) return void port.close();
    this.thread.post({ t: 'connect', node, port }, [port]);
  }

  /** Tells the node that `node` went down: it drops its port to it. */
  disconnect(node: string): void {
    this.post({ t: 'disconnect', node });
  }

  /**
   * What became of the node's offer of a port (`accepted`, `refused`, `remote`), a node or host of
   * the cluster down or up again, the owner it asked for.
   */
  notify(message: Extract<HostToNode, { t: 'accepted' | 'refused' | 'remote' | 'down' | 'hostGone' | 'hostUp' | 'owner' }>): void {
    this.post(message);
  }

  deliver(envelopes: Envelope[], from: string): void {
    this.post(from === 'host' ? envelopes : { t: 'deliver', envelopes, from });
  }

  /**
   * A serialized batch (from another host), decoded on the node's thread. A view into a larger
   * buffer (one batch of a NATS message) would take the whole buffer with it: its own bytes are
   * copied out and handed over.
   */
  deliverEncoded(bytes: Uint8Array, from: string): void {
    if (this.exited) return;
    if (bytes.byteLength === bytes.buffer.byteLength) return this.thread.post({ t: 'deliverEncoded', bytes, from });
    const own = new Uint8Array(bytes); // a copy (a Buffer's slice() would be a view)
    this.thread.post({ t: 'deliverEncoded', bytes: own, from }, [own.buffer]);
  }

  /** Ends the thread; a node with a NATS connection of its own first gets what it sent there to the server (DRAIN_MS at most). */
  async terminate(): Promise<void> {
    this.stopping = true;
    if (this.exited) return;
    if (this.hasConnection) {
      const drained = new Promise<void>((resolve) => {
        this.drained = resolve;
        setTimeout(resolve, DRAIN_MS).unref();
      });
      this.post({ t: 'drain' });
      await drained;
      this.drained = undefined;
    }
    if (!this.exited) await this.thread.terminate();
  }

  private post(message: HostToNode): void {
    if (!this.exited) this.thread.post(message);
  }

  private settle(id: number, result: Result<unknown>): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    this.deadlines.cancel(pending.deadline);
    pending.resolve(result);
  }

  /** A request's deadline passed (the entry's owner is its id). */
  private readonly expire = (entry: TimerEntry): void => {
    const pending = this.pending.get(entry.owner as number);
    if (!pending) return;
    this.pending.delete(entry.owner as number);
    const { op, timeoutMs } = entry.data as { op: ControlOp; timeoutMs: number };
    pending.reject(new Timeout(`node '${this.node}' did not answer ${op} within ${timeoutMs} ms`, { node: this.node, op, timeoutMs }));
  };

  private failPending(error: Error): void {
    for (const { reject, deadline } of this.pending.values()) {
      this.deadlines.cancel(deadline);
      reject(error);
    }
    this.pending.clear();
  }

  /**
   * A thread cannot be interrupted inside a step: if code runs past `limitMs` without returning to
   * the event loop (a step over a thread node's CPU limit, a codeChange that never returns, a
   * getter that loops while a result is copied out of an isolate), the thread is ended and its
   * node restarts per policy. Checked a few times per period.
   */
  private watch(beat: Int32Array, epoch: number, { ms: limitMs, what }: { ms: number; what: string }, onUnresponsive: (ms: number) => void): void {
    const timer = setInterval(
      () => {
        if (this.exited) return clearInterval(timer);
        const started = Atomics.load(beat, 0);
        const busyMs = Date.now() - epoch - started;
        if (!started || busyMs <= limitMs) return;
        clearInterval(timer);
        onUnresponsive(busyMs);
        this.kill(new Error(`${what}: code in node '${this.node}' ran over ${limitMs} ms without yielding (${busyMs} ms); the thread was ended`));
      },
      Math.max(10, Math.min(1_000, limitMs / 4)),
    );
    timer.unref();
  }

  /**
   * Ends the thread as a crash: the exit is reported with `error`, not as requested. A thread stuck
   * where it cannot be interrupted (native code of an isolate) may not end: after a grace period
   * it is reported ended anyway, so the node restarts and no caller waits on it.
   */
  kill(error: Error): void {
    this.lastError = error;
    this.thread.kill();
    setTimeout(() => this.exit(1), KILL_GRACE_MS).unref();
  }
}

/** An incarnation with a worker thread of its own. */
function workerIncarnation(options: NodeBackendOptions, data: NodeData, events: IncarnationEvents): Incarnation {
  const worker = new Worker(entryUrl(options.kind), {
    workerData: data,
    execArgv: workerExecArgv(),
    resourceLimits: options.resourceLimits,
    name: `subnode:${options.node}`,
  });
  worker.on('message', events.message);
  worker.on('error', events.error);
  worker.on('exit', events.exit);
  return {
    post: (message, transfer) => worker.postMessage(message, transfer as Transferable[] | undefined),
    terminate: async () => void (await worker.terminate()),
    kill: () => void worker.terminate(),
  };
}
