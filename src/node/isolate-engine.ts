/**
 * The isolate engine: the kernel and all module code of one node run inside an isolated-vm
 * isolate; the thread it is on is the trusted half. It adds to the shared runtime the isolate, the
 * bridge the kernel calls out through (checked by the boundary, src/node/boundary.ts), and the
 * CPU limit: an entry into the isolate that runs away is cut, and the process that was running
 * dies. isolated-vm stops a call only by a wall-clock timer, so the timer is a generous multiple of
 * the CPU limit (`sliceWallMs`): a loaded machine, which stretches wall time and not CPU time, does
 * not cut legitimate work; the cut reports the CPU time the entry had used. An isolate over its memory limit is disposed by isolated-vm; the node then ends (its link
 * says how: the whole worker for a node with a thread of its own, the node alone in a dense
 * thread) and the host restarts it per policy.
 *
 * Used by src/node/isolate.ts (one node, one worker) and src/node/dense.ts (many nodes, one worker).
 */
import ivm from 'isolated-vm';
import { toWire } from '../errors.js';
import { decodeValue } from './decode.js';
import { capText } from './event-guard.js';
import type { Result } from '../kernel/control-ops.js';
import type { Envelope } from '../kernel/signals.js';
import type { SandboxConfig } from '../sandbox/entry.js';
import { DEFAULT_CPU_MS_PER_SLICE, sliceWallMs } from '../kernel/capabilities.js';
import { Boundary } from './boundary.js';
import type { Engine, NodeRuntime } from './runtime.js';
import { bootKernel, DEFAULT_MEMORY_MB, type Entry } from './kernel-image.js';

type Ref = ivm.Reference<(...args: unknown[]) => unknown>;

const timedOut = (error: unknown): boolean => error instanceof Error && /timed out/i.test(error.message);

export class IsolateEngine implements Engine {
  private readonly cpuMs: number;
  /** What one entry may run, wall time, before it is cut. */
  private readonly wallMs: number;
  private readonly boundary: Boundary;
  private readonly isolate: ivm.Isolate;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly pendingControl = new Map<number, (result: Result<unknown>) => void>();
  private readonly refs: Record<Entry, Ref>;
  private ended = false;
  private readonly runScheduled: () => void;
  private readonly fireTimer: () => void;

  constructor(private readonly runtime: NodeRuntime) {
    const { data } = runtime;
    const limits = data.limits;
    this.cpuMs = limits.cpuMsPerSlice ?? DEFAULT_CPU_MS_PER_SLICE;
    this.wallMs = sliceWallMs(limits);
    this.boundary = new Boundary(
      data.node,
      data.capabilities,
      limits,
      (what) => runtime.emit({ type: 'capability_denied', node: data.node, what: `${what} (stopped at the isolate boundary)` }),
      (text) => runtime.log('warn', text),
      (node) => runtime.inFlight(node),
    );
    this.runScheduled = runtime.busy((): void => {
      this.scheduled = false;
      this.enter(this.refs.runScheduled, []);
    });
    this.fireTimer = runtime.busy((): void => this.enter(this.refs.fireTimer, []));
    const config: SandboxConfig = { node: data.node, creation: data.creation, capabilities: data.capabilities, limits };
    const booted = bootKernel(limits.memoryMb ?? DEFAULT_MEMORY_MB, this.bridge(), config, this.wallMs);
    this.isolate = booted.isolate;
    this.refs = booted.api as IsolateEngine['refs'];
  }

  /** What the kernel may call out to: values leave as strings (src/sandbox/encode.ts), so nothing copied out runs a getter or shares memory. */
  private bridge(): Record<string, ivm.Callback> {
    const { boundary, runtime } = this;
    return {
      outbound: new ivm.Callback((node: unknown, batch: unknown) => {
        const admitted = boundary.outbound(node, batch);
        // True when the channel to that node is full: the kernel inside holds its senders until
        // `credit`. The boundary enforces it too, denying batches over FLOW_CAP (still full then).
        return admitted.length !== 0 ? runtime.outbound(node as string, admitted) : boundary.overCap(node);
      }),
      emit: new ivm.Callback((event: unknown) => {
        const checked = boundary.event(event);
        if (checked) runtime.emit(checked);
      }),
      schedule: new ivm.Callback(() => {
        if (this.scheduled || this.ended) return;
        this.scheduled = true;
        setImmediate(this.runScheduled);
      }),
      setTimer: new ivm.Callback((ms: number) => {
        clearTimeout(this.timer);
        if (this.ended) return;
        this.timer = setTimeout(this.fireTimer, Math.max(0, Math.min(Number(ms) || 0, 2 ** 31 - 1)));
      }),
      clearTimer: new ivm.Callback(() => clearTimeout(this.timer)),
      controlDone: new ivm.Callback((id: number, result: unknown) => {
        const settle = this.pendingControl.get(id);
        this.pendingControl.delete(id);
        settle?.(decodeResult(result) as Result<unknown>);
      }),
    };
  }

