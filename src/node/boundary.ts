/**
 * The isolate boundary: everything the trusted half of an isolate node checks about what leaves
 * the sandbox, in one place. Runs on the node's worker thread, outside the isolate. What leaves
 * comes as ONE string per batch, event or result (src/sandbox/encode.ts): a string copies out with
 * no getter and no shared memory, its length is the bytes that crossed, and it is decoded here
 * strictly (src/node/decode.ts), so every check below reads values this half built, once.
 *
 * - Budgets: a batch over BATCH_CHARS, or a slice's batches over SLICE_CHARS, are dropped.
 * - Flow control: a batch for a node whose port holds FLOW_CAP of weight not yet taken in is
 *   denied (the kernel inside should have held its senders at the window; see FLOW_CAP).
 * - Signals: which nodes this node may address (capabilities), which signals may name which
 *   sender (no forged exits or links), and the migration signals (Gone, Flushed, Drained) only for
 *   processes that really moved through this node; each message and exit reason is measured as it
 *   decodes, against `maxMessageBytes`.
 * - Events: only about this node's own processes, always under this node's name, texts capped,
 *   at most EVENT_RATE a second (src/node/event-guard.ts).
 * - Moves: which pids moved in and out, learned from the host's own control requests through the
 *   op table (`observe`), never from the sandbox.
 */
