/**
 * Durable server state, the node's half: a server started with `durable: { key?, checkpoint }`
 * has its state checkpointed to the host's store under a stable key (its registered name unless
 * `key` is given; never its pid), and a server started later under that key — after a node
 * restart, a host restart, or a supervisor's restart — resumes from the last state saved.
 *
 * Checkpoints leave as a request to the host's service process (`{ $service: 'checkpoint' }`), the
 * path every crossing value takes: checked against the node's capability (`durable`: the keys it
 * may persist) and size limit (`limits.durableBytes`) here, again at an isolate's boundary, and
 * again on the host, which files it under this node's name only.
 *
 * Policies (`checkpoint`):
 * - `'message'`: after each handled message that changed the state (a new state object), the
 *   server sends it and waits for the host to say it is durable before it answers the call and
 *   takes its next message. An acknowledged call is never lost. A checkpoint that fails or is not
 *   confirmed within `timeoutMs` ends the server with `{ checkpoint_failed: reason }` (the caller
 *   gets no reply; the store keeps the last durable state). A `{ stop, reply, state }` answers at
 *   once: the server is ending, and its final state is not checkpointed.
 * - `{ everyMs: N }`: the latest state is sent at most every N ms, and N ms after a change at the
 *   latest, and when the server ends: a crash of the node loses at most the last N ms (plus the
 *   write in flight). Failures are reported (`checkpoint_failed`), the server goes on.
 * - `'shutdown'`: saved in an orderly stop (`system.stop({ graceful })`, SIGTERM, `subnode stop`,
 *   `node.orderlyStop`), when the host collects unsaved states once the processes have stopped.
 *
 * The node keeps the last state each key reached (`saved`; under `'message'` the last one the host
 * confirmed): a server its supervisor restarts on this node resumes from it; the host gives the
 * node its stored states when it boots. Keys at once are bounded by `limits.durableStates`.
 */
import { BadArgument, NotAllowed, Refused, TooLarge } from '../errors.js';
import { deepCopy, vsnOf, type Behaviour, type From } from './behaviours.js';
import { allows, DEFAULT_DURABLE_BYTES, KIND_DEFAULTS, type Capabilities, type Limits } from './capabilities.js';
import type { ModuleVersion } from './code-server.js';
import { After, Clause, Receive } from './directives.js';
import type { KernelPlatform } from './kernel.js';
import type { Pid } from './pid.js';
import type { Process } from './proc.js';
import { ExitNow, type Scheduler } from './scheduler.js';
import { Sig } from './signals.js';
import type { SpawnOptions } from './types.js';
import { assertCloneable, errorReason, errorText, estimateSize, sameVsn, safeString } from './values.js';

/** When a durable server's state is saved. */
export type Checkpoint = 'message' | 'shutdown' | { everyMs: number };

/** A server's durable declaration (`server.start(mod, args, { name, durable })`, a start entry's `durable`). */
export interface DurableOptions {
  /** The stable key its state is kept under on its node; default its registered name. */
  key?: string;
  checkpoint: Checkpoint;
  /** `'message'`: how long a checkpoint may take to become durable (default 5000 ms). */
  timeoutMs?: number;
}

/** A saved state as it crosses between a node and the host. */
export interface DurableState {
  key: string;
  /** The callback module that produced it, and its vsn then. */
  module: string;
  vsn: unknown;
  state: unknown;
}

/** A checkpoint request to the host's service process. */
export interface CheckpointRequest extends DurableState {
  $service: 'checkpoint';
  ref: string;
  from: Pid;
  /** Answer with `{ $serviceReply: ref, ok | error }` once durable (policy `'message'`). */
  ack: boolean;
}

/** A live durable server's bookkeeping (on its Behaviour). */
export interface Durable {
  key: string;
  checkpoint: Checkpoint;
  timeoutMs: number;
  /** When its state was last sent (platform clock). */
  sentAt: number;
  /** `'message'`: replies held until the state they follow is durable. */
  replies: [From, unknown][];
}

const FIELDS = new Set(['key', 'checkpoint', 'timeoutMs']);
/** What a key may be: checked in the kernel and again on the host. */
export const DURABLE_KEY = /^[A-Za-z0-9_.:@-]{1,200}$/;
/** The host's service process (api.ts's HOST_SERVICE, not imported: api.ts imports this file's users). */
const HOST_SERVICE = '<host.0>' as Pid;

