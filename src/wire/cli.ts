/**
 * The control protocol: newline-delimited JSON over the control socket.
 *
 *   request   { id, op, args }
 *   response  { id, ok: result }  |  { id, error: { code, message, details? } }
 *   streamed  { id, at, event }           (op `events` with follow: after its response, until the connection closes)
 *             { id, progress: { node, phase, done, total } }   (ops `upgrade`, `migrate-all`: before the response)
 *
 * Ops: info, nodes, ps {node?}, modules {node?}, names, load {node, module, path, purge?},
 * purge {node, module, to?}, soft-purge {node, module}, lingering {node, module}, upgrade {plan},
 * migrate {pid, node, extra?}, migrate-all {from, to, module?, extra?, batch?}, spawn {node, module, fn, args?, name?}, kill {pid, reason?},
 * send {to, message}, call {to, request, timeoutMs?}, events {follow?, last?}, stop.
 */
import type { SystemEvent } from '../host/events.js';

export interface Request {
  id: number | string;
  op: string;
  args?: Record<string, unknown>;
}

export interface WireFailure { code: string; message: string; details?: unknown }

export interface Progress {
  node: string;
  phase: string;
  /** Nodes finished so far, and how many the plan selected. */
  done: number;
  total: number;
}

export type Message =
  | { id: number | string | null; ok: unknown }
  | { id: number | string | null; error: WireFailure }
  | { id: number | string; at: string; event: SystemEvent }
  | { id: number | string; progress: Progress };

export interface SystemInfo {
  pid: number;
  config: string;
  socket: string;
  startedAt: string;
  uptimeMs: number;
  nodes: number;
}

export interface NodeRow {
  name: string;
  kind: string;
  status: string;
  creation: number;
  processes: number | null;
  modules: number | null;
}

export interface Names {
  nodes: string[];
  modules: Record<string, string[]>;
  pids: string[];
}

/** Longest request line the server reads (module sources travel as paths, not text). */
export const MAX_LINE = 8 * 1024 * 1024;