import { allows, DEFAULT_DURABLE_BYTES, type Capabilities, type Limits } from '../kernel/capabilities.js';
import type { ControlArgs, ControlOp } from '../kernel/control-ops.js';
import { estimateSize, HOST_SERVICE } from '../kernel/kernel.js';
import { batchBudget, SLICE_CHARS, VALUE_CHARS } from '../sandbox/encode.js';
import { decodeBatch, decodeValue, Undecodable } from './decode.js';
import { capEvent, capText, EventGate } from './event-guard.js';
import { isPid, nodeOf } from '../kernel/pid.js';
import { Sig, type Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import { callRefusal } from './calls.js';
import { WINDOW } from './peers.js';

/**
 * The most a channel to another node may hold, not yet taken in, before the boundary denies the
 * kernel's batches for it: the window and one slice's budget over it (about 64 windows). An honest
 * kernel holds each process after the step that found the channel full, so it goes over the window
 * by the batch in flight and one step's sends per process not yet held, never a slice's whole
 * budget in practice: it never meets this cap and keeps Erlang's semantics (sends never fail). A
 * kernel that ignores "full" meets it within a slice and its batches are dropped with a
 * `capability_denied` event, so the receiver's port holds at most the cap and a batch whatever the
 * kernel does. Denying, not pausing the node's slices: the kernel is also entered for deliveries
 * and timers, each with a slice's budget, so pausing slices alone would not bound what it sends,
 * and holding back deliveries would only move the pile-up into this half.
 */
export const FLOW_CAP = WINDOW + (SLICE_CHARS >>> 4);

/** What a checkpoint request carries beside its state (key, module, vsn, pid, ref), measured with it. */
const CHECKPOINT_FIELDS = 4096;

/** Signals that name their sender in the envelope's third field. */
const OWN_FROM = new Set<number>([Sig.Link, Sig.Unlink, Sig.Exit, Sig.Monitor, Sig.Demonitor, Sig.Down]);

/** Which kernel events a sandbox may report (the rest only this trusted half reports), checked against the event list. */
const FROM_SANDBOX: Record<KernelEvent['type'], boolean> = {
  process_exit: true,
  migrated_exit: true,
  migration_withdrawn: true,
  module_loaded: true,
  module_purged: true,
  module_deleted: true,
  process_purged: true,
  drain_started: true,
  code_changed: true,
  upgrade_step: true,
  upgrade_rollback: true,
  upgrade_converted: true,
  capability_denied: true,
  mailbox_overflow: true,
  log: true,
  global_register: true,
  global_unregister: true,
  durable_restored: true,
  checkpoint_failed: true,
  cpu_limit: false,
  process_migrated: false,
};

/** An exit reason over the size limit, as the receiver gets it instead. */
export function tooLargeReason(bytes: number, max: number): { error: { name: string; message: string } } {
  return { error: { name: 'TooLarge', message: `an exit reason of ${bytes} bytes, over the limit of ${max}, was replaced` } };
}

type Observer<K extends ControlOp> = (boundary: Boundary, ...args: ControlArgs<K>) => void;

/** What the boundary learns from the host's control requests, checked against the op table. */
const observers: { [K in ControlOp]?: Observer<K> } = {
  migrateIn: (b, snapshots) => {
    for (const snapshot of snapshots) b.movedIn.add(snapshot.pid);
  },
  migrateCommit: (b, pids) => {
    for (const pid of pids) b.movedOut.add(pid);
  },
  // Where this node's moved processes live, from the host: replayed after a restart, and sent again
  // when its host learns a move back (after a partition). They are still forwarded wherever they
  // went, whatever this node may address itself.
  restoreForwards: (b, entries) => {
    for (const [pid] of entries) b.movedOut.add(pid);
  },
};

export class Boundary {
  /** Pids the host moved into this node (it may report them Gone) and out of it (it may send their Flushed). */
  readonly movedIn = new Set<string>();
  readonly movedOut = new Set<string>();

  constructor(
    private readonly node: string,
    private readonly capabilities: Capabilities,
    private readonly limits: Limits,
    /** Reports something stopped here (a `capability_denied` event). */
    private readonly report: (what: string) => void,
    /** Reports what the event rate dropped (a log line). */
    dropped: (text: string) => void = () => {},
    /** Weight sent to a node and not yet taken in (`NodeRuntime.inFlight`), for FLOW_CAP. */
    private readonly inFlight: (node: string) => number = () => 0,
  ) {
    this.gate = new EventGate(dropped);
    this.batchChars = batchBudget(Math.max(limits.maxMessageBytes ?? 0, limits.durableBytes ?? DEFAULT_DURABLE_BYTES));
  }

  /** Learns from a control request the host is about to make. */
  observe(op: string, args: unknown[]): void {
    const observer = observers[op as ControlOp] as ((b: Boundary, ...a: unknown[]) => void) | undefined;
    observer?.(this, ...args);
  }

  private sliceChars = 0;
  private sliceCut = false;
  private readonly gate: EventGate;
  private readonly batchChars: number;

  /** A new entry into the isolate: a new slice budget. */
  newSlice(): void {
    this.sliceChars = 0;
    this.sliceCut = false;
  }

  /** The envelopes of an encoded batch for `node` that may leave; the rest are denied, each with a reason. */
  outbound(node: unknown, text: unknown): Envelope[] {
    if (typeof node !== 'string' || typeof text !== 'string') {
      this.deny('a malformed batch');
      return [];
    }
    if (this.sliceCut) return [];
    if (this.overCap(node)) {
      this.deny(`a batch for node '${capText(node, 64)}', whose channel is over its window by a slice's budget (dropped: the kernel did not hold its senders)`);
      return [];
    }
    if (text.length > this.batchChars) {
      this.deny(`a batch of ${text.length} encoded characters, over the budget of ${this.batchChars} a batch (dropped)`);
      return [];
    }
    this.sliceChars += text.length;
    if (this.sliceChars > SLICE_CHARS) {
      this.sliceCut = true;
      this.deny(`batches over the budget of ${SLICE_CHARS} encoded characters a slice (the rest of the slice's batches dropped)`);
      return [];
    }
    let decoded;
    try {
      decoded = decodeBatch(text);
    } catch (error) {
      this.deny(`an undecodable batch (${(error as Error).message})`);
      return [];
    }
    // Forwards for processes the host moved out of here go wherever they went; everything else only
    // where the capabilities allow.
    const reachable = node === this.node || node === 'host' || allows(this.capabilities.sendTo, node);
    const admitted: Envelope[] = [];
    let unreachable = 0;
    for (const d of decoded) {
      if ('error' in d) {
        this.deny(d.error);
        continue;
      }
      const e = d.fields;
      if (!reachable && !this.movedOut.has(e[1] as string)) {
        unreachable++;
        continue;
      }
      const why = this.refusal(node, e, d.bytes);
      if (why) this.deny(why);
      else admitted.push(e as Envelope);
    }
    if (unreachable) this.deny(`${unreachable} signal(s) to node '${node}'`);
    return admitted;
  }

  /** An encoded event as it may be reported (under this node's name), or undefined if it may not. */
  event(text: unknown): KernelEvent | undefined {
    let event: KernelEvent;
    if (typeof text === 'string' && text.length > VALUE_CHARS) {
      this.deny(`an event of ${text.length} encoded characters`);
      return undefined;
    }
    try {
      event = decodeValue(text).value as KernelEvent;
    } catch (error) {
      if (!(error instanceof Undecodable)) throw error;
      this.deny(`an undecodable event (${error.message})`);
      return undefined;
    }
    if (
      !event ||
      typeof event !== 'object' ||
      Object.getPrototypeOf(event) !== Object.prototype ||
      typeof event.type !== 'string' ||
      !Object.prototype.hasOwnProperty.call(FROM_SANDBOX, event.type) ||
      !FROM_SANDBOX[event.type]
    )
      return undefined;
    // Events about a process speak for this node's processes only (its own, or ones that moved in).
    const pid = (event as { pid?: unknown }).pid;
    if (pid !== undefined && !(isPid(pid) && (nodeOf(pid) === this.node || this.movedIn.has(pid)))) {
      this.deny(`an event about ${capText(String(pid), 64)}`);
      return undefined;
    }
    if (!this.gate.pass(event.type)) return undefined;
    Object.defineProperty(event, 'node', { value: this.node, writable: true, enumerable: true, configurable: true });
    return capEvent(event, (v) => estimateSize(v));
  }

  /** Whether the channel to `node` holds FLOW_CAP or more not yet taken in: its batches are denied, and it stays full. */
  overCap(node: unknown): boolean {
    return typeof node === 'string' && this.inFlight(node) >= FLOW_CAP;
  }

  /** Reports something stopped here, within the node's event rate. */
  private deny(what: string): void {
    if (this.gate.pass('capability_denied')) this.report(capText(what));
  }

  /** Why a decoded envelope may not leave, or undefined; `bytes` measures its payload (replaced if it is an exit reason over the limit). */
  private refusal(node: string, e: unknown[], bytes: number): string | undefined {
    if (typeof e[0] !== 'number' || !Number.isInteger(e[0]) || e[0] < Sig.Message || e[0] > Sig.Reply || typeof e[1] !== 'string') return 'a malformed signal';
    // The third field is the sender for signals that name one, the message for a Message.
    const [sig, target, arg] = e as [number, string, unknown];
    // A Call monitors on behalf of a host's mailbox: only a host sends one.
    if (sig === Sig.Call) return 'a call signal, which only a host sends';
    // A reply to a host's call (the callee's node ended the call's monitor): a message, measured as one.
    if (sig === Sig.Reply) {
      if (e.length !== 4 || typeof arg !== 'string') return 'a malformed reply signal';
      const max = this.limits.maxMessageBytes;
      return max !== undefined && bytes > max ? 'a message over the size limit' : undefined;
    }
    if (sig === Sig.Gone && !this.movedIn.has(target) && !this.movedOut.has(target)) return `a Gone for ${target}, which never moved through this node`;
    if (sig === Sig.Flushed && !this.movedOut.has(target)) return `a Flushed for ${target}, which did not move out of this node`;
    if (sig === Sig.Drained && !this.movedOut.has(target) && !this.movedIn.has(target)) return `a Drained for ${target}, which never moved through this node`;
    // Signals that name their sender must name a process of this node (its own, or one that moved
    // in). A signal for a pid that moved out is a forward, as it came.
    if (OWN_FROM.has(sig) && !this.movedOut.has(target) && (!isPid(arg) || (nodeOf(arg) !== this.node && !this.movedIn.has(arg)))) {
      return `a signal claiming to come from ${String(arg)}`;
    }
    if (sig === Sig.Message) {
      if (node === 'host' && target === HOST_SERVICE) {
        const request = arg as { from?: unknown; $service?: unknown; key?: unknown } | null;
        if (!request || typeof request !== 'object' || !isPid(request.from) || nodeOf(request.from) !== this.node) return 'a service request for another node';
        // A durable server's checkpoint: within the keys granted, measured against its own limit.
        if (request.$service === 'checkpoint') {
          if (typeof request.key !== 'string' || !allows(this.capabilities.durable, request.key))
            return `a checkpoint of durable state ${capText(String(request.key), 64)}`;
          const limit = this.limits.durableBytes ?? DEFAULT_DURABLE_BYTES;
          return bytes > limit + CHECKPOINT_FIELDS ? 'a checkpoint over the durableBytes limit' : undefined;
        }
      }
      const call = this.movedOut.has(target) ? undefined : callRefusal(arg, this.node, this.capabilities, this.movedIn);
      if (call) return call;
      const max = this.limits.maxMessageBytes;
      if (max !== undefined && bytes > max) return 'a message over the size limit';
    }
    const max = this.limits.maxMessageBytes;
    if ((sig === Sig.Exit || sig === Sig.Down) && max !== undefined && bytes > max) {
      // The exit still reaches the linked or monitoring process, with a reason of bounded size.
      e[sig === Sig.Exit ? 3 : 4] = tooLargeReason(bytes, max);
      this.deny(`an exit reason over the size limit (${bytes} bytes, replaced)`);
    }
    return undefined;
  }
}
