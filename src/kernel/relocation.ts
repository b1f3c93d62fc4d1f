/**
 * Migration, node side. A process moves in three steps the host drives: out (here: suspend it at
 * a safe point and take a snapshot; its messages keep queueing), in (there: convert the state with
 * the target's code, start it under the same pid), then commit (here: forward what queued, then a
 * Flushed marker, and keep forwarding) or abort (here: resume it exactly as it was). The pid stays:
 * its home node forwards, so per-sender order holds and nothing is lost. This object owns the
 * forwarding table (the names a moved process left here stay in the process table) and forwards
 * the envelopes Signalling finds for processes that moved away.
 *
 * Vocabulary: the *window* of a move is the time between its snapshot and its commit or abort: the
 * process, suspended here, still takes signals (its messages queue after `snapshotAt`).
 */
import { BadArgument, Refused, Timeout, toWire } from '../errors.js';
import { Behaviour, deepCopy } from './behaviours.js';
import type { CodeOps } from './code-ops.js';
import type { CodeServer } from './code-server.js';
import { Next, Receive } from './directives.js';
import type { KernelPlatform } from './kernel.js';
import { isPid, nodeOf, type Pid } from './pid.js';
import { RefTable } from './ref-table.js';
import { newProcess, type Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import type { Scheduler } from './scheduler.js';
import type { Signalling } from './signalling.js';
import { Sig, type Envelope, type Target } from './signals.js';
import { callMessage } from './host-calls.js';
import type { SysOps } from './sys.js';
import type { Forward, MigrationOutcome, MigrationSnapshot } from './types.js';
import { assertCloneable, errorReason, errorText, sameVsn } from './values.js';

export class Relocation {
  /** Processes that migrated away from this node: pid → where to forward, and where it had come from. */
  private readonly moved = new Map<Pid, { node: string; cameFrom: string | null }>();
  /** Moved out, committed, waiting for the target's Drained marker before sending Flushed: pid → target. */
  private readonly pendingFlush = new Map<Pid, string>();
  /**
   * Processes in a move's window: the watchers and links their snapshot took. Those set or removed
   * in the window follow the process at commit (a monitor, a system.call's among them, must reach
   * the target, or a callee that dies there tells no one).
   */
  private readonly inWindow = new Map<Pid, { watchers: Map<string, Pid>; links: Set<Pid> }>();

  constructor(
    private readonly node: string,
    private readonly platform: KernelPlatform,
    private readonly code: CodeServer,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
    private readonly signals: Signalling,
    private readonly codeOps: CodeOps,
    private readonly sys: SysOps,
  ) {}

  /** Takes snapshots of processes to move; each is suspended until commit or abort. */
  out(pids: Pid[]): MigrationOutcome<MigrationSnapshot>[] {
    return pids.map((pid) => {
      try {
        return { pid, ok: this.snapshot(this.table.require(pid)) };
      } catch (error) {
        return { pid, error: toWire(error) };
      }
    });
  }

  private snapshot(proc: Process): MigrationSnapshot {
    // Refusals marked `retry` are moments, not reasons: the host tries again shortly.
    if (proc.snapshotAt >= 0) throw new Refused(`${proc.pid} is already being moved`, { pid: proc.pid, retry: true });
    if (proc.heldLocal !== null)
      throw new Refused(`${proc.pid} has just arrived and is still receiving from its last node: try again`, { pid: proc.pid, retry: true });
    const b = proc.behaviour;
    const held: unknown[] = [];
    let kind: MigrationSnapshot['kind'];
    let module: string;
    let fn: string | undefined;
    let state: unknown;
    let vsn: unknown;
    if (b?.durable)
      throw new Refused(`${proc.pid} keeps durable state '${b.durable.key}' on this node: stop it and start it there under that key instead`, {
        pid: proc.pid,
      });
    if (b?.kind === 'supervisor')
      throw new Refused(`${proc.pid} is a supervisor: its children are linked to it on this node; move them, not it`, { pid: proc.pid });
    if (b) {
      // A server about to handle a message has it in its pending step: it travels first.
      if (proc.status === 'runnable' && proc.stepFn === b.loop?.anyHandler) held.push(proc.stepArg);
      else if (proc.status !== 'waiting' && proc.status !== 'suspended')
        throw new Refused(`${proc.pid} is ${proc.status}: try again`, { pid: proc.pid, retry: true });
      kind = b.kind;
      module = b.module;
      state = b.state;
      vsn = b.stateVsn;
    } else {
      const wait = proc.wait;
      if (proc.status === 'runnable') throw new Refused(`${proc.pid} is between two steps: try again`, { pid: proc.pid, retry: true });
      const onMigrate = proc.status === 'waiting' && wait instanceof Receive ? wait.onMigrate : null;
      if (!onMigrate) {
        throw new Refused(`${proc.pid} cannot migrate: it is not a server or statem, and it does not wait in a receive with onMigrate()`, { pid: proc.pid });
      }
      const how = this.scheduler.asProcess(proc, () => onMigrate.handler());
      const version = how instanceof Next ? this.code.versionOf(how.fn) : undefined;
      const name = version && Object.keys(version.exports).find((k) => version.exports[k] === (how as Next).fn);
      if (!version || !name) throw new Refused(`${proc.pid}: onMigrate must return next(exportedFunction, ...state)`, { pid: proc.pid });
      kind = 'raw';
      module = version.name;
      fn = name;
      state = (how as Next).args;
      vsn = version.vsn;
    }
    const snapshot: MigrationSnapshot = {
      pid: proc.pid,
      from: this.node,
      moves: proc.moves,
      kind,
      module,
      fn,
      stack: b ? [...b.stack] : [],
      state,
      vsn,
      mailbox: [...held, ...proc.mailbox],
      links: proc.links ? [...proc.links] : [],
      monitors: proc.monitors ? [...proc.monitors] : [],
      watchers: proc.watchers ? [...proc.watchers] : [],
      trapExit: proc.trapExit,
      name: proc.name ?? undefined,
      initial: proc.initial,
    };
    assertCloneable(snapshot);
    this.scheduler.suspend(proc);
    proc.snapshotAt = proc.mailbox.length;
    this.inWindow.set(proc.pid, { watchers: new Map(snapshot.watchers), links: new Set(snapshot.links) });
    return snapshot;
  }

  /** Starts moved processes here under their own pids, their states converted by this node's code. */
  in(snapshots: MigrationSnapshot[], extra?: unknown, timeoutMs = 5_000): MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean }>[] {
    return snapshots.map((snap) => {
      try {
        return { pid: snap.pid, ok: this.arrive(snap, extra, timeoutMs) };
      } catch (error) {
        return { pid: snap?.pid, error: toWire(error) };
      }
    });
  }

  private arrive(snap: MigrationSnapshot, extra: unknown, timeoutMs: number): { from: unknown; to: unknown; awaitDrain: boolean } {
    if (!snap || !isPid(snap.pid)) throw new BadArgument('a migration snapshot needs a pid');
    if (this.table.has(snap.pid)) throw new Refused(`${snap.pid} already runs on node '${this.node}'`, { pid: snap.pid });
    const version = this.code.current(snap.module);
    for (const m of snap.stack) this.code.current(m);
    const to = version.vsn;
    const proc = newProcess(snap.pid, snap.initial);
    // Conversion: the target version's codeChange(fromVsn, state, extra), when the vsn differs.
    let state = snap.state;
    const convert = version.exports.codeChange;
    if (!sameVsn(snap.vsn, to) && typeof convert === 'function') {
      const started = this.platform.now();
      try {
        state = this.scheduler.asProcess(proc, () => convert(snap.vsn, deepCopy(state), extra));
      } catch (error) {
        throw new Refused(`codeChange of ${version} failed while migrating ${snap.pid}: ${errorText(error)}`, { pid: snap.pid, reason: errorReason(error) });
      }
      if (this.platform.now() - started > timeoutMs)
        throw new Timeout(`codeChange of ${version} took over ${timeoutMs} ms while migrating ${snap.pid}`, { pid: snap.pid });
      if (state === undefined) throw new Refused(`codeChange of ${version} returned undefined while migrating ${snap.pid}`, { pid: snap.pid });
      if (snap.kind === 'raw' && !Array.isArray(state))
        throw new Refused(`codeChange of ${version} must return the argument list of ${snap.module}.${snap.fn} for a raw process`, { pid: snap.pid });
    }
    let entry: ((...args: unknown[]) => unknown) | undefined;
    if (snap.kind === 'raw') entry = this.code.entry(snap.module, snap.fn!).fn;
    // Committed from here on.
    this.table.admit(proc);
    // Until now this node sent the pid's messages somewhere else: forwards (if it was on the path)
    // or its own processes' sends (to the pid's home). A Drained marker follows them down the same
    // path; the source says Flushed only after it, so none of them can arrive after newer ones.
    const home = nodeOf(proc.pid);
    const forwardedTo = this.moved.get(proc.pid)?.node ?? (home !== this.node ? home : undefined);
    this.moved.delete(proc.pid);
    if (forwardedTo !== undefined) this.scheduler.post(forwardedTo, [Sig.Drained, proc.pid]);
    proc.cameFrom = snap.from;
    proc.moves = snap.moves + 1;
    proc.heldLocal = [];
    proc.trapExit = snap.trapExit;
    if (snap.links.length) proc.links = new Set(snap.links);
    if (snap.monitors.length) proc.monitors = RefTable.of(snap.monitors);
    if (snap.watchers.length) proc.watchers = RefTable.of(snap.watchers);
    for (const message of snap.mailbox) proc.queue(message);
    if (snap.kind === 'raw') {
      proc.stepFn = entry!;
      proc.stepArgs = state as unknown[];
      this.codeOps.moveTo(proc, version);
      this.scheduler.enqueue(proc);
    } else {
      proc.behaviour = new Behaviour(snap.kind, snap.module, state, to, [...snap.stack]);
      this.sys.adopt(proc);
    }
    this.scheduler.afterExternalWork();
    return { from: snap.vsn, to, awaitDrain: forwardedTo !== undefined };
  }

  /** The moves are done: forward what queued since the snapshots, then keep forwarding. */
  commit(pids: Pid[], to: string, awaitDrain: Pid[] = []): void {
    const waits = new Set(awaitDrain);
    for (const pid of pids) {
      const proc = this.table.get(pid);
      const taken = this.inWindow.get(pid);
      this.inWindow.delete(pid);
      if (!proc || proc.snapshotAt < 0) continue;
      // What changed in the window goes before the messages, as it came: a monitor before its request.
      if (taken) for (const e of this.windowChanges(proc, taken)) this.scheduler.post(to, e);
      const messages = [...proc.mailbox].slice(proc.snapshotAt);
      for (const m of messages) this.scheduler.post(to, [Sig.Message, pid, m]);
      if (waits.has(pid) && !proc.drainSeen) this.pendingFlush.set(pid, to);
      else this.scheduler.post(to, [Sig.Flushed, pid]);
      // It leaves without dying: no exit signals, no DOWN; its links and monitors went with it.
      this.table.moveAway(proc);
      this.scheduler.disarm(proc);
      this.codeOps.moveTo(proc, null);
      if (proc.behaviour) this.sys.forget(proc);
      proc.status = 'exited';
      this.moved.set(pid, { node: to, cameFrom: proc.cameFrom });
    }
    this.scheduler.afterExternalWork();
  }

  /** Monitors and links set or removed since the snapshot `taken`, as the envelopes that make the same change on the target. */
  private windowChanges(proc: Process, taken: { watchers: Map<string, Pid>; links: Set<Pid> }): Envelope[] {
    const changes: Envelope[] = [];
    const watchers = proc.watchers;
    if (watchers) for (const [ref, watcher] of watchers) if (!taken.watchers.has(ref)) changes.push([Sig.Monitor, proc.pid, watcher, ref]);
    for (const [ref, watcher] of taken.watchers) if (!watchers?.has(ref)) changes.push([Sig.Demonitor, proc.pid, watcher, ref]);
    const links = proc.links;
    if (links) for (const pid of links) if (!taken.links.has(pid)) changes.push([Sig.Link, proc.pid, pid]);
    for (const pid of taken.links) if (!links?.has(pid)) changes.push([Sig.Unlink, proc.pid, pid]);
    return changes;
  }

  /** The moves failed: the processes go on here exactly as they were (with what changed in the window). */
  abort(pids: Pid[]): void {
    for (const pid of pids) {
      this.inWindow.delete(pid);
      const proc = this.table.get(pid);
      if (!proc || proc.snapshotAt < 0) continue;
      proc.snapshotAt = -1;
      this.scheduler.resume(proc);
    }
    this.scheduler.afterExternalWork();
  }

  /**
   * A move whose answer was lost and then given up (src/host/migration-unanswered.ts): the copies
   * that arrived here from `from` leave without dying, as on a commit: no exit signals, no DOWN
   * (their links and monitors are the process's, which resumes at `from`). What was sent to a copy
   * here is lost with it. A pid homed here is forwarded to `from` again. Returns the pids withdrawn.
   */
  withdraw(pids: Pid[], from: string): Pid[] {
    const withdrawn: Pid[] = [];
    for (const pid of pids) {
      const proc = this.table.get(pid);
      if (!proc || proc.cameFrom !== from) continue;
      this.table.moveAway(proc);
      this.scheduler.disarm(proc);
      this.codeOps.moveTo(proc, null);
      if (proc.behaviour) this.sys.forget(proc);
      proc.status = 'exited';
      proc.wait = null;
      proc.stepFn = null;
      proc.stepArgs = null;
      proc.dropMail();
      if (nodeOf(pid) === this.node) this.moved.set(pid, { node: from, cameFrom: null });
      this.platform.emit({ type: 'migration_withdrawn', node: this.node, pid, from });
      withdrawn.push(pid);
    }
    this.scheduler.afterExternalWork();
    return withdrawn;
  }

  /**
   * After a restart, or when the host learns a move again (after a partition): the host tells the
   * home node where its migrated processes live now, and the names they left here. A forward this
   * node still has stays (it is the next node on the process's path, which keeps the order).
   */
  restoreForwards(entries: Forward[]): void {
    for (const [pid, node, name] of entries) {
      if (this.table.has(pid) || node === this.node || this.moved.has(pid)) continue;
      this.moved.set(pid, { node, cameFrom: null });
      if (name !== undefined) this.table.restoreMovedName(name, pid);
    }
  }

  /**
   * Sends on an envelope for a process (or a name) that moved away, to where it is now; false when
   * `e` is for none. A Call goes on as the monitor and the message it stands for: the next node
   * takes a Call only from a host.
   */
  forward(e: Envelope): boolean {
    const forward = this.forwardOf(e[1]);
    if (!forward) return false;
    if (e[0] === Sig.Call) {
      this.scheduler.post(forward.node, [Sig.Monitor, forward.pid, e[2], e[3]]);
      this.scheduler.post(forward.node, [Sig.Message, forward.pid, callMessage(e)]);
      return true;
    }
    const copy = e.slice() as Envelope;
    copy[1] = forward.pid;
    this.scheduler.post(forward.node, copy);
    return true;
  }

  /** Where envelopes for a process (or a name) that moved away go now. */
  forwardOf(target: Target): { node: string; pid: Pid } | undefined {
    const pid = isPid(target) ? target : this.table.movedName(target);
    const entry = pid && this.moved.get(pid);
    return entry ? { node: entry.node, pid: pid! } : undefined;
  }

  /** The node a moved process's messages are forwarded to, if it moved away. */
  forwardNode(pid: Pid): string | undefined {
    return this.moved.get(pid)?.node;
  }

  /**
   * A node went away: forwarding into it leads nowhere (messages are dropped here), markers that
   * can no longer come are not waited for, and processes that came from it take local messages.
   * `lost` are processes that had migrated to it.
   */
  nodeDown(node: string, lost: Set<Pid>): void {
    const prefix = `<${node}.`;
    for (const [pid, entry] of this.moved) if (entry.node === node || lost.has(pid)) this.moved.delete(pid);
    this.table.forgetMovedNames((pid) => this.moved.has(pid));
    for (const [pid, target] of this.pendingFlush) {
      if (target === node) this.pendingFlush.delete(pid);
      else if (pid.startsWith(prefix)) {
        this.pendingFlush.delete(pid);
        this.scheduler.post(target, [Sig.Flushed, pid]);
      }
    }
    for (const proc of this.table.values()) if (proc.heldLocal !== null && proc.cameFrom === node) this.flushed(proc.pid);
  }

  /** A migrated process ended: forget its forwarding, and tell the node before us on its path. */
  gone(pid: Pid): void {
    const entry = this.moved.get(pid);
    if (!entry) return;
    this.moved.delete(pid);
    this.table.forgetMovedNames((p) => p !== pid);
    if (entry.cameFrom !== null) this.scheduler.post(entry.cameFrom, [Sig.Gone, pid]);
  }

  /**
   * A node that used to forward to this process now hosts it and forwards no more. True when this
   * node is the one moving it out (the marker is for us); otherwise the marker travels on.
   */
  drained(pid: Pid): boolean {
    const target = this.pendingFlush.get(pid);
    if (target !== undefined) {
      this.pendingFlush.delete(pid);
      this.scheduler.post(target, [Sig.Flushed, pid]);
      return true;
    }
    const proc = this.table.get(pid);
    if (proc && proc.snapshotAt >= 0) {
      proc.drainSeen = true;
      return true;
    }
    return false;
  }

  /** The previous node has forwarded everything: local messages held back go in now, in order. */
  flushed(pid: Pid): void {
    const proc = this.table.get(pid);
    if (!proc || proc.heldLocal === null) return;
    const held = proc.heldLocal;
    proc.heldLocal = null;
    for (const m of held) this.signals.deliverMessage(proc, m);
  }
}
