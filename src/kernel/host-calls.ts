/**
 * The node's side of calls from a host's mailbox (`system.call`), as lean as OTP's: the host sends
 * one `Call` envelope, which the node applies as a monitor (under the call's ref) and the
 * `{ $call, from }` message; when the monitored callee replies, the reply ends that monitor and
 * leaves as a `Reply` envelope, which tells the host so (OTP's reply-demonitor), and no demonitor
 * follows. Pure helpers for Signalling, on the node's thread.
 *
 * Vocabulary: a *host call* is one whose ref starts with `CALL_REF` (only a host's `Router.call`
 * makes those); a *delegated* reply is one another process sends (it ends nothing: the host's
 * demonitor does).
 */
import { isHostNode, type Pid } from './pid.js';
import type { Process } from './proc.js';
import { Sig, type Envelope } from './signals.js';

/**
 * The start of a host call's ref: a node ends a monitor on a reply only for refs of this form, so
 * a process cannot end a host inbox's own monitor by sending it a reply-shaped message with that
 * monitor's ref.
 */
export const CALL_REF = '#Ref<host.c.';

/** Whether a batch comes from a host (its own mailboxes, or another host's in a cluster): only a host sends `Call`. */
export function fromHost(node: string | null): boolean {
  return node !== null && isHostNode(node);
}

/** The message a `Call` envelope gives its callee. */
export function callMessage(e: [Sig.Call, string, Pid, string, unknown]): { $call: unknown; from: { pid: Pid; ref: string } } {
  return { $call: e[4], from: { pid: e[2], ref: e[3] } };
}

/**
 * The `Reply` envelope for `message` sent by `sender` to `to`, with the monitor of the host call
 * it answers ended; undefined (nothing changed) unless `message` is a reply to a host call whose
 * monitor `sender` holds for `to`.
 */
export function endHostCall(sender: Process | null, to: Pid, message: unknown): Envelope | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const ref = (message as { $reply?: unknown }).$reply;
  if (typeof ref !== 'string' || !ref.startsWith(CALL_REF)) return undefined;
  const watchers = sender === null ? null : sender.watchers;
  if (watchers === null || watchers.get(ref) !== to) return undefined;
  watchers.delete(ref);
  return [Sig.Reply, to, ref, (message as { value?: unknown }).value];
}