/** Checks a declaration strictly (unknown fields are errors) and resolves its key. */
export function checkDurable(value: unknown, name: string | undefined): { key: string; checkpoint: Checkpoint; timeoutMs: number } {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new BadArgument(`durable must be { key?, checkpoint: 'message' | 'shutdown' | { everyMs }, timeoutMs? }, got ${safeString(value)}`);
  const d = value as Record<string, unknown>;
  for (const field of Object.keys(d)) if (!FIELDS.has(field)) throw new BadArgument(`durable.${field}: unknown field (known: key, checkpoint, timeoutMs)`);
  const c = d.checkpoint;
  const everyMs = c && typeof c === 'object' && !Array.isArray(c) ? (c as Record<string, unknown>) : undefined;
  if (everyMs) {
    for (const field of Object.keys(everyMs)) if (field !== 'everyMs') throw new BadArgument(`durable.checkpoint.${field}: unknown field (known: everyMs)`);
    if (typeof everyMs.everyMs !== 'number' || !(everyMs.everyMs > 0) || !Number.isFinite(everyMs.everyMs))
      throw new BadArgument(`durable.checkpoint.everyMs must be a number of ms > 0, got ${safeString(everyMs.everyMs)}`);
  } else if (c !== 'message' && c !== 'shutdown') {
    throw new BadArgument(`durable.checkpoint must be 'message', 'shutdown' or { everyMs: N }, got ${safeString(c)}`);
  }
  if (d.timeoutMs !== undefined && !(typeof d.timeoutMs === 'number' && d.timeoutMs > 0 && Number.isFinite(d.timeoutMs)))
    throw new BadArgument(`durable.timeoutMs must be a number of ms > 0, got ${safeString(d.timeoutMs)}`);
  const key = d.key ?? name;
  if (key === undefined) throw new BadArgument('a durable server needs a stable key: give it a name, or durable.key (a pid is not stable across restarts)');
  if (typeof key !== 'string' || !DURABLE_KEY.test(key))
    throw new BadArgument(`durable.key must be 1-200 letters, digits and _ . : @ -, got ${safeString(key)}`);
  const checkpoint: Checkpoint = everyMs ? { everyMs: everyMs.everyMs as number } : (c as 'message' | 'shutdown');
  return { key, checkpoint, timeoutMs: (d.timeoutMs as number | undefined) ?? 5_000 };
}

interface Saved {
  module: string;
  vsn: unknown;
  state: unknown;
}

interface Entry extends Saved {
  /** Reached but not yet sent to the host. */
  dirty: boolean;
  /** The last state the host confirmed durable (or gave at boot), under `'message'` what a restart here gets back after a failed checkpoint. */
  confirmed: Saved | undefined;
}

export class Durables {
  /** The last state each key reached on this node, or was restored to by the host. */
  private readonly saved = new Map<string, Entry>();
  /** Keys held by live servers. */
  private readonly held = new Map<string, Process>();
  private refs = 0;

  constructor(
    private readonly node: string,
    private readonly platform: KernelPlatform,
    private readonly capabilities: Capabilities,
    private readonly limits: Limits,
    private readonly scheduler: Scheduler,
    /** A send from the running process (a held reply). */
    private readonly sendFrom: (pid: Pid, message: unknown) => void,
  ) {}

  /** A start's declaration, checked (kind, shape, key, capability, key in use) before the process exists. */
  declare(kind: string, options: SpawnOptions): Durable | null {
    if (options.durable === undefined) return null;
    if (kind !== 'server') throw new BadArgument(`durable state is for servers, not a ${kind}`);
    const { key, checkpoint, timeoutMs } = checkDurable(options.durable, options.name);
    if (!allows(this.capabilities.durable, key)) {
      this.platform.emit({ type: 'capability_denied', node: this.node, what: `durable state '${key}'` });
      throw new NotAllowed(`node '${this.node}' may not keep durable state '${key}'`, { key });
    }
    const holder = this.held.get(key);
    if (holder) throw new Refused(`durable state '${key}' is in use by ${holder.pid}`, { key, pid: holder.pid });
    const most = this.limits.durableStates ?? KIND_DEFAULTS.thread.limits.durableStates;
    if (!this.saved.has(key) && this.saved.size >= most)
      throw new Refused(`node '${this.node}' keeps ${this.saved.size} durable states, its durableStates limit: forget one first`, { key, limit: most });
    return { key, checkpoint, timeoutMs, sentAt: this.platform.now(), replies: [] };
  }

