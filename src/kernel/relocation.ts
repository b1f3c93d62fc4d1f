/**
 * Migration, node side. A process moves in three steps the host drives: out (here: suspend it at
 * a safe point and take a snapshot; its messages keep queueing), in (there: convert the state with
 * the target's code, start it under the same pid), then commit (here: forward what queued, then a
 * Flushed marker, and keep forwarding) or abort (here: resume it exactly as it was). The pid stays:
 * its home node forwards, so per-sender order holds and nothing is lost. This class owns the
 * forwarding tables; it reaches the kernel only through `RelocationHost`.
 */
import { BadArgument, Refused, Timeout, toWire } from '../errors.js';
import { Behaviour, deepCopy, vsnOf } from './behaviours.js';
import type { CodeServer, ModuleVersion } from './code-server.js';
import { Next, type Receive } from './directives.js';
import { isPid, nodeOf, type Pid } from './pid.js';
import { Process } from './proc.js';
import { Sig, type Envelope, type Target } from './signals.js';
import type { MigrationOutcome, MigrationSnapshot } from './types.js';
import { assertCloneable, errorReason, errorText, sameVsn } from './values.js';

/** What migration needs of its kernel. */
export interface RelocationHost {
  readonly node: string;
  readonly code: CodeServer;
  readonly procs: Map<Pid, Process>;
  readonly names: Map<string, Process>;
  now(): number;
  post(node: string, envelope: Envelope): void;
  process(pid: Pid): Process;
  suspend(pid: Pid): void;
  resume(pid: Pid): void;
  asProcess<T>(proc: Process, run: () => T): T;
  moveTo(proc: Process, version: ModuleVersion | null): void;
  disarm(proc: Process): void;
  enqueue(proc: Process): void;
  continueWith(proc: Process, result: unknown): void;
  behaviourLoop(proc: Process): Receive;
  indexBehaviour(proc: Process, from: string | null, to: string | null): void;
  deliverMessage(proc: Process, message: unknown): void;
  afterExternalWork(): void;
}

export class Relocation {
  /** Processes that migrated away from this node: pid → where to forward, and where it had come from. */
  readonly moved = new Map<Pid, { node: string; cameFrom: string | null }>();
  /** Names registered here by processes that migrated away: name → pid (forwarded like the pid). */
  readonly movedNames = new Map<string, Pid>();
  /** Moved out, committed, waiting for the target's Drained marker before sending Flushed: pid → target. */
  readonly pendingFlush = new Map<Pid, string>();

  constructor(private readonly k: RelocationHost) {}


  /** Takes snapshots of processes to move; each is suspended until commit or abort. */
  out(pids: Pid[]): MigrationOutcome<MigrationSnapshot>[] {
    return pids.map((pid) => {
      try {
        return { pid, ok: this.snapshot(this.k.process(pid)) };
      } catch (error) {
        return { pid, error: toWire(error) };
      }
    });
  }

