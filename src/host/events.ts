/** The system's events, and a minimal typed emitter for them. */
import type { Pid } from '../kernel/pid.js';
import type { KernelEvent } from '../kernel/types.js';

export type SystemEvent =
  | KernelEvent
  | { type: 'node_started'; node: string; creation: number }
  | { type: 'node_down'; node: string; creation: number; reason: string }
  | { type: 'node_restarted'; node: string; creation: number }
  /** The node ran code that did not return for longer than its limit; it is being ended (then restarted per policy). */
  | { type: 'node_unresponsive'; node: string; creation: number; ms: number }
  /** The node crashed more often than its restart intensity allows; it stays down. */
  | { type: 'node_failed'; node: string; reason: string }
  | { type: 'node_stopped'; node: string }
  /** Messages for a node that is down or unknown, dropped as Erlang drops them. */
  /** `undecodable`: a batch from another host of a cluster that could not be read. */
  /** `not_for_host`: signals for a host mailbox of a kind only a process takes (exit, call, migration markers). */
  | { type: 'message_dropped'; node: string; count: number; reason: 'node_down' | 'unknown_node' | 'no_inbox' | 'undecodable' | 'not_for_host' }
  | { type: 'global_conflict'; name: string; kept: Pid; refused: Pid }
  /** A change to the system's code was journaled in the release store as release N. */
  | { type: 'release_recorded'; release: number; steps: number; trial: boolean }
  | { type: 'release_permanent'; release: number }
  /** Started on a trial release: the system booted the last permanent one (`to`) instead. */
  | { type: 'release_reverted'; from: number; to: number }
  /** A journal record a crash or damage cut off (found on open), or a change that could not be written. */
  | { type: 'release_lost'; seq: number; reason: string; detail: string }
  /** A stored durable state that could not be read back (damaged), moved aside under `lost/`. */
  | { type: 'durable_lost'; node: string; detail: string }
  /** An upgrade plan reached a node, and how it ended there. */
  | { type: 'upgrade_node'; node: string; phase: 'start' | 'upgraded' | 'rolled_back' | 'failed' | 'skipped' };

export type EventType = SystemEvent['type'];

/**
 * Every event type once, each with who reports it: the host, or a node's kernel. The compiler
 * checks this against `SystemEvent`, so a new event is one edit there and one line here; the
 * CLI's completion and filters read it.
 */
const EVENT_SOURCES = {
  node_started: 'host',
  node_down: 'host',
  node_restarted: 'host',
  node_unresponsive: 'host',
  node_failed: 'host',
  node_stopped: 'host',
  message_dropped: 'host',
  global_conflict: 'host',
  upgrade_node: 'host',
  release_recorded: 'host',
  release_permanent: 'host',
  release_reverted: 'host',
  release_lost: 'host',
  durable_lost: 'host',
  process_exit: 'kernel',
  module_loaded: 'kernel',
  module_purged: 'kernel',
  module_deleted: 'kernel',
  process_purged: 'kernel',
  drain_started: 'kernel',
  code_changed: 'kernel',
  upgrade_step: 'kernel',
  upgrade_rollback: 'kernel',
  upgrade_converted: 'kernel',
  capability_denied: 'kernel',
  mailbox_overflow: 'kernel',
  cpu_limit: 'kernel',
  log: 'kernel',
  process_migrated: 'kernel',
  migrated_exit: 'kernel',
  migration_withdrawn: 'kernel',
  global_register: 'kernel',
  global_unregister: 'kernel',
  durable_restored: 'kernel',
  // Reported by the node (over the limit, not confirmed in time) and by the host (the write failed).
  checkpoint_failed: 'kernel',
} as const satisfies Record<EventType, 'host' | 'kernel'>;

export const EVENT_TYPES = Object.keys(EVENT_SOURCES) as EventType[];
export type EventOf<T extends EventType> = Extract<SystemEvent, { type: T }>;
type Listener = (event: SystemEvent) => void;

export class Events {
  private readonly listeners = new Map<string, Set<Listener>>();

  /** Subscribes to one event type, or `'*'` for all; returns the unsubscribe function. */
  on<T extends EventType>(type: T, listener: (event: EventOf<T>) => void): () => void;
  on(type: '*', listener: (event: SystemEvent) => void): () => void;
  on(type: string, listener: Listener): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set!.delete(listener);
  }

  emit(event: SystemEvent): void {
    for (const type of [event.type, '*']) {
      const set = this.listeners.get(type);
      if (!set) continue;
      for (const listener of set) {
        try {
          listener(event);
        } catch (error) {
          // A listener's bug must not break routing or supervision.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    }
  }
}
