/**
 * One incarnation of a node: a worker thread running a node entry point (src/node/thread.js, or
 * src/node/isolate.js which runs the kernel in an isolate) and the host's end of the wire to it
 * (src/wire/node.ts): control requests with their answers, and the data path. Both kinds speak the
 * same wire. A restart makes a new backend; this one only starts, serves calls and ends.
 */
import { Worker, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import { NodeDown, Timeout, fromWire } from '../errors.js';
import type { Envelope } from '../kernel/signals.js';
import type { ControlArgs, ControlOp, ControlReply, HostToNode, NodeData, NodeToHost, Result } from '../wire/node.js';
import type { Capabilities, Limits } from '../kernel/capabilities.js';

export interface BackendExit {
  /** The worker's exit code (1 after an uncaught error or running out of memory). */
  code: number;
  error?: Error;
  /** True when the host asked it to stop. */
  requested: boolean;
}

export type NodeKind = 'thread' | 'isolate';

export interface NodeBackendOptions {
  node: string;
  kind: NodeKind;
  creation: number;
  capabilities: Capabilities;
  limits: Limits;
  peers: Map<string, MessagePort>;
  resourceLimits?: ResourceLimits;
  onMessage(message: Extract<NodeToHost, { t: 'route' | 'event' }>): void;
  onExit(exit: BackendExit): void;
  startTimeoutMs?: number;
}

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

interface Pending {
  resolve(result: Result<unknown>): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class NodeBackend {
  private stopping = false;
  private exited = false;
  private lastError: Error | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    private readonly node: string,
  ) {}

  static start(options: NodeBackendOptions): Promise<NodeBackend> {
    // A thread node with a CPU limit gets a heartbeat cell the host watches (an isolate node
    // enforces its limit itself, per slice).
    const cpuMs = options.kind === 'thread' ? options.limits.cpuMsPerSlice : undefined;
    const heartbeat = cpuMs !== undefined ? new SharedArrayBuffer(4) : undefined;
    const epoch = Date.now();
    const data: NodeData = {
      node: options.node,
      creation: options.creation,
      peers: Object.fromEntries(options.peers),
      capabilities: options.capabilities,
      limits: options.limits,
      heartbeat,
      epoch,
    };
    const worker = new Worker(entryUrl(options.kind), {
      workerData: data,
      transferList: [...options.peers.values()],
      resourceLimits: options.resourceLimits,
      name: `subnode:${options.node}`,
    });
    const backend = new NodeBackend(worker, options.node);
    const startMs = options.startTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        void backend.terminate();
        reject(new NodeDown(`node '${options.node}' did not start within ${startMs} ms`, { node: options.node }));
      }, startMs);
      worker.on('message', (message: NodeToHost) => {
        switch (message.t) {
          case 'reply':
            return backend.settle(message.id, message.result);
          case 'ready':
            if (ready) return;
            ready = true;
            clearTimeout(timer);
            return resolve(backend);
          default:
            return options.onMessage(message);
        }
      });
      worker.on('error', (error) => {
        backend.lastError ??= error;
      });
      if (heartbeat) backend.watch(new Int32Array(heartbeat), epoch, cpuMs!);
      worker.on('exit', (code) => {
        backend.exited = true;
        backend.failPending(new NodeDown(`node '${options.node}' went down: ${backend.lastError?.message ?? `exit code ${code}`}`, { node: options.node }));
        if (!ready) {
          clearTimeout(timer);
          reject(new NodeDown(`node '${options.node}' exited while starting: ${backend.lastError?.message ?? `code ${code}`}`, { node: options.node }));
          return;
        }
        options.onExit({ code, error: backend.lastError, requested: backend.stopping });
      });
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
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Timeout(`node '${this.node}' did not answer ${op} within ${timeoutMs} ms`, { node: this.node, op, timeoutMs }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.post({ t: 'control', id, op, args } as HostToNode);
    }).then((result) => {
      if ('error' in result) throw fromWire(result.error);
      return result.ok as ControlReply<K>;
    });
  }

  /** Hands the node a direct port to a peer node's thread. */
  connect(node: string, port: MessagePort): void {
    if (this.exited) return void port.close();
    this.worker.postMessage({ t: 'connect', node, port } satisfies HostToNode, [port]);
  }

  deliver(envelopes: Envelope[], from: string): void {
    this.post({ t: 'deliver', envelopes, from });
  }

  async terminate(): Promise<void> {
    this.stopping = true;
    if (!this.exited) await this.worker.terminate();
  }

  private post(message: HostToNode): void {
    if (!this.exited) this.worker.postMessage(message);
  }

  private settle(id: number, result: Result<unknown>): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  private failPending(error: Error): void {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this.pending.clear();
  }

  /**
   * A thread cannot be interrupted inside a step: if one runs past the CPU limit, the thread is
   * ended (its node then restarts per policy). Checked a few times per limit period.
   */
  private watch(beat: Int32Array, epoch: number, cpuMs: number): void {
    const timer = setInterval(() => {
      if (this.exited) return clearInterval(timer);
      const started = Atomics.load(beat, 0);
      if (!started || Date.now() - epoch - started <= cpuMs) return;
      clearInterval(timer);
      this.lastError = new Error(`cpu limit: code in node '${this.node}' ran over ${cpuMs} ms without yielding; the thread was ended`);
      void this.worker.terminate();
    }, Math.max(10, cpuMs / 4));
    timer.unref();
  }
}
