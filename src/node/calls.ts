/**
 * The isolate boundary's check of call-shaped messages (`{ $call, from }`): the receiver of a call
 * replies to `from.pid`, so a sandbox naming as the caller a process it may not address could get
 * a peer it may talk to to deliver, on its behalf, to a node it may not reach (a confused deputy).
 * The kernel checks this when a process sends; this is the trusted side's check of the same, for
 * a kernel subverted by its own module code. Runs on the node's worker thread, on copied values.
 */
import { allows, type Capabilities } from '../kernel/capabilities.js';
import { isPid, nodeOf } from '../kernel/pid.js';

/**
 * Why a message may not leave the sandbox `node` as a call, or undefined: its `from.pid` must be a
 * process of this node, one the host moved in, or a process of a node the sandbox may address
 * (the host included). Messages of other shapes pass.
 */
export function callRefusal(message: unknown, node: string, capabilities: Capabilities, movedIn: ReadonlySet<string>): string | undefined {
  if (typeof message !== 'object' || message === null || !Object.prototype.hasOwnProperty.call(message, '$call')) return undefined;
  const from = (message as { from?: unknown }).from;
  const pid = typeof from === 'object' && from !== null ? (from as { pid?: unknown }).pid : undefined;
  if (!isPid(pid)) return 'a call with no caller pid';
  const callerNode = nodeOf(pid);
  if (callerNode === node || callerNode === 'host' || movedIn.has(pid) || allows(capabilities.sendTo, callerNode)) return undefined;
  return `a call naming ${pid} as its caller`;
}
