/**
 * One incarnation of a node: a worker thread running a node entry point (src/node/thread, or
 * src/node/isolate which runs the kernel in an isolate), its comlink control proxy and its
 * data path. Both kinds speak the same protocol. A restart makes a new backend; this one only
 * starts and ends.
 */
import { MessageChannel, Worker, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import { releaseProxy, wrap, type Remote } from 'comlink';
import { portEndpoint } from '../wire/comlink-port.js';
import { NodeDown } from '../errors.js';
import type { Envelope } from '../kernel/signals.js';
import type { HostToNode, NodeControl, NodeToHost, NodeData } from '../wire/node.js';
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
  onMessage(message: NodeToHost): void;
  onExit(exit: BackendExit): void;
  startTimeoutMs?: number;
}

/**
 * The compiled entry point. Running from TypeScript sources (under vitest) the host still starts
 * the built worker, so `npm test` builds first.
 */
function entryUrl(kind: NodeKind): URL {
  const here = import.meta.url;
  const file = kind === 'isolate' ? 'isolate.js' : 'thread.js';
  return here.endsWith('.ts') ? new URL(`../../dist/src/node/${file}`, here) : new URL(`../node/${file}`, here);
}

export class NodeBackend {
  private stopping = false;
  private exited = false;
  private lastError: Error | undefined;

  private constructor(
    readonly worker: Worker,
    readonly control: Remote<NodeControl>,
    private readonly controlPort: MessagePort,
  ) {}

  static start(options: NodeBackendOptions): Promise<NodeBackend> {
    const { port1, port2 } = new MessageChannel();
    // A thread node with a CPU limit gets a heartbeat cell the host watches (an isolate node
    // enforces its limit itself, per slice).
    const cpuMs = options.kind === 'thread' ? options.limits.cpuMsPerSlice : undefined;
    const heartbeat = cpuMs !== undefined ? new SharedArrayBuffer(4) : undefined;
    const epoch = Date.now();
    const data: NodeData = {
      node: options.node,
      creation: options.creation,
      control: port2,
      peers: Object.fromEntries(options.peers),
      capabilities: options.capabilities,
      limits: options.limits,
      heartbeat,
      epoch,
    };
    const worker = new Worker(entryUrl(options.kind), {
      workerData: data,
      transferList: [port2, ...options.peers.values()],
      resourceLimits: options.resourceLimits,
      name: `subnode:${options.node}`,
    });
    const backend = new NodeBackend(worker, wrap<NodeControl>(portEndpoint(port1)), port1);
    return new Promise((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        void backend.terminate();
        reject(new NodeDown(`node '${options.node}' did not start within ${options.startTimeoutMs ?? 10_000} ms`, { node: options.node }));
      }, options.startTimeoutMs ?? 10_000);
      worker.on('message', (message: NodeToHost) => {
        if (message.t === 'ready' && !ready) {
          ready = true;
          clearTimeout(timer);
          resolve(backend);
        } else options.onMessage(message);
      });
      worker.on('error', (error) => { backend.lastError ??= error; });
      if (heartbeat) backend.watch(new Int32Array(heartbeat), epoch, cpuMs!, options.node);
      worker.on('exit', (code) => {
        backend.exited = true;
        backend.controlPort.close();
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
   * A thread cannot be interrupted inside a step: if one runs past the CPU limit, the thread is
   * ended (its node then restarts per policy). Checked a few times per limit period.
   */
  private watch(beat: Int32Array, epoch: number, cpuMs: number, node: string): void {
    const timer = setInterval(() => {
      if (this.exited) return clearInterval(timer);
      const started = Atomics.load(beat, 0);
      if (!started || Date.now() - epoch - started <= cpuMs) return;
      clearInterval(timer);
      this.lastError = new Error(`cpu limit: code in node '${node}' ran over ${cpuMs} ms without yielding; the thread was ended`);
      void this.worker.terminate();
    }, Math.max(10, cpuMs / 4));
    timer.unref();
  }

  deliver(envelopes: Envelope[], from: string): void {
    if (this.exited) return;
    const message: HostToNode = { t: 'deliver', envelopes, from };
    this.worker.postMessage(message);
  }

  async terminate(): Promise<void> {
    this.stopping = true;
    this.control[releaseProxy]();
    if (!this.exited) await this.worker.terminate();
    this.controlPort.close();
  }
}
