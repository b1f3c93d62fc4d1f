/**
 * Signals between processes on different nodes, as compact tuples (they are what crosses threads
 * in bulk). Order is kept per pair of nodes, which gives Erlang's per-pair signal order.
 */
import type { Pid } from './pid.js';

export const enum Sig {
  Message = 0,
  Link = 1,
  Unlink = 2,
  Exit = 3,
  Monitor = 4,
  Demonitor = 5,
  Down = 6,
  /** A migrated process ended: the nodes it passed through drop their forwarding entries. */
  Gone = 7,
  /** From a process's previous node: every message it held back has been forwarded. */
  Flushed = 8,
  /** From a node that forwarded to a process and now hosts it: nothing more will be forwarded. */
  Drained = 9,
  /**
   * A host mailbox's call (`system.call`): the monitor and the `{ $call, from }` message in one
   * envelope, as OTP's monitor-then-send. Only a host sends it (a node takes it from no one else,
   * an isolate's boundary lets none out).
   */
  Call = 10,
  /**
   * The callee's reply to a `Call`, sent by its node when the reply ends that call's monitor there
   * (OTP's reply-demonitor): the host then sends no demonitor. Elsewhere it is just the message
   * `{ $reply: ref, value }`.
   */
  Reply = 11,
}

/** A process on the receiving node: a pid, or a name registered there. */
export type Target = Pid | string;

export type Envelope =
  | [Sig.Message, Target, unknown]
  | [Sig.Link, Pid, Pid]
  | [Sig.Unlink, Pid, Pid]
  /** [_, to, from, reason, linked]: `linked` is 1 for a link's exit, 0 for exit(pid, reason). */
  | [Sig.Exit, Pid, Pid, unknown, 0 | 1]
  | [Sig.Monitor, Target, Pid, string]
  | [Sig.Demonitor, Target, Pid, string]
  /** [_, watcher, watched, ref, reason] */
  | [Sig.Down, Pid, Pid, string, unknown]
  | [Sig.Gone, Pid]
  | [Sig.Flushed, Pid]
  | [Sig.Drained, Pid]
  /** [_, callee, caller, ref, request] */
  | [Sig.Call, Target, Pid, string, unknown]
  /** [_, caller, ref, value] */
  | [Sig.Reply, Pid, string, unknown];

/** Exit reasons with a fixed meaning. Any other cloneable value is a reason too. */
export type ExitReason = 'normal' | 'kill' | 'killed' | 'noproc' | 'noconnection' | 'shutdown' | ErrorReason | unknown;

/** The reason of a process that threw. */
export interface ErrorReason {
  error: { name: string; message: string; stack?: string };
}

export interface ExitMessage {
  type: 'EXIT';
  from: Pid;
  reason: ExitReason;
}
export interface DownMessage {
  type: 'DOWN';
  ref: string;
  pid: Pid;
  reason: ExitReason;
}
