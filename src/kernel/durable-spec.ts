/**
 * A durable server's declaration (`durable: { key?, checkpoint, timeoutMs? }`) and what crosses
 * between a node and the host for it: checked here strictly (unknown fields are errors), by the
 * kernel as a server starts and by a supervisor's child spec. The node's half of durable state is
 * durable.ts, the host's src/host/durable-states.ts.
 */
import { BadArgument } from '../errors.js';
import type { Pid } from './pid.js';
import { safeString } from './values.js';

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
  /**
   * The last state sent under this key was not confirmed: this one (the last confirmed) replaces
   * it, or without `module` the key is forgotten — whatever the unconfirmed write did when it landed.
   */
  revert?: true;
}

const FIELDS = new Set(['key', 'checkpoint', 'timeoutMs']);
/** What a key may be: checked in the kernel and again on the host. */
export const DURABLE_KEY = /^[A-Za-z0-9_.:@-]{1,200}$/;

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
