/**
 * The isolate boundary: everything the trusted half of an isolate node checks about what leaves
 * the sandbox, in one place. Runs on the node's worker thread, outside the isolate; every value it
 * sees was copied out of the isolate, so the sandbox cannot change it under the check.
 *
 * - Signals: which nodes this node may address (capabilities), which signals may name which
 *   sender (no forged exits or links), and the migration signals (Gone, Flushed, Drained) only for
 *   processes that really moved through this node.
 * - Events: only about this node's own processes, always under this node's name.
 * - Moves: which pids moved in and out, learned from the host's own control requests through the
 *   op table (`observe`), never from the sandbox.
 */
import { allows, type Capabilities, type Limits } from '../kernel/capabilities.js';
import type { ControlArgs, ControlOp } from '../kernel/control-ops.js';
import { estimateSize, HOST_SERVICE } from '../kernel/kernel.js';
import { isPid, nodeOf } from '../kernel/pid.js';
import { Sig, type Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import { callRefusal } from './calls.js';

/** Signals that name their sender in the envelope's third field. */
const OWN_FROM = new Set<number>([Sig.Link, Sig.Unlink, Sig.Exit, Sig.Monitor, Sig.Demonitor, Sig.Down]);

/** Which kernel events a sandbox may report (the rest only this trusted half reports), checked against the event list. */
const FROM_SANDBOX: Record<KernelEvent['type'], boolean> = {
  process_exit: true, migrated_exit: true, module_loaded: true, module_purged: true, module_deleted: true, process_purged: true, drain_started: true,
  code_changed: true, upgrade_step: true, upgrade_rollback: true, capability_denied: true, mailbox_overflow: true, log: true, global_register: true,
  global_unregister: true, cpu_limit: false, process_migrated: false,
};

const WasmMemory = (globalThis as { WebAssembly?: { Memory: abstract new (...args: never[]) => object } }).WebAssembly?.Memory;

type Observer<K extends ControlOp> = (boundary: Boundary, ...args: ControlArgs<K>) => void;

/** What the boundary learns from the host's control requests, checked against the op table. */
const observers: { [K in ControlOp]?: Observer<K> } = {
  migrateIn: (b, snapshots) => { for (const snapshot of snapshots) b.movedIn.add(snapshot.pid); },
  migrateCommit: (b, pids) => { for (const pid of pids) b.movedOut.add(pid); },
  // After a restart the host replays where this node's moved processes live: they are still
  // forwarded wherever they went, whatever this node may address itself.
  restoreForwards: (b, entries) => { for (const [pid] of entries) b.movedOut.add(pid); },
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
    private readonly deny: (what: string) => void,
  ) {}

  /** Learns from a control request the host is about to make. */
  observe(op: string, args: unknown[]): void {
    const observer = observers[op as ControlOp] as ((b: Boundary, ...a: unknown[]) => void) | undefined;
    observer?.(this, ...args);
  }

  /** The envelopes of a batch for `node` that may leave; the rest are denied, each with a reason. */
  admit(node: unknown, envelopes: unknown): Envelope[] {
    if (typeof node !== 'string' || !Array.isArray(envelopes)) {
      this.deny('a malformed batch');
      return [];
    }
    // Forwards for processes the host moved out of here go wherever they went; everything else only
    // where the capabilities allow.
    const reachable = node === this.node || node === 'host' || allows(this.capabilities.sendTo, node);
    const admitted: Envelope[] = [];
    let unreachable = 0;
    for (const e of envelopes as unknown[]) {
      if (!reachable && !(Array.isArray(e) && this.movedOut.has(e[1] as string))) {
        unreachable++;
        continue;
      }
      const why = this.refusal(node, e);
      if (why) this.deny(why);
      else admitted.push(e as Envelope);
    }
    if (unreachable) this.deny(`${unreachable} signal(s) to node '${node}'`);
    return admitted;
  }

  /** The event as it may be reported (under this node's name), or undefined if it may not. */
  event(event: KernelEvent): KernelEvent | undefined {
    if (!event || typeof event !== 'object' || !Object.prototype.hasOwnProperty.call(FROM_SANDBOX, event.type) || !FROM_SANDBOX[event.type]) return undefined;
    // Events about a process speak for this node's processes only (its own, or ones that moved in).
    const pid = (event as { pid?: unknown }).pid;
    if (pid !== undefined && !(isPid(pid) && (nodeOf(pid) === this.node || this.movedIn.has(pid)))) {
      this.deny(`an event about ${String(pid)}`);
      return undefined;
    }
    return { ...event, node: this.node } as KernelEvent;
  }

  private refusal(node: string, e: unknown): string | undefined {
    if (!Array.isArray(e) || typeof e[0] !== 'number' || e[0] < Sig.Message || e[0] > Sig.Drained || typeof e[1] !== 'string') return 'a malformed signal';
    // The third field is the sender for signals that name one, the message for a Message.
    const [sig, target, arg] = e as [number, string, unknown];
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
        const request = arg as { from?: unknown } | null;
        if (!request || typeof request !== 'object' || !isPid(request.from) || nodeOf(request.from) !== this.node) return 'a service request for another node';
      }
      const call = this.movedOut.has(target) ? undefined : callRefusal(arg, this.node, this.capabilities, this.movedIn);
      if (call) return call;
      const max = this.limits.maxMessageBytes;
      if (max !== undefined && estimateSize(arg, max) > max) return 'a message over the size limit';
      if (holdsSharedMemory(arg)) return 'a message holding shared memory';
    }
    return undefined;
  }
}

/** Copied out of an isolate, a SharedArrayBuffer stays shared: a message must not carry one. */
function holdsSharedMemory(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object' || depth > 64) return false;
  if (value instanceof SharedArrayBuffer) return true;
  // A WebAssembly memory copies as a handle to the same memory: never across the boundary.
  if (WasmMemory !== undefined && value instanceof WasmMemory) return true;
  if (ArrayBuffer.isView(value)) return value.buffer instanceof SharedArrayBuffer;
  if (value instanceof Map) {
    for (const [k, v] of value) if (holdsSharedMemory(k, depth + 1) || holdsSharedMemory(v, depth + 1)) return true;
    return false;
  }
  if (value instanceof Set) {
    for (const v of value) if (holdsSharedMemory(v, depth + 1)) return true;
    return false;
  }
  for (const key of Object.keys(value)) if (holdsSharedMemory((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}