  private snapshot(proc: Process): MigrationSnapshot {
    // Refusals marked `retry` are moments, not reasons: the host tries again shortly.
    if (proc.snapshotAt >= 0) throw new Refused(`${proc.pid} is already being moved`, { pid: proc.pid, retry: true });
    if (proc.heldLocal !== null) throw new Refused(`${proc.pid} has just arrived and is still receiving from its last node: try again`, { pid: proc.pid, retry: true });
    const b = proc.behaviour;
    const held: unknown[] = [];
    let kind: MigrationSnapshot['kind'];
    let module: string;
    let fn: string | undefined;
    let state: unknown;
    let vsn: unknown;
    if (b) {
      // A server about to handle a message has it in its pending step: it travels first.
      if (proc.status === 'runnable' && proc.stepFn === b.loop?.anyHandler) held.push(proc.stepArg);
      else if (proc.status !== 'waiting' && proc.status !== 'suspended') throw new Refused(`${proc.pid} is ${proc.status}: try again`, { pid: proc.pid, retry: true });
      kind = b.kind;
      module = b.module;
      state = b.state;
      vsn = b.stateVsn;
    } else {
      const wait = proc.wait;
      if (proc.status === 'runnable') throw new Refused(`${proc.pid} is between two steps: try again`, { pid: proc.pid, retry: true });
      if (proc.status !== 'waiting' || !wait?.onMigrate) {
        throw new Refused(`${proc.pid} cannot migrate: it is not a server or statem, and it does not wait in a receive with onMigrate()`, { pid: proc.pid });
      }
      const how = this.k.asProcess(proc, () => wait.onMigrate!.handler());
      const version = how instanceof Next ? this.k.code.versionOf(how.fn) : undefined;
      const name = version && Object.keys(version.exports).find((k) => version.exports[k] === (how as Next).fn);
      if (!version || !name) throw new Refused(`${proc.pid}: onMigrate must return next(exportedFunction, ...state)`, { pid: proc.pid });
      kind = 'raw';
      module = version.name;
      fn = name;
      state = (how as Next).args;
      vsn = vsnOf(version);
    }
    const snapshot: MigrationSnapshot = {
      pid: proc.pid,
      from: this.k.node,
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
    this.k.suspend(proc.pid);
    proc.snapshotAt = proc.mailbox.length;
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
    if (this.k.procs.has(snap.pid)) throw new Refused(`${snap.pid} already runs on node '${this.k.node}'`, { pid: snap.pid });
    const version = this.k.code.current(snap.module);
    for (const m of snap.stack) this.k.code.current(m);
    const to = vsnOf(version);
    const proc = new Process(snap.pid, snap.initial);
    // Conversion: the target version's codeChange(fromVsn, state, extra), when the vsn differs.
    let state = snap.state;
    const convert = version.exports.codeChange;
    if (!sameVsn(snap.vsn, to) && typeof convert === 'function') {
      const started = this.k.now();
      try {
        state = this.k.asProcess(proc, () => convert(snap.vsn, deepCopy(state), extra));
      } catch (error) {
        throw new Refused(`codeChange of ${version} failed while migrating ${snap.pid}: ${errorText(error)}`, { pid: snap.pid, reason: errorReason(error) });
      }
      if (this.k.now() - started > timeoutMs) throw new Timeout(`codeChange of ${version} took over ${timeoutMs} ms while migrating ${snap.pid}`, { pid: snap.pid });
      if (state === undefined) throw new Refused(`codeChange of ${version} returned undefined while migrating ${snap.pid}`, { pid: snap.pid });
      if (snap.kind === 'raw' && !Array.isArray(state)) throw new Refused(`codeChange of ${version} must return the argument list of ${snap.module}.${snap.fn} for a raw process`, { pid: snap.pid });
    }
    let entry: ((...args: unknown[]) => unknown) | undefined;
    if (snap.kind === 'raw') entry = this.k.code.entry(snap.module, snap.fn!).fn;
    // Committed from here on.
    this.k.procs.set(proc.pid, proc);
    // Until now this node sent the pid's messages somewhere else: forwards (if it was on the path)
    // or its own processes' sends (to the pid's home). A Drained marker follows them down the same
    // path; the source says Flushed only after it, so none of them can arrive after newer ones.
    const home = nodeOf(proc.pid);
    const forwardedTo = this.moved.get(proc.pid)?.node ?? (home !== this.k.node ? home : undefined);
    this.moved.delete(proc.pid);
    if (forwardedTo !== undefined) this.k.post(forwardedTo, [Sig.Drained, proc.pid]);
    for (const [name, pid] of this.movedNames) {
      if (pid !== proc.pid) continue;
      this.movedNames.delete(name);
      this.k.names.set(name, proc);
      proc.name = name;
    }
    proc.cameFrom = snap.from;
    proc.moves = snap.moves + 1;
    proc.heldLocal = [];
    proc.trapExit = snap.trapExit;
    if (snap.links.length) proc.links = new Set(snap.links);
    if (snap.monitors.length) proc.monitors = new Map(snap.monitors);
    if (snap.watchers.length) proc.watchers = new Map(snap.watchers);
    for (const message of snap.mailbox) proc.mailbox.push(message);
    if (snap.kind === 'raw') {
      proc.stepFn = entry!;
      proc.stepArgs = state as unknown[];
      this.k.moveTo(proc, version);
      this.k.enqueue(proc);
    } else {
      proc.behaviour = new Behaviour(snap.kind, snap.module, state, to, [...snap.stack]);
      for (const m of new Set([snap.module, ...snap.stack])) this.k.indexBehaviour(proc, null, m);
      this.k.continueWith(proc, this.k.behaviourLoop(proc));
    }
    this.k.afterExternalWork();
    return { from: snap.vsn, to, awaitDrain: forwardedTo !== undefined };
  }

  /** The moves are done: forward what queued since the snapshots, then keep forwarding. */
  commit(pids: Pid[], to: string, awaitDrain: Pid[] = []): void {
    const waits = new Set(awaitDrain);
    for (const pid of pids) {
      const proc = this.k.procs.get(pid);
      if (!proc || proc.snapshotAt < 0) continue;
      const messages = [...proc.mailbox].slice(proc.snapshotAt);
      for (const m of messages) this.k.post(to, [Sig.Message, pid, m]);
      if (waits.has(pid) && !proc.drainSeen) this.pendingFlush.set(pid, to);
      else this.k.post(to, [Sig.Flushed, pid]);
      // It leaves without dying: no exit signals, no DOWN; its links and monitors went with it.
      this.k.procs.delete(pid);
      this.k.disarm(proc);
      this.k.moveTo(proc, null);
      if (proc.behaviour) for (const m of new Set([proc.behaviour.module, ...proc.behaviour.stack])) this.k.indexBehaviour(proc, m, null);
      if (proc.name !== null) {
        this.k.names.delete(proc.name);
        this.movedNames.set(proc.name, pid);
      }
      proc.status = 'exited';
      this.moved.set(pid, { node: to, cameFrom: proc.cameFrom });
    }
    this.k.afterExternalWork();
  }

  /** The moves failed: the processes go on here exactly as they were. */
  abort(pids: Pid[]): void {
    for (const pid of pids) {
      const proc = this.k.procs.get(pid);
      if (!proc || proc.snapshotAt < 0) continue;
      proc.snapshotAt = -1;
      this.k.resume(pid);
    }
    this.k.afterExternalWork();
  }

  /** After a restart: the host tells the home node where its migrated processes live now. */
  restoreForwards(entries: [Pid, string][]): void {
    for (const [pid, node] of entries) if (!this.k.procs.has(pid) && node !== this.k.node) this.moved.set(pid, { node, cameFrom: null });
  }

  forwardOf(target: Target): { node: string; pid: Pid } | undefined {
    const pid = isPid(target) ? target : this.movedNames.get(target);
    const entry = pid && this.moved.get(pid);
    return entry ? { node: entry.node, pid: pid! } : undefined;
  }

  /** A migrated process ended: forget its forwarding, and tell the node before us on its path. */
  gone(pid: Pid): void {
    const entry = this.moved.get(pid);
    if (!entry) return;
    this.moved.delete(pid);
    for (const [name, p] of this.movedNames) if (p === pid) this.movedNames.delete(name);
    if (entry.cameFrom !== null) this.k.post(entry.cameFrom, [Sig.Gone, pid]);
  }

  /**
   * A node that used to forward to this process now hosts it and forwards no more. True when this
   * node is the one moving it out (the marker is for us); otherwise the marker travels on.
   */
  drained(pid: Pid): boolean {
    const target = this.pendingFlush.get(pid);
    if (target !== undefined) {
      this.pendingFlush.delete(pid);
      this.k.post(target, [Sig.Flushed, pid]);
      return true;
    }
    const proc = this.k.procs.get(pid);
    if (proc && proc.snapshotAt >= 0) {
      proc.drainSeen = true;
      return true;
    }
    return false;
  }

  /** The previous node has forwarded everything: local messages held back go in now, in order. */
  flushed(pid: Pid): void {
    const proc = this.k.procs.get(pid);
    if (!proc || proc.heldLocal === null) return;
    const held = proc.heldLocal;
    proc.heldLocal = null;
    for (const m of held) this.k.deliverMessage(proc, m);
  }
}
