/**
 * Signals of one node: routing sends, queueing envelopes and applying them in order — messages
 * into mailboxes (or straight to a waiting receive), links, monitors, exit signals, DOWN — and
 * ending processes, which is where exit signals and DOWNs come from. Envelopes for processes
 * that migrated away are forwarded; envelopes for other nodes go to the scheduler's outbox.
 */
import { BadArgument, NoProcess, NotAllowed, TooLarge } from '../errors.js';
import { allows, type Capabilities, type Limits, type MailboxLimit } from './capabilities.js';
import type { CodeOps } from './code-ops.js';
import type { KernelPlatform } from './kernel.js';
import { isPid, nodeOf, type Pid } from './pid.js';
import { RefTable } from './ref-table.js';
import type { Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import { RingQueue } from './queue.js';
import type { Relocation } from './relocation.js';
import type { Scheduler } from './scheduler.js';
import { Sig, type Envelope } from './signals.js';
import { callMessage, endHostCall, fromHost } from './host-calls.js';
import type { SysOps } from './sys.js';
import type { Dest } from './types.js';
import { assertCloneable, estimateSize, isQuietReason, safeString } from './values.js';
import { copyableReason } from './reasons.js';
import { Denials } from './denials.js';

export class Signalling {
  private readonly queue = new RingQueue<Envelope>();
  /** True while queued envelopes are being applied: a local send then queues behind them. */
  private applying = false;
  /** The node whose envelopes are being applied, or null for local signals. */
  private inboundFrom: string | null = null;
  private readonly maxMessageBytes: number | undefined;
  private readonly mailboxLimit: MailboxLimit | undefined;
  private relocation!: Relocation;
  private codeOps!: CodeOps;
  private sys!: SysOps;
  /** Processes whose ending is being reported, with their copyable reason (see `terminate`). */
  private readonly endings = new Map<Process, unknown>();
  private readonly denials: Denials;

  constructor(
    private readonly node: string,
    private readonly platform: KernelPlatform,
    private readonly capabilities: Capabilities,
    limits: Limits,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
  ) {
    this.maxMessageBytes = limits.maxMessageBytes;
    this.mailboxLimit = limits.mailbox;
    this.denials = new Denials(node, platform);
  }

  connect(relocation: Relocation, codeOps: CodeOps, sys: SysOps): void {
    this.relocation = relocation;
    this.codeOps = codeOps;
    this.sys = sys;
  }

  // ---- sending --------------------------------------------------------------------------------

  /** Sends from module code: by pid, by local name, `{ name, node }` or `{ global }`. */
  send(dest: Dest, message: unknown): void {
    if (typeof dest === 'string') {
      // The hot path: a live local pid, found without parsing it.
      const proc = this.table.get(dest as Pid);
      if (proc) return this.deliverLocal(proc, message);
    }
    if (isPid(dest)) return this.sendPid(dest, message);
    if (typeof dest === 'string') {
      const proc = this.table.named(dest);
      if (proc) return this.deliverLocal(proc, message);
      const forward = this.relocation.forwardOf(dest);
      if (!forward) throw new NoProcess(`no process registered as '${dest}' on node '${this.node}'`, { name: dest });
      this.checkMessage(message);
      return this.scheduler.post(forward.node, [Sig.Message, forward.pid, message]);
    }
    if (dest && typeof dest === 'object') {
      if ('global' in dest && typeof dest.global === 'string') {
        const pid = this.table.global(dest.global);
        if (!pid) throw new NoProcess(`no process registered globally as '${dest.global}'`, { global: dest.global });
        return this.sendPid(pid, message);
      }
      if ('name' in dest && typeof dest.name === 'string' && typeof dest.node === 'string') {
        if (dest.node === this.node) return this.send(dest.name, message);
        this.checkReach(dest.node, 'send to');
        this.checkMessage(message);
        return this.scheduler.post(dest.node, [Sig.Message, dest.name, message]);
      }
    }
    throw new BadArgument(`cannot send to ${safeString(dest)}: use a pid, a name, { name, node } or { global }`);
  }

  private sendPid(pid: Pid, message: unknown): void {
    const proc = this.table.get(pid);
    if (proc) return this.deliverLocal(proc, message);
    const node = nodeOf(pid);
    if (node === this.node) {
      const forward = this.relocation.forwardNode(pid);
      if (forward === undefined) return; // a dead local process: dropped, as in Erlang
      this.checkMessage(message);
      return this.scheduler.post(forward, [Sig.Message, pid, message]);
    }
    this.checkReach(node, 'send to');
    this.checkMessage(message);
    // A reply to a host's call ends the call's monitor here and tells the host so (src/kernel/host-calls.ts).
    this.scheduler.post(node, endHostCall(this.scheduler.running(), pid, message) ?? [Sig.Message, pid, message]);
  }

  /** A process may only address nodes its capabilities name (its own node and the host always). */
  checkReach(node: string, what: string): void {
    if (node === this.node || node === 'host' || allows(this.capabilities.sendTo, node)) return;
    this.deny(this.scheduler.running()?.pid, `${what} node '${node}'`);
    throw new NotAllowed(`node '${this.node}' may not ${what} node '${node}'`, { node });
  }

  /** Reports a refusal to the host (`capability_denied`), bounded per second. */
  deny(pid: Pid | undefined, what: string): void {
    this.denials.report(pid, what);
  }

  /** A message for another node: cloneable, within the size limit, and no confused deputy's call. */
  checkMessage(message: unknown): void {
    assertCloneable(message);
    this.checkCall(message);
    const max = this.maxMessageBytes;
    if (max !== undefined && estimateSize(message, max) > max) {
      throw new TooLarge(`message is larger than this node's limit of ${max} bytes`, { limit: max });
    }
  }

  /**
   * A message of the call shape (`{ $call, from }`) tells its receiver where to reply. A node may
   * only name as the caller a process it may address itself: otherwise a peer it may talk to
   * would answer, on its behalf, a node it may not reach (a confused deputy). `server.call`
   * stamps `from` with the caller's own pid; a raw message claiming another is checked here.
   */
  private checkCall(message: unknown): void {
    if (typeof message !== 'object' || message === null || !('$call' in message)) return;
    const from = (message as { from?: unknown }).from;
    const pid = typeof from === 'object' && from !== null ? (from as { pid?: unknown }).pid : undefined;
    if (!isPid(pid)) throw new BadArgument(`a call's from.pid must be a pid, got ${safeString(pid)}`);
    this.checkReach(nodeOf(pid), 'have replies sent to');
  }

  /** Sends to a live process of this node, already looked up. */
  sendTo(proc: Process, message: unknown): void {
    this.deliverLocal(proc, message);
  }

  private deliverLocal(proc: Process, message: unknown): void {
    this.scheduler.charge();
    const max = this.maxMessageBytes;
    if (max !== undefined && estimateSize(message, max) > max) {
      throw new TooLarge(`message is larger than this node's limit of ${max} bytes`, { limit: max });
    }
    // While signals are queued, a message must queue behind them to keep per-pair order.
    if (this.applying) this.queue.push([Sig.Message, proc.pid, message]);
    else this.deliverMessage(proc, message);
  }

  // ---- queueing and applying ------------------------------------------------------------------

  /** Routes a signal: local ones are queued and applied in order, remote ones batched per node. */
  signal(envelope: Envelope): void {
    const to = envelope[1];
    if (isPid(to)) {
      const node = nodeOf(to);
      if (node !== this.node) return this.scheduler.post(node, envelope);
    }
    this.queue.push(envelope);
    this.drain();
  }

  /** Nothing queued or being applied: a local signal may be applied directly, in order. */
  idle(): boolean {
    return !this.applying && this.queue.length === 0;
  }

  /** A signal for a process of this node (its own or one that moved in), applied here whatever node its pid names. */
  signalHere(envelope: Envelope): void {
    this.queue.push(envelope);
    this.drain();
  }

  /** Applies every queued envelope (unless already applying: the outer drain gets to them). */
  drain(): void {
    if (this.applying) return;
    this.applying = true;
    try {
      for (let e = this.queue.shift(); e; e = this.queue.shift()) this.apply(e);
    } finally {
      this.applying = false;
    }
  }

  /**
   * Envelopes from another node (or the host), applied at once with their source known: a process
   * that just arrived by migration takes only its previous node's forwards until that node is done.
   */
  deliverFrom(from: string, envelopes: Envelope[]): void {
    this.drain();
    const saved = this.inboundFrom;
    this.inboundFrom = from;
    try {
      for (const envelope of envelopes) {
        this.queue.push(envelope);
        this.drain();
      }
    } finally {
      this.inboundFrom = saved;
    }
  }

  /** After a step was stopped from outside, no drain is running any more. */
  abandon(): void {
    this.applying = false;
  }

  /** Applies one signal to a process of this node. */
  private apply(e: Envelope): void {
    if (e[0] === Sig.Gone) return this.relocation.gone(e[1]);
    if (e[0] === Sig.Drained && this.relocation.drained(e[1])) return;
    if (e[0] === Sig.Call && !fromHost(this.inboundFrom)) return this.deny(undefined, `a call signal from node '${String(this.inboundFrom)}'`);
    // For a process that moved away: on to where it is now.
    if (!this.table.lookup(e[1]) && this.relocation.forward(e)) return;
    switch (e[0]) {
      case Sig.Flushed:
        return this.relocation.flushed(e[1]);
      case Sig.Message: {
        const proc = this.table.lookup(e[1]);
        if (proc) this.deliverMessage(proc, e[2]);
        return;
      }
      case Sig.Link: {
        const proc = this.table.get(e[1]);
        if (proc) (proc.links ??= new Set()).add(e[2]);
        else this.signal([Sig.Exit, e[2], e[1], 'noproc', 1]);
        return;
      }
      case Sig.Unlink:
        this.table.get(e[1])?.links?.delete(e[2]);
        return;
      case Sig.Exit: {
        const proc = this.table.get(e[1]);
        if (proc) this.exitSignal(proc, e[2], e[3], e[4] === 1);
        return;
      }
      case Sig.Monitor: {
        const proc = this.table.lookup(e[1]);
        if (proc) (proc.watchers ??= new RefTable()).set(e[3], e[2]);
        else this.signal([Sig.Down, e[2], e[1] as Pid, e[3], 'noproc']);
        return;
      }
      case Sig.Demonitor:
        this.table.lookup(e[1])?.watchers?.delete(e[3]);
        return;
      case Sig.Call: {
        // As a Monitor, then a Message: the monitor is set before the callee can see the request.
        const proc = this.table.lookup(e[1]);
        if (!proc) return this.signal([Sig.Down, e[2], e[1] as Pid, e[3], 'noproc']);
        (proc.watchers ??= new RefTable()).set(e[3], e[2]);
        this.deliverMessage(proc, callMessage(e));
        return;
      }
      case Sig.Reply: {
        // For a host's mailbox; a process gets it as the message it stands for.
        const proc = this.table.lookup(e[1]);
        if (proc) this.deliverMessage(proc, { $reply: e[2], value: e[3] });
        return;
      }
      case Sig.Down: {
        // Only the watched process's own DOWN counts: a ref alone proves nothing.
        const watcher = this.table.get(e[1]);
        if (watcher?.monitors?.get(e[3]) === e[2] || (watcher?.monitors?.has(e[3]) && !isPid(watcher.monitors.get(e[3])))) {
          watcher!.monitors!.delete(e[3]);
          this.deliverMessage(watcher!, { type: 'DOWN', ref: e[3], pid: e[2], reason: e[4] });
        }
        return;
      }
    }
  }

  private exitSignal(proc: Process, from: Pid, reason: unknown, linked: boolean): void {
    if (linked) {
      // A link's exit only counts while the link exists; it ends the link either way.
      if (!proc.links?.delete(from)) return;
    }
    if (!linked && reason === 'kill') return this.terminate(proc, 'killed');
    if (proc.trapExit) return this.deliverMessage(proc, { type: 'EXIT', from, reason });
    if (reason === 'normal' && !(from === proc.pid && !linked)) return;
    this.terminate(proc, reason);
  }

  /** Puts a message in a process's mailbox, or runs the receive it waits in when that matches. */
  deliverMessage(proc: Process, message: unknown): void {
    // Just arrived by migration: local senders wait until the previous node has forwarded all it held.
    if (proc.heldLocal !== null && this.inboundFrom !== proc.cameFrom) {
      proc.heldLocal.push(message);
      return;
    }
    if (proc.status === 'waiting' && this.scheduler.offer(proc, message)) return;
    const limit = this.mailboxLimit;
    if (limit !== undefined && proc.mailbox.length >= limit.max) return this.overflow(proc, limit);
    proc.queue(message);
  }

  /** A full mailbox: drop the newcomer (reported once per 1000 drops) or end the receiver. */
  private overflow(proc: Process, limit: MailboxLimit): void {
    if (limit.overflow === 'kill') {
      this.platform.emit({ type: 'mailbox_overflow', node: this.node, pid: proc.pid, action: 'killed', dropped: 0 });
      return this.terminate(proc, { mailbox_overflow: limit.max });
    }
    if (proc.dropped++ % 1000 === 0) this.platform.emit({ type: 'mailbox_overflow', node: this.node, pid: proc.pid, action: 'dropped', dropped: proc.dropped });
  }

  // ---- endings --------------------------------------------------------------------------------

  /**
   * Ends a process: links get exit signals, watchers get DOWN, names and timers are freed. The
   * reason is made copyable first (module code, a getter in it, runs only then, before anything
   * changes); then every signal is queued before any is applied, so a step cut by the CPU limit
   * in the middle loses none of them: `finishEndings` completes an ending that was cut.
   */
  terminate(proc: Process, reason: unknown): void {
    if (proc.status === 'exited') return;
    if (proc === this.scheduler.running()) {
      proc.pendingExit ??= { reason };
      return;
    }
    const told = typeof reason === 'object' || typeof reason === 'symbol' || typeof reason === 'function' ? copyableReason(reason) : reason;
    proc.status = 'exited';
    this.endings.set(proc, told);
    this.table.remove(proc);
    this.scheduler.disarm(proc);
    proc.wait = null;
    proc.stepFn = null;
    proc.stepArgs = null;
    proc.dropMail();
    this.codeOps.moveTo(proc, null);
    if (proc.behaviour) this.sys.forget(proc);
    if (this.table.releaseGlobal(proc)) this.platform.emit({ type: 'global_unregister', node: this.node, name: proc.globalName!, pid: proc.pid });
    this.report(proc, told);
    this.drain();
  }

  /** Ends being reported when a cut stopped them: after `recover`, every process that ended is told. */
  finishEndings(): void {
    for (const [proc, reason] of this.endings) this.report(proc, reason);
  }

  /** Queues what an ending tells; each link and monitor is forgotten once its signal is queued, so a resumed report does not repeat them. */
  private report(proc: Process, reason: unknown): void {
    const links = proc.links;
    if (links)
      for (const pid of links) {
        this.enqueue([Sig.Exit, pid, proc.pid, reason, 1]);
        links.delete(pid);
      }
    const watchers = proc.watchers;
    if (watchers)
      for (const [ref, watcher] of watchers) {
        this.enqueue([Sig.Down, watcher, proc.pid, ref, reason]);
        watchers.delete(ref);
      }
    const monitors = proc.monitors;
    if (monitors)
      for (const [ref, watched] of monitors) {
        this.enqueue([Sig.Demonitor, watched, proc.pid, ref]);
        monitors.delete(ref);
      }
    if (proc.cameFrom !== null) {
      this.scheduler.post(proc.cameFrom, [Sig.Gone, proc.pid]);
      this.platform.emit({ type: 'migrated_exit', node: this.node, pid: proc.pid });
    }
    if (!isQuietReason(reason)) this.platform.emit({ type: 'process_exit', node: this.node, pid: proc.pid, initial: proc.initial, reason });
    this.endings.delete(proc);
  }

  /** A signal queued (local) or put in the outbox (remote), not applied yet. */
  private enqueue(envelope: Envelope): void {
    const to = envelope[1];
    if (isPid(to)) {
      const node = nodeOf(to);
      if (node !== this.node) return this.scheduler.post(node, envelope);
    }
    this.queue.push(envelope);
  }

  /** Queues `noconnection` exits and DOWNs for links and monitors to processes `gone` says are lost; applied at the next drain. */
  nodeDown(gone: (pid: Pid) => boolean): void {
    for (const proc of this.table.values()) {
      if (proc.links) for (const pid of proc.links) if (gone(pid)) this.queue.push([Sig.Exit, proc.pid, pid, 'noconnection', 1]);
      if (proc.monitors) for (const [ref, pid] of proc.monitors) if (gone(pid)) this.queue.push([Sig.Down, proc.pid, pid, ref, 'noconnection']);
      if (proc.watchers) for (const [ref, pid] of proc.watchers) if (gone(pid)) proc.watchers.delete(ref);
    }
  }
}