  /**
   * The state a new server under `d.key` resumes from, converted by the current version's
   * `codeChange(savedVsn, state, undefined)` when the vsns differ; undefined when none is saved.
   * Throws (the start fails; the saved state stays) if the conversion fails.
   */
  restore(proc: Process, d: Durable, version: ModuleVersion): { state: unknown } | undefined {
    const entry = this.saved.get(d.key);
    if (!entry) return undefined;
    const to = vsnOf(version);
    let state = entry.state;
    if (!sameVsn(entry.vsn, to)) {
      const convert = version.exports.codeChange;
      // A state saved by a higher numbered vsn (the code was rolled back since) is a downgrade, as in plans: `{ down: vsn }`.
      const from = typeof entry.vsn === 'number' && typeof to === 'number' && entry.vsn > to ? { down: entry.vsn } : entry.vsn;
      if (typeof convert === 'function') {
        try {
          state = this.scheduler.asProcess(proc, () => convert(from, deepCopy(entry.state), undefined));
        } catch (error) {
          throw new Refused(`codeChange of ${version} failed restoring durable state '${d.key}': ${errorText(error)}`, {
            key: d.key,
            reason: errorReason(error),
          });
        }
        if (state === undefined) throw new Refused(`codeChange of ${version} returned undefined restoring durable state '${d.key}'`, { key: d.key });
      }
    }
    this.platform.emit({ type: 'durable_restored', node: this.node, pid: proc.pid, key: d.key, from: entry.vsn, to });
    return { state };
  }

  /** The server is up under its key. */
  claim(proc: Process, b: Behaviour): void {
    const d = b.durable!;
    this.held.set(d.key, proc);
    const entry = this.saved.get(d.key);
    // A fresh state (nothing was saved) or a converted one is a change like any other.
    if (!entry || entry.state !== b.state) this.reached(b, d);
  }

  /**
   * A durable server ended: its key is free, and its last state stays — the state after the last
   * message it handled (or its `{ stop, state }`). Under `everyMs` a state not sent yet leaves now;
   * under `'shutdown'` it waits for an orderly stop; under `'message'` only confirmed states count.
   */
  release(proc: Process): void {
    const b = proc.behaviour!;
    const d = b.durable!;
    if (this.held.get(d.key) !== proc) return;
    this.held.delete(d.key);
    if (d.checkpoint === 'message') return;
    if (this.saved.get(d.key)?.state !== b.state) this.reached(b, d);
    const entry = this.saved.get(d.key)!;
    if (typeof d.checkpoint === 'object' && entry.dirty) this.send(proc, d, entry, null);
  }

  /** A reply of a durable server: held under `'message'` until its state is durable. */
  reply(b: Behaviour, from: From, value: unknown): boolean {
    if (b.durable?.checkpoint !== 'message') return false;
    b.durable.replies.push([from, value]);
    return true;
  }

  /**
   * After a durable server handled a message (its state before it was `before`): records the
   * state reached, and returns what the server waits in next — its loop, or under `'message'` the
   * host's confirmation first, or under `everyMs` its loop with a timer for the next checkpoint.
   */
  after(proc: Process, before: unknown, loop: Receive): Receive {
    const b = proc.behaviour!;
    const d = b.durable!;
    if (b.state !== before) this.reached(b, d);
    const entry = this.saved.get(d.key)!;
    const c = d.checkpoint;
    if (c === 'shutdown' || !entry.dirty) return this.answered(d, loop);
    if (c === 'message') return this.confirm(proc, d, entry, loop);
    const wait = d.sentAt + c.everyMs - this.platform.now();
    // In the loop's version (a process a rolling upgrade pinned stays counted in old code while it waits).
    if (wait > 0) return new Receive(loop.version, loop.anyHandler, null, new After(wait, () => this.sendLater(proc, d, loop)));
    this.send(proc, d, entry, null);
    return loop;
  }

  /** The host's stored states for this node, before anything starts (a boot). */
  restoreAll(states: DurableState[]): void {
    if (!Array.isArray(states)) throw new BadArgument('restoreDurable takes a list of states');
    for (const s of states) {
      if (!s || typeof s.key !== 'string' || typeof s.module !== 'string') throw new BadArgument(`a malformed durable state: ${safeString(s)}`);
      const saved = { module: s.module, vsn: s.vsn, state: s.state };
      this.saved.set(s.key, { ...saved, dirty: false, confirmed: saved });
    }
  }

  /** Forgets a key's state here (the host forgets it in the store); refused while a server holds the key. */
  forget(key: string): void {
    const holder = this.held.get(key);
    if (holder) throw new Refused(`durable state '${key}' is in use by ${holder.pid}: stop it first`, { key, pid: holder.pid });
    this.saved.delete(key);
  }

