/**
 * Durable server states, the host's half (the node's half is src/kernel/durable.ts): it files
 * each checkpoint a node sends under that node's name, after checking it again on this trusted
 * side (the key within the node's `durable` capability, the size within `limits.durableBytes`),
 * writes it to the state store (release-store/states.ts), and gives a node its states back when
 * it boots, before its start entries run.
 *
 * Writes of one node are done one at a time, in the order they came; a boot waits for its node's
 * writes in flight, so a restarted node never starts from a state older than one already sent.
 * Each write and forget is numbered (`seq`, rising): the store keeps the highest, so a write that
 * timed out here and lands in the store later cannot replace a newer state. A `'message'` server
 * whose checkpoint was not confirmed sends a `revert`: its last confirmed state (or none) is
 * written again, above the unconfirmed one, so a restart never resumes from a state no caller was
 * told about.
 */
import { BadArgument, NotAllowed, Refused, Timeout, TooLarge } from '../errors.js';
import { within } from '../deadline.js';
import { allows, DEFAULT_DURABLE_BYTES, KIND_DEFAULTS } from '../kernel/capabilities.js';
import { DURABLE_KEY, type CheckpointRequest, type DurableState } from '../kernel/durable-spec.js';
import { estimateSize } from '../kernel/values.js';
import type { Pid } from '../kernel/pid.js';
import type { Events } from './events.js';
import type { NodeHandle } from './node-handle.js';
import type { StateStore, StoredState } from './release-store/states.js';

/** How long one write may take before it counts as failed (the node's next writes go on). */
export const WRITE_DEADLINE_MS = 10_000;

export class DurableStates {
  private readonly states = new Map<string, Map<string, StoredState>>();
  private readonly writing = new Map<string, Promise<void>>();

  private constructor(
    private readonly store: StateStore,
    private readonly events: Events,
    /** The last write number given. */
    private seq: number,
  ) {}

  /** Reads the store; damaged states are reported (`durable_lost`) and left out. */
  static async open(store: StateStore, events: Events): Promise<DurableStates> {
    const opened = await store.open();
    const keeper = new DurableStates(store, events, Math.max(opened.seq, ...opened.states.map((s) => s.seq)));
    for (const s of opened.states) keeper.nodeStates(s.node).set(s.key, s);
    for (const lost of opened.lost) events.emit({ type: 'durable_lost', node: lost.node, detail: lost.detail });
    return keeper;
  }

  /** A checkpoint from a node's process: checked here again, then written. */
  checkpoint(origin: NodeHandle, request: Partial<CheckpointRequest>): Promise<void> {
    const { key, module } = request;
    if (typeof key !== 'string' || !DURABLE_KEY.test(key) || (typeof module !== 'string' && !(request.revert === true && module === undefined)))
      return Promise.reject(new BadArgument('a malformed checkpoint'));
    if (!allows(origin.capabilities.durable, key)) {
      this.events.emit({ type: 'capability_denied', node: origin.name, pid: request.from, what: `durable state '${key}'` });
      return Promise.reject(new NotAllowed(`node '${origin.name}' may not keep durable state '${key}'`, { key }));
    }
    if (request.revert === true && module === undefined) return this.drop(origin.name, key);
    const held = this.states.get(origin.name);
    const most = origin.limits.durableStates ?? KIND_DEFAULTS[origin.kind].limits.durableStates;
    if (!held?.has(key) && (held?.size ?? 0) >= most) {
      this.events.emit({
        type: 'capability_denied',
        node: origin.name,
        pid: request.from,
        what: `a durable state '${key}' over its durableStates limit of ${most}`,
      });
      return Promise.reject(new Refused(`node '${origin.name}' already keeps ${most} durable states (its durableStates limit)`, { key, limit: most }));
    }
    const max = origin.limits.durableBytes ?? DEFAULT_DURABLE_BYTES;
    if (estimateSize(request.state, max) > max) {
      const error = new TooLarge(`durable state '${key}' is over node '${origin.name}''s durableBytes limit of ${max} bytes`, { key, limit: max });
      this.events.emit({ type: 'checkpoint_failed', node: origin.name, pid: request.from, key, reason: error.message });
      return Promise.reject(error);
    }
    return this.write(origin.name, { key, module: module!, vsn: request.vsn, state: request.state }, request.from);
  }

  /** States an orderly stop collected from a node (already checked by its kernel and, for an isolate, its boundary). */
  async save(node: string, states: DurableState[]): Promise<void> {
    await Promise.all(states.map((s) => this.write(node, s).catch(() => {})));
  }

  /** A node's states, once its writes in flight are done: what a booting node resumes from. */
  async statesFor(node: string): Promise<DurableState[]> {
    await this.writing.get(node); // each write is bounded by WRITE_DEADLINE_MS
    return [...(this.states.get(node)?.values() ?? [])].map(({ key, module, vsn, state }) => ({ key, module, vsn, state }));
  }

  /** Every stored state (or one node's): key, module, vsn, when saved — and the state. */
  async list(node?: string): Promise<StoredState[]> {
    await Promise.all(this.writing.values());
    const nodes = node === undefined ? [...this.states.keys()] : [node];
    return nodes.flatMap((n) => [...(this.states.get(n)?.values() ?? [])]).map((s) => structuredClone(s));
  }

  /** Forgets a stored state: the next server started under the key starts from its `init`. */
  async forget(node: string, key: string): Promise<boolean> {
    let had = false;
    await this.drop(node, key, () => (had = this.states.get(node)?.has(key) ?? false));
    return had;
  }

  /** Waits for every write; the store is closed. */
  async close(): Promise<void> {
    await Promise.all(this.writing.values());
    await this.store.close();
  }

  /** Forgets a key's state, in its node's order (`before` runs first, in that order too). */
  private drop(node: string, key: string, before?: () => void): Promise<void> {
    const seq = ++this.seq;
    return this.serial(node, async () => {
      before?.();
      this.states.get(node)?.delete(key);
      await deadline(this.store.delete(node, key, seq), `forgetting durable state '${key}' of node '${node}'`);
    });
  }

  private write(node: string, s: DurableState, pid?: Pid): Promise<void> {
    const stored: StoredState = { node, key: s.key, module: s.module, vsn: s.vsn, state: s.state, at: Date.now(), seq: ++this.seq };
    return this.serial(node, async () => {
      try {
        await deadline(this.store.put(stored), `writing durable state '${s.key}' of node '${node}'`);
      } catch (error) {
        this.events.emit({ type: 'checkpoint_failed', node, ...(pid ? { pid } : {}), key: s.key, reason: `the write failed: ${(error as Error).message}` });
        throw error;
      }
      this.nodeStates(node).set(s.key, stored);
    });
  }

  /** Runs `work` after the node's earlier writes. */
  private serial(node: string, work: () => Promise<void>): Promise<void> {
    const result = (this.writing.get(node) ?? Promise.resolve()).then(work);
    const tail = result.catch(() => {});
    this.writing.set(node, tail);
    void tail.then(() => {
      if (this.writing.get(node) === tail) this.writing.delete(node);
    });
    return result;
  }

  private nodeStates(node: string): Map<string, StoredState> {
    let map = this.states.get(node);
    if (!map) this.states.set(node, (map = new Map()));
    return map;
  }
}

/** `work`, or a Timeout after WRITE_DEADLINE_MS: a store that never answers holds nothing up for good. */
function deadline<T>(work: Promise<T>, what: string): Promise<T> {
  return within(work, WRITE_DEADLINE_MS, () => new Timeout(`${what} took over ${WRITE_DEADLINE_MS} ms`));
}
