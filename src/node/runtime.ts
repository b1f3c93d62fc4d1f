/**
 * The half of a node's worker thread that every kind of node shares: the wire to the host
 * (src/wire/node.ts), direct ports to peer nodes, the outbound path with its one-by-one fallback,
 * and serving control requests. An engine (src/node/thread.ts, src/node/isolate.ts) supplies only
 * what differs: where the kernel runs and how a request or a batch gets to it.
 *
 * Vocabulary: the *host* is the main thread; a *peer* is another node's thread, reached by a
 * direct `MessagePort`; *outbound* is a batch of envelopes leaving this node for one destination.
 */
import { deserialize } from 'node:v8';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { estimateSize } from '../kernel/values.js';
import { EventGate } from './event-guard.js';
import { Sig, type Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import type { Result } from '../kernel/control-ops.js';
import type { HostToNode, NodeData, NodeFaults, NodeToHost } from '../wire/node.js';

/** What an engine gives the runtime. */
export interface Engine {
  /** Runs one control operation of the op table. */
  control(op: string, args: unknown[]): Result<unknown> | Promise<Result<unknown>>;
  /** A batch of envelopes for this node's kernel, from `from` (a node name, or 'host'). */
  deliver(envelopes: Envelope[], from: string): void;
}

/** What the runtime gives an engine. */
export class NodeRuntime {
  readonly data = workerData as NodeData;
  readonly node = this.data.node;
  private readonly host = parentPort!;
  private readonly peers = new Map<string, MessagePort>();
  private engine: Engine | undefined;
  private readonly inboundGate = new EventGate((text) => this.log('warn', text));
  /** The heartbeat cell the host watches: when the code running now started (0 when idle). */
  private readonly beat = this.data.heartbeat ? new Int32Array(this.data.heartbeat) : undefined;
  /** Testing only: the faults to inject, when the host gave some. */
  private readonly faults = this.data.faults ? new Faults(this.data.faults) : undefined;

  /**
   * Wraps an entry point of the node's code (a control request, a delivery, a slice, a timer) so
   * the host can see code that never returns: the outermost entry marks the heartbeat cell.
   */
  busy<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => R {
    const beat = this.beat;
    if (!beat) return run;
    const epoch = this.data.epoch!;
    return (...args: A): R => {
      const outer = Atomics.load(beat, 0);
      if (!outer) Atomics.store(beat, 0, Math.max(1, Date.now() - epoch));
      try {
        return run(...args);
      } finally {
        if (!outer) Atomics.store(beat, 0, 0);
      }
    };
  }

  /** Reports an event to the host (the engine decides what may be reported). */
  emit(event: KernelEvent): void {
    this.post({ t: 'event', event });
    this.faults?.event(event);
  }

  log(level: 'log' | 'info' | 'warn' | 'error', text: string): void {
    this.emit({ type: 'log', node: this.node, level, text });
  }

  /**
   * Sends a batch to `node`: over its direct port if there is one, else through the host. A batch
   * that cannot be cloned (something slipped past the send-time checks) is sent one envelope at a
   * time, and only what cannot be cloned is dropped, with a log line.
   */
  outbound(node: string, envelopes: Envelope[]): void {
    const port = this.peers.get(node);
    const send = (batch: Envelope[]): void => (port ? port.postMessage(batch) : this.post({ t: 'route', node, envelopes: batch }));
    try {
      send(envelopes);
    } catch {
      for (const envelope of envelopes) {
        try {
          send([envelope]);
        } catch (error) {
          this.log('error', `a signal for node '${node}' could not be cloned and was dropped: ${(error as Error).message}`);
        }
      }
    }
  }

  /** Starts serving: peers given at start, then the host's messages; tells the host it is ready. */
  serve(engine: Engine): void {
    const deliver = this.busy(engine.deliver);
    const faults = this.faults;
    const control: Engine['control'] = faults ? (op, args) => faults.control(op, () => engine.control(op, args)) : engine.control;
    const max = this.data.limits?.maxMessageBytes;
    this.engine = {
      control: this.busy(control),
      // The host's own sends (system.send) are trusted; what other nodes send is checked.
      deliver: max === undefined ? deliver : (envelopes, from) => deliver(from === 'host' ? envelopes : this.inbound(envelopes, from, max), from),
    };
    for (const [node, port] of Object.entries(this.data.peers)) this.connect(node, port);
    this.host.on('message', (message: HostToNode) => this.onHost(message));
    this.post({ t: 'ready' });
  }

  /**
   * `maxMessageBytes` on delivery too: a node is protected from what other nodes send it, whatever
   * their own limits (the host's own sends are not checked here). A larger message is dropped; a larger exit reason is replaced.
   */
  private inbound(envelopes: Envelope[], from: string, max: number): Envelope[] {
    let kept: Envelope[] | undefined;
    for (let i = 0; i < envelopes.length; i++) {
      const e = envelopes[i]!;
      const at = e[0] === Sig.Message ? 2 : e[0] === Sig.Exit ? 3 : e[0] === Sig.Down ? 4 : -1;
      const bytes = at < 0 ? 0 : estimateSize((e as unknown[])[at], max);
      if (bytes <= max) {
        kept?.push(e);
        continue;
      }
      kept ??= envelopes.slice(0, i);
      const what = at === 2 ? 'a message' : 'an exit reason';
      if (this.inboundGate.pass('capability_denied'))
        this.emit({
          type: 'capability_denied',
          node: this.node,
          what: `${what} from '${from}' over this node's size limit of ${max} bytes (${at === 2 ? 'dropped' : 'replaced'} on delivery)`,
        });
      if (at !== 2) {
        const copy = [...e] as unknown[];
        copy[at] = { error: { name: 'TooLarge', message: `an exit reason over the limit of ${max} bytes was replaced` } };
        kept.push(copy as Envelope);
      }
    }
    return kept ?? envelopes;
  }

  private onHost(message: HostToNode): void {
    const engine = this.engine!;
    switch (message.t) {
      case 'deliver':
        return engine.deliver(message.envelopes, message.from);
      case 'deliverEncoded': {
        let envelopes: Envelope[];
        try {
          envelopes = deserialize(message.bytes) as Envelope[];
        } catch (error) {
          return this.log('error', `a batch from '${message.from}' could not be decoded and was dropped: ${(error as Error).message}`);
        }
        return engine.deliver(envelopes, message.from);
      }
      case 'connect':
        return this.connect(message.node, message.port);
      case 'control': {
        const { id } = message;
        const result = engine.control(message.op, message.args);
        if (result instanceof Promise) void result.then((r) => this.reply(id, r));
        else this.reply(id, result);
      }
    }
  }

  private reply(id: number, result: Result<unknown>): void {
    try {
      this.post({ t: 'reply', id, result });
    } catch (error) {
      // An answer that cannot be cloned (a query returning something odd) still answers.
      this.post({
        t: 'reply',
        id,
        result: { error: { code: 'not_cloneable', message: `the answer could not be copied to the host: ${(error as Error).message}` } },
      });
    }
  }

  private connect(node: string, port: MessagePort): void {
    this.peers.get(node)?.close();
    this.peers.set(node, port);
    port.on('message', (envelopes: Envelope[]) => this.engine!.deliver(envelopes, node));
    // Peer ports must not keep the thread alive: the host ends a node by terminating it.
    port.unref();
  }

  private post(message: NodeToHost): void {
    this.host.postMessage(message);
  }
}

/**
 * Testing only (see `NodeFaults`): hangs or crashes a control operation when it is served, or a
 * plan step when the plan reaches it — a step by the `upgrade_step` event it emits, the purge step
 * (which emits none) by the first `module_purged` while a plan runs.
 */
class Faults {
  private inPlan = false;
  /** A crash injected into a plan step: rethrown once the plan's code returns, out of every catch. */
  private crashed: Error | undefined;

  constructor(private readonly faults: NodeFaults) {}

  control<R>(op: string, run: () => R): R {
    inject(this.faults.hang, this.faults.crash, op, 'control operation');
    if (op !== 'applyUpgrade') return run();
    this.inPlan = true;
    let result: R;
    try {
      result = run();
    } finally {
      this.inPlan = false;
    }
    // Thrown from here it is uncaught (the plan's own catch only rolled the step back): the thread dies.
    if (this.crashed) throw this.crashed;
    return result;
  }

  event(event: KernelEvent): void {
    const step = event.type === 'upgrade_step' ? event.op : event.type === 'module_purged' && this.inPlan ? 'purge' : undefined;
    if (step === undefined) return;
    try {
      inject(this.faults.hangStep, this.faults.crashStep, step, 'plan step');
    } catch (error) {
      this.crashed = error as Error;
      throw error;
    }
  }
}

function inject(hang: readonly string[] | undefined, crash: readonly string[] | undefined, what: string, kind: string): void {
  if (hang?.includes(what)) {
    for (;;) {
      // An injected hang: never returns to the event loop; the host's watchdog ends the thread.
    }
  }
  if (crash?.includes(what)) throw new Error(`injected crash in ${kind} '${what}'`);
}