  /** States reached but not sent yet (an orderly stop's last save): they count as sent from now. */
  take(): DurableState[] {
    const out: DurableState[] = [];
    const max = this.limits.durableBytes ?? DEFAULT_DURABLE_BYTES;
    for (const [key, entry] of this.saved) {
      if (!entry.dirty) continue;
      entry.dirty = false;
      const problem = this.problem(key, entry, max);
      if (problem) this.platform.emit({ type: 'checkpoint_failed', node: this.node, key, reason: problem });
      else out.push({ key, module: entry.module, vsn: entry.vsn, state: entry.state });
    }
    return out;
  }

  private reached(b: Behaviour, d: Durable): void {
    this.saved.set(d.key, { module: b.module, vsn: b.stateVsn, state: b.state, dirty: true, confirmed: this.saved.get(d.key)?.confirmed });
  }

  /** Replies held for a state now durable (or for no change) go out. */
  private answered(d: Durable, loop: Receive): Receive {
    if (d.replies.length) {
      const replies = d.replies;
      d.replies = [];
      for (const [from, value] of replies) this.sendFrom(from.pid, { $reply: from.ref, value });
    }
    return loop;
  }

  private confirm(proc: Process, d: Durable, entry: Entry, loop: Receive): Receive {
    const ref = this.send(proc, d, entry, `#Ref<${this.node}.durable.${++this.refs}>`);
    const fail = (reason: unknown): never => {
      d.replies = [];
      this.unconfirmed(d.key, entry);
      this.platform.emit({ type: 'checkpoint_failed', node: this.node, pid: proc.pid, key: d.key, reason: safeString(reason) });
      throw new ExitNow({ checkpoint_failed: reason });
    };
    const done = new Clause(
      (m: unknown) => (m as { $serviceReply?: string })?.$serviceReply === ref,
      (m) => {
        const error = (m as { error?: { code?: string; message?: string } }).error;
        if (error) return fail({ name: error.code ?? 'error', message: error.message ?? '' });
        entry.confirmed = { module: entry.module, vsn: entry.vsn, state: entry.state };
        return this.answered(d, loop);
      },
    );
    return new Receive(loop.version, null, [done], new After(d.timeoutMs, () => fail({ name: 'Timeout', message: `not durable within ${d.timeoutMs} ms` })));
  }

  private sendLater(proc: Process, d: Durable, loop: Receive): Receive {
    const entry = this.saved.get(d.key);
    if (entry?.dirty) this.send(proc, d, entry, null);
    return loop;
  }

  /**
   * Sends the state to the host (with a ref when it must answer). A state over the size limit, or
   * one that cannot be copied, is not sent: under `'message'` the server ends, else it is reported.
   */
  private send(proc: Process, d: Durable, entry: Entry, ref: string | null): string {
    const max = this.limits.durableBytes ?? DEFAULT_DURABLE_BYTES;
    entry.dirty = false;
    d.sentAt = this.platform.now();
    const problem = this.problem(d.key, entry, max);
    if (problem) {
      this.platform.emit({ type: 'checkpoint_failed', node: this.node, pid: proc.pid, key: d.key, reason: problem });
      if (ref !== null) {
        this.unconfirmed(d.key, entry);
        throw new ExitNow({ checkpoint_failed: { name: 'TooLarge', message: problem } });
      }
      return '';
    }
    const request: CheckpointRequest = {
      $service: 'checkpoint',
      ref: ref ?? '',
      from: proc.pid,
      ack: ref !== null,
      key: d.key,
      module: entry.module,
      vsn: entry.vsn,
      state: entry.state,
    };
    this.scheduler.post('host', [Sig.Message, HOST_SERVICE, request]);
    return ref ?? '';
  }

  /** Under `'message'`, a state not confirmed never happened: a server restarted here resumes from the last durable one, as after a node restart. */
  private unconfirmed(key: string, entry: Entry): void {
    if (entry.confirmed) this.saved.set(key, { ...entry.confirmed, dirty: false, confirmed: entry.confirmed });
    else this.saved.delete(key);
  }

  /** Why a state cannot be saved (over the limit, not copyable), or undefined. */
  private problem(key: string, entry: Entry, max: number): string | undefined {
    try {
      assertCloneable(entry.state);
    } catch (error) {
      return `durable state '${key}' cannot be saved: ${(error as Error).message}`;
    }
    const bytes = estimateSize(entry.state, max);
    if (bytes > max) return new TooLarge(`durable state '${key}' is over this node's durableBytes limit of ${max} bytes`).message;
    return undefined;
  }
}