  /**
   * Control calls enter the isolate synchronously, on this thread: an async call would run on
   * another thread, and the kernel's callbacks into this one could then run a slice in the middle
   * of the operation. An operation that finishes later (a drain) answers `{ pending }` first.
   */
  control = (op: string, args: unknown[]): Result<unknown> | Promise<Result<unknown>> => {
    if (this.isolate.isDisposed) return { error: { code: 'node_down', message: `isolate node '${this.runtime.node}' is gone` } };
    this.boundary.observe(op, args);
    this.boundary.newSlice();
    const cpu = this.isolate.cpuTime;
    try {
      const text = this.refs.control.applySync(undefined, [op, args], { arguments: { copy: true }, result: { copy: true }, timeout: this.wallMs });
      if (typeof text === 'string' && text.startsWith('!')) return { error: toWire(new Error(capText(text.slice(1)))) };
      const first = decodeResult(text) as Result<unknown> | { pending: number };
      if (!first || typeof first !== 'object' || !('pending' in first)) return first;
      const id = first.pending;
      return new Promise((settle) => this.pendingControl.set(id, settle));
    } catch (error) {
      if (timedOut(error) && !this.isolate.isDisposed) {
        const used = this.cpuMsSince(cpu);
        this.recover(used);
        return {
          error: {
            code: 'timeout',
            message: `${op} ran over this node's CPU limit of ${this.cpuMs} ms and was stopped (${used} ms of CPU in ${this.wallMs} ms)`,
          },
        };
      }
      this.checkAlive(error);
      return { error: toWire(error) };
    }
  };

  deliver = (envelopes: Envelope[], from: string): void => this.enter(this.refs.deliver, [envelopes, from]);

  /** A batch encoded as one string: it crosses as a string and is decoded inside (one copy). */
  deliverEncoded = (batch: string, from: string): void => this.enter(this.refs.deliverEncoded, [batch, from]);

  /** Flow control: the channel to `node` has room again; the kernel inside runs its held senders. */
  credit = (node: string): void => this.enter(this.refs.credit, [node]);

  /** Ends the node: its timers stop and its isolate goes (a dense node that ends while its thread goes on). */
  dispose(): void {
    this.ended = true;
    clearTimeout(this.timer);
    for (const ref of Object.values(this.refs)) ref.release();
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }

  /** Ends the node if its isolate is gone (over its memory limit): the host restarts it per policy. */
  private checkAlive(error?: unknown): void {
    if (!this.isolate.isDisposed || this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    const why = error instanceof Error ? error.message : 'isolate disposed';
    const limit = this.runtime.data.limits.memoryMb ?? DEFAULT_MEMORY_MB;
    this.runtime.link.end(new Error(`isolate node '${this.runtime.node}' ended: ${why} (memory limit ${limit} MiB)`));
  }

  /** Runs into the isolate; a run over the CPU limit is cut and the process that was running dies. */
  private enter(ref: Ref, args: unknown[]): void {
    if (this.isolate.isDisposed) return;
    this.boundary.newSlice();
    const cpu = this.isolate.cpuTime;
    try {
      this.entered(ref.applySync(undefined, args, { arguments: { copy: true }, result: { copy: true }, timeout: this.wallMs }));
    } catch (error) {
      if (timedOut(error) && !this.isolate.isDisposed) return this.recover(this.cpuMsSince(cpu));
      this.checkAlive(error);
      if (!this.isolate.isDisposed) this.runtime.log('error', `kernel error: ${(error as Error).message}`);
    }
  }

  /** The CPU time the isolate used since `from` (a reading of `isolate.cpuTime`), in whole ms. */
  private cpuMsSince(from: bigint): number {
    return Math.round(Number(this.isolate.cpuTime - from) / 1e6);
  }

  /** After a cut: the process that was running dies with `{ cpu_limit }`; the event says what the entry had used. */
  private recover(cpuMs: number): void {
    try {
      this.boundary.newSlice();
      const result = this.entered(
        this.refs.recover.applySync(undefined, [{ cpu_limit: this.cpuMs }], { arguments: { copy: true }, result: { copy: true }, timeout: this.wallMs }),
      );
      const pid = typeof result === 'string' && !result.startsWith('!') ? capText(result, 64) : undefined;
      this.runtime.emit({ type: 'cpu_limit', node: this.runtime.node, pid: pid as never, limitMs: this.cpuMs, cpuMs });
    } catch (error) {
      this.checkAlive(error);
    }
  }

  /** What an entry returned: a string starting with '!' is an error thrown inside, reported as a log line. */
  private entered(result: unknown): unknown {
    if (typeof result === 'string' && result.startsWith('!')) this.runtime.log('error', `kernel error: ${capText(result.slice(1))}`);
    return result;
  }
}

/** A control result from the sandbox (an encoded string), decoded; anything else is an error result. */
function decodeResult(text: unknown): unknown {
  try {
    return decodeValue(text).value;
  } catch (error) {
    return { error: { code: 'not_cloneable', message: `the answer could not be read: ${(error as Error).message}` } };
  }
}
