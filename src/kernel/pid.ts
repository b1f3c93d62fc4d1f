/**
 * Pids are strings, `<node.id>` (or `<node.id.creation>` once a node has been restarted), so they
 * cross threads and isolates unchanged, compare with `===` and key Maps directly. The creation
 * number keeps a restarted node's pids from ever naming a process of an earlier incarnation.
 */
import { BadArgument } from '../errors.js';

export type Pid = string & { readonly __pid: unique symbol };

export const NODE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/**
 * Host mailboxes (inboxes, callers) have pids on the pseudo-node `host`, or `host@H` for host H
 * of a cluster (no node name has an '@').
 */
export const HOST_PREFIX = 'host@';

/** Whether `node` is a host's mailboxes (this host's or, in a cluster, another's) rather than a node. */
export function isHostNode(node: string): boolean {
  return node === 'host' || node.startsWith(HOST_PREFIX);
}

export function formatPid(node: string, id: number, creation: number): Pid {
  return (creation === 0 ? `<${node}.${id}>` : `<${node}.${id}.${creation}>`) as Pid;
}

export function isPid(value: unknown): value is Pid {
  return (
    typeof value === 'string' &&
    value.length > 4 &&
    value.charCodeAt(0) === 60 /* < */ &&
    value.charCodeAt(value.length - 1) === 62 /* > */ &&
    value.indexOf('.') > 1
  );
}

/** The node a pid names. Only the characters before the first dot, so this is cheap. */
export function nodeOf(pid: Pid): string {
  return pid.slice(1, pid.indexOf('.'));
}

/**
 * Whether a pid names a process of `node`, of its incarnations up to creation `upTo` (all when
 * undefined): what a node's going down takes with it when a later incarnation may already have
 * spoken (a node of another host).
 */
export function ofIncarnations(node: string, upTo?: number): (pid: Pid) => boolean {
  const prefix = `<${node}.`;
  return (pid) => pid.startsWith(prefix) && (upTo === undefined || (parsePid(pid)?.creation ?? 0) <= upTo);
}

export interface PidParts {
  node: string;
  id: number;
  creation: number;
}

export function parsePid(value: unknown): PidParts | undefined {
  if (!isPid(value)) return undefined;
  const parts = value.slice(1, -1).split('.');
  const node = parts[0]!;
  // A node's name, or a cluster host's mailboxes: `host@H`, H a host name (named as nodes are).
  if (parts.length < 2 || parts.length > 3 || !NODE_NAME.test(node.startsWith(HOST_PREFIX) ? node.slice(HOST_PREFIX.length) : node)) return undefined;
  const id = Number(parts[1]);
  const creation = parts.length === 3 ? Number(parts[2]) : 0;
  if (!Number.isSafeInteger(id) || id < 0 || !Number.isSafeInteger(creation) || creation < 0) return undefined;
  return { node, id, creation };
}

/**
 * The one rule for a pid the host is given: well formed (`<node.id>` or `<node.id.creation>`),
 * or BadArgument — never NoProcess here and undefined there. Returns it as a Pid.
 */
export function checkPid(value: unknown): Pid {
  if (parsePid(value) === undefined) {
    throw new BadArgument(`not a pid: ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`, {
      pid: typeof value === 'string' ? value : String(typeof value),
    });
  }
  return value as Pid;
}

/**
 * Pids in runs of consecutive ids (same node and creation), each written `<a.5>..<a.9>` (or one pid
 * alone): 10^4 servers started one after another are one short string, not 10^4, in an event.
 * Reads each pid's id in place (an upgrade's window pays for this), not with `parsePid`.
 */
export function pidRuns(pids: readonly Pid[]): string[] {
  const runs: string[] = [];
  let first = '';
  let last = '';
  let lastId = -2;
  let prefix = ''; // `<node.` of the run
  let suffix = ''; // `>` or `.creation>` of the run
  for (const pid of pids) {
    const dot = pid.indexOf('.');
    let id = 0;
    let i = dot + 1;
    for (; i < pid.length; i++) {
      const c = pid.charCodeAt(i);
      if (c < 48 || c > 57) break;
      id = id * 10 + c - 48;
    }
    if (id === lastId + 1 && pid.length - i === suffix.length && pid.startsWith(prefix) && dot + 1 === prefix.length && pid.endsWith(suffix)) {
      last = pid;
      lastId = id;
      continue;
    }
    if (first) runs.push(first === last ? first : `${first}..${last}`);
    first = last = pid;
    lastId = id;
    prefix = pid.slice(0, dot + 1);
    suffix = pid.slice(i);
  }
  if (first) runs.push(first === last ? first : `${first}..${last}`);
  return runs;
}
