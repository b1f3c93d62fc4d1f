/**
 * The dense threads of one system: a small pool of workers (src/node/dense.ts), each serving many
 * isolate nodes (`dense: true`). A node goes to the thread serving the fewest; a thread starts
 * when every running one serves some node and the pool is not full (one a core), and ends when its
 * last node ends. What each node's incarnation is to its NodeBackend: an `Incarnation` whose
 * messages travel wrapped with the node's name (src/wire/node.ts `HostToDense`, `DenseToHost`).
 *
 * A node killed (operator, watchdog) is ended alone; if its thread does not confirm within a grace
 * period (stuck where it cannot be interrupted), the thread is ended, and with it all its nodes.
 * A thread that dies ends all its nodes, each reported with the thread's error.
 */
import { availableParallelism } from 'node:os';
import { Worker, type Transferable } from 'node:worker_threads';
import type { DenseToHost, HostToDense, NodeData } from '../wire/node.js';
import type { DenseHost, Incarnation, IncarnationEvents } from './node-backend.js';
import { workerExecArgv } from './node-backend.js';

/** How long a thread has to confirm a node ended, or to exit when closed, before it is terminated. */
const END_GRACE_MS = 2_000;

interface Served {
  events: IncarnationEvents;
  /** Settles the end asked for (terminate or kill), with the exit code to report. */
  ending?: { code: number; done: () => void };
}

class DenseThread {
  readonly worker: Worker;
  /** Served nodes by name: one incarnation each (a restart ends the old one before it adds the new). */
  readonly nodes = new Map<string, Served>();
  private ended = false;
  /** Settles when the worker has exited. */
  readonly exited: Promise<void>;

  constructor(
    index: number,
    private readonly gone: (thread: DenseThread) => void,
  ) {
    this.worker = new Worker(entryUrl(), { execArgv: workerExecArgv(), name: `subnode:dense-${index}` });
    let error: Error | undefined;
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (message: DenseToHost) => this.onMessage(message));
    this.worker.on('error', (e) => {
      error ??= e;
    });
    this.worker.on('exit', (code) => {
      if (!this.ended) this.gone(this);
      this.ended = true;
      const served = [...this.nodes.values()];
      this.nodes.clear();
      for (const s of served) {
        if (error) s.events.error(new Error(`its dense thread ended: ${error.message}`));
        s.events.exit(s.ending?.code ?? (code || 1));
        s.ending?.done();
      }
    });
  }

  add(data: NodeData, events: IncarnationEvents): Incarnation {
    const node = data.node;
    const served: Served = { events };
    this.nodes.set(node, served);
    this.post({ t: 'add', data });
    const end = (code: number): Promise<void> =>
      new Promise((done) => {
        if (this.nodes.get(node) !== served || served.ending) return done();
        served.ending = { code, done };
        this.post({ t: 'end', node });
        setTimeout(() => {
          if (this.nodes.get(node) === served) void this.worker.terminate();
        }, END_GRACE_MS).unref();
      });
    return {
      post: (message, transfer) => {
        if (this.nodes.get(node) === served && !served.ending) this.post({ t: 'to', node, message }, transfer);
      },
      terminate: () => end(0),
      kill: () => void end(1),
    };
  }

  /**
   * Ends the thread: asked to close (it ends its nodes and exits once isolated-vm's cleanup on it
   * is done; terminating it at once, right after disposing isolates, could abort the process), and
   * terminated if it has not exited within the grace period.
   */
  close(): Promise<void> {
    if (!this.ended) {
      this.post({ t: 'close' });
      this.ended = true;
      this.gone(this);
    }
    const timer = setTimeout(() => void this.worker.terminate(), END_GRACE_MS);
    return this.exited.finally(() => clearTimeout(timer));
  }

  private post(message: HostToDense, transfer?: readonly Transferable[]): void {
    if (!this.ended) this.worker.postMessage(message, transfer as Transferable[] | undefined);
  }

  private onMessage(message: DenseToHost): void {
    const served = this.nodes.get(message.node);
    if (!served) return;
    switch (message.t) {
      case 'from':
        // What a node said after its end was asked for is of no one's concern.
        if (!served.ending) served.events.message(message.message);
        return;
      case 'exit':
        this.nodes.delete(message.node);
        if (!served.ending) served.events.error(new Error(message.error));
        served.events.exit(served.ending?.code ?? 1);
        served.ending?.done();
        break;
      case 'ended':
        this.nodes.delete(message.node);
        served.events.exit(served.ending?.code ?? 0);
        served.ending?.done();
        break;
    }
    if (!this.nodes.size) this.retire();
  }

  /** A thread with no node left ends (and takes no new one meanwhile). */
  private retire(): void {
    void this.close();
  }
}

export class DensePool implements DenseHost {
  private readonly threads = new Set<DenseThread>();
  /** Threads closing: a stopping system waits for them to exit. */
  private readonly closing = new Set<Promise<void>>();
  private started = 0;

  constructor(private readonly size = Math.max(1, availableParallelism())) {}

  add(data: NodeData, events: IncarnationEvents): Incarnation {
    return this.pick().add(data, events);
  }

  /** Ends every thread (a stopping system, after its nodes). */
  async close(): Promise<void> {
    await Promise.all([...[...this.threads].map((thread) => thread.close()), ...this.closing]);
  }

  /** The thread serving the fewest nodes; a new one while some thread serves any and the pool has room. */
  private pick(): DenseThread {
    let best: DenseThread | undefined;
    for (const thread of this.threads) if (!best || thread.nodes.size < best.nodes.size) best = thread;
    if (best && (best.nodes.size === 0 || this.threads.size >= this.size)) return best;
    const thread = new DenseThread(this.started++, (gone) => {
      this.threads.delete(gone);
      const exited = gone.exited.then(() => void this.closing.delete(exited));
      this.closing.add(exited);
    });
    this.threads.add(thread);
    return thread;
  }
}

/** The compiled entry point (under vitest, from TypeScript sources, the built one: `npm test` builds first). */
function entryUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/src/node/dense.js', here) : new URL('../node/dense.js', here);
}
