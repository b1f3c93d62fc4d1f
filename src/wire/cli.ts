/**
 * The control protocol: newline-delimited JSON over the control socket, closed and typed on both
 * ends (after comlink's protocol.ts: one list of what may cross, every message a member of a union).
 *
 *   request   { id, op, args }                                   (op: a key of OPS, args: its fields)
 *   response  { id, ok: result }  |  { id, error: { code, message, details? } }
 *   streamed  { id, at, event }             (ops whose spec says stream: 'event', after the response)
 *             { id, progress: Progress }    (ops whose spec says stream: 'progress', before it)
 *
 * OPS below is the one list of operations: each op's argument fields (checked on the server, at run
 * time, by `checkArgs`), its result type and what it streams. `ArgsOf` / `ResultOf` / `StreamOf`
 * derive from it; the server's handler table must cover every op with those types, and the
 * client's `request(op, args)` takes and returns them. Adding an op: an entry here, a handler there.
 */
import type { ErrorCode } from '../errors.js';
import type { SystemEvent } from '../host/events.js';
import type { MigrationResult } from '../host/migration.js';
import type { UpgradePlan, UpgradeReport } from '../host/upgrade-plan.js';
import type { Pid } from '../kernel/pid.js';
import type { ReleaseInfo } from '../host/release-store/index.js';
import type { Dest, LoadReport, ModuleInfo, ProcessInfo, PurgeReport } from '../kernel/types.js';
import type { CodeRow, NodeStats, ProcessDetail, ProcessPage } from '../observe/model.js';
import { SORT_KEYS, type SortKey } from '../observe/query.js';

/** A stored durable server state, as `subnode durable` lists it (the state itself stays on the host). */
export interface DurableRow {
  node: string;
  key: string;
  module: string;
  vsn: unknown;
  /** The state's size as stored (its structured-clone bytes). */
  bytes: number;
  /** When it was saved (ms since the epoch). */
  at: number;
}

// ---- fields: a run-time check and the static type it stands for ----

export interface Field<T = unknown, Optional extends boolean = boolean> {
  /** What the field must be, for the error message ("a non-empty string"). */
  readonly what: string;
  readonly optional: Optional;
  readonly accepts: (value: unknown) => boolean;
  /** Never set: carries T for the types below. */
  readonly type?: T;
}

const field = <T>(what: string, accepts: (value: unknown) => boolean): Field<T, false> => ({ what, optional: false, accepts });
const optional = <T>(f: Field<T, false>): Field<T, true> => ({ ...f, optional: true });

const text = field<string>('a non-empty string', (v) => typeof v === 'string' && v.length > 0);
const positiveInt = field<number>('an integer > 0', (v) => Number.isInteger(v) && (v as number) > 0);
const count = field<number>('an integer >= 0', (v) => Number.isInteger(v) && (v as number) >= 0);
const flag = field<boolean>('true or false', (v) => typeof v === 'boolean');
const anyJson = field<unknown>('any JSON value', () => true);
const list = field<unknown[]>('a list', (v) => Array.isArray(v));
const purgeMode = field<'kill' | 'soft'>("'kill' or 'soft'", (v) => v === 'kill' || v === 'soft');
const sortKey = field<SortKey>(`one of ${SORT_KEYS.join(', ')}`, (v) => (SORT_KEYS as readonly unknown[]).includes(v));
const plan = field<UpgradePlan>('an upgrade plan object', (v) => typeof v === 'object' && v !== null && !Array.isArray(v));

export type Fields = Record<string, Field>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type TypeOf<F> = F extends Field<infer T> ? T : never;
/** The args object an op's fields describe: required fields required, optional ones optional. */
export type ArgsFrom<F extends Fields> = Simplify<
  { [K in keyof F as F[K] extends Field<unknown, false> ? K : never]: TypeOf<F[K]> } & {
    [K in keyof F as F[K] extends Field<unknown, false> ? never : K]?: TypeOf<F[K]>;
  }
>;

export interface OpSpec<F extends Fields = Fields, R = unknown, S extends Stream = Stream> {
  args: F;
  /** Never set: carries the result type. */
  result?: R;
  stream?: S;
}
type Stream = 'progress' | 'event' | undefined;
const returns = <R>() => undefined as R | undefined;

// ---- results ----

export interface SystemInfo {
  pid: number;
  config: string;
  socket: string;
  startedAt: string;
  uptimeMs: number;
  /** Nodes of the whole system (in a cluster, every host's). */
  nodes: number;
  /** In a cluster: this host's name and every live host. */
  cluster?: { host: string; hosts: string[] };
}

export interface NodeRow {
  name: string;
  kind: string;
  status: string;
  creation: number;
  /** In a cluster: the host that runs the node. */
  host?: string;
  processes: number | null;
  modules: number | null;
}

export interface Names {
  nodes: string[];
  modules: Record<string, string[]>;
  pids: string[];
}

/** In a cluster, `host` is the host that runs the node. */
export type ProcessRow = ProcessInfo & { node: string; host?: string };
export type ModuleRow = ModuleInfo & { node: string; host?: string };
export interface EventRecord {
  at: string;
  event: SystemEvent;
}

export interface Progress {
  node: string;
  phase: string;
  /** Nodes (or processes) finished so far, and how many were selected. */
  done: number;
  total: number;
}

// ---- the one list of ops ----

export const OPS = {
  info: { args: {}, result: returns<SystemInfo>() },
  nodes: { args: {}, result: returns<NodeRow[]>() },
  ps: { args: { node: optional(text) }, result: returns<ProcessRow[]>() },
  modules: { args: { node: optional(text) }, result: returns<ModuleRow[]>() },
  names: { args: {}, result: returns<Names>() },
  load: { args: { node: text, module: text, path: text, purge: optional(purgeMode) }, result: returns<LoadReport>() },
  purge: { args: { node: text, module: text, to: optional(text) }, result: returns<PurgeReport & { moved?: MigrationResult[] }>() },
  'soft-purge': { args: { node: text, module: text }, result: returns<PurgeReport>() },
  lingering: { args: { node: text, module: text }, result: returns<Pid[]>() },
  upgrade: { args: { plan, dryRun: optional(flag) }, result: returns<UpgradeReport>(), stream: 'progress' },
  migrate: { args: { pid: text, node: text, extra: optional(anyJson) }, result: returns<MigrationResult>() },
  'migrate-all': {
    args: { from: text, to: text, module: optional(text), batch: optional(positiveInt), extra: optional(anyJson) },
    result: returns<MigrationResult[]>(),
    stream: 'progress',
  },
  spawn: { args: { node: text, module: text, fn: text, args: optional(list), name: optional(text) }, result: returns<Pid>() },
  kill: { args: { pid: text, reason: optional(anyJson) }, result: returns<true>() },
  send: { args: { to: text, message: anyJson }, result: returns<Dest>() },
  call: { args: { to: text, request: anyJson, timeoutMs: optional(positiveInt) }, result: returns<{ reply: unknown }>() },
  events: { args: { follow: optional(flag), last: optional(count) }, result: returns<{ events: EventRecord[]; following: boolean }>(), stream: 'event' },
  releases: { args: {}, result: returns<ReleaseInfo[]>() },
  rollback: { args: { release: positiveInt }, result: returns<UpgradeReport>(), stream: 'progress' },
  'make-permanent': { args: { release: optional(positiveInt) }, result: returns<{ release: number }>() },
  durable: { args: { node: optional(text) }, result: returns<DurableRow[]>() },
  'durable-forget': { args: { key: text, node: optional(text) }, result: returns<{ node: string; key: string }>() },
  stop: { args: {}, result: returns<{ stopping: true; pid: number }>() },
  // The observer's and `top`'s views (src/observe/model.ts): computed in the system's process, one page at a time.
  'observe-nodes': { args: {}, result: returns<NodeStats[]>() },
  'observe-ps': {
    args: {
      node: optional(text),
      filter: optional(field<string>('a string', (v) => typeof v === 'string')),
      sort: optional(sortKey),
      desc: optional(flag),
      offset: optional(count),
      limit: optional(positiveInt),
    },
    result: returns<ProcessPage>(),
  },
  'observe-process': { args: { pid: text }, result: returns<ProcessDetail | null>() },
  'observe-code': { args: { node: optional(text) }, result: returns<CodeRow[]>() },
  'restart-node': { args: { node: text }, result: returns<{ node: string; creation: number }>() },
} as const satisfies Record<string, OpSpec>;

export type Ops = typeof OPS;
export type Op = keyof Ops;
export type ArgsOf<O extends Op> = ArgsFrom<Ops[O]['args']>;
export type ResultOf<O extends Op> = Exclude<Ops[O]['result'], undefined>;
export type StreamKind<O extends Op> = Ops[O] extends { stream: infer S } ? S : never;
export type StreamOf<O extends Op> = StreamKind<O> extends 'progress' ? ProgressMessage : StreamKind<O> extends 'event' ? EventMessage : never;

// ---- messages ----

export type Id = number | string;

/** A request as the client sends it; on the server a line is only this after `checkRequest`. */
export type Request = { [O in Op]: { id: Id; op: O; args: ArgsOf<O> } }[Op];

/** Error codes on the wire: the system's own, plus `bad_request` for a request the server cannot take. */
export type FailureCode = ErrorCode | 'bad_request';

export interface WireFailure {
  code: FailureCode;
  message: string;
  details?: unknown;
}

export interface OkMessage {
  id: Id;
  ok: unknown;
}
export interface ErrorMessage {
  id: Id | null;
  error: WireFailure;
}
export interface EventMessage {
  id: Id;
  at: string;
  event: SystemEvent;
}
export interface ProgressMessage {
  id: Id;
  progress: Progress;
}
export type Message = OkMessage | ErrorMessage | EventMessage | ProgressMessage;
export type StreamedMessage = EventMessage | ProgressMessage;

/** Longest request line the server reads (module sources travel as paths, not text). */
export const MAX_LINE = 8 * 1024 * 1024;

// ---- checking a request on the server ----

/** A request the server cannot take: not JSON, unknown op, unknown or ill-typed fields. */
export class BadRequest extends Error {
  readonly code = 'bad_request' as const;
  constructor(
    message: string,
    readonly details: { op?: string; problems: string[] },
  ) {
    super(message);
  }
  override get name(): string {
    return 'BadRequest';
  }
}

export function isOp(op: unknown): op is Op {
  return typeof op === 'string' && Object.prototype.hasOwnProperty.call(OPS, op);
}

/** Checks a parsed line: the id, a known op, and args with exactly that op's fields, each of its type. */
export function checkRequest(value: unknown): Request {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new BadRequest('bad request: expected { id, op, args }', { problems: ['not an object'] });
  const { id, op, args, ...rest } = value as Record<string, unknown>;
  if (typeof id !== 'number' && typeof id !== 'string') throw new BadRequest('bad request: id must be a number or a string', { problems: ['id'] });
  const extra = Object.keys(rest);
  if (extra.length)
    throw new BadRequest(`bad request: unknown field${extra.length === 1 ? '' : 's'} ${extra.join(', ')} (a request is { id, op, args })`, { problems: extra });
  if (!isOp(op)) throw new BadRequest(`unknown op ${JSON.stringify(op)} (ops: ${Object.keys(OPS).join(', ')})`, { op: String(op), problems: ['op'] });
  return { id, op, args: checkArgs(op, args ?? {}) } as Request;
}

export function checkArgs<O extends Op>(op: O, args: unknown): ArgsOf<O> {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new BadRequest(`${op}: args must be an object`, { op, problems: ['args'] });
  const fields: Fields = OPS[op].args;
  const given = args as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(fields, key)) {
      const known = Object.keys(fields);
      problems.push(`unknown field '${key}' (${op} takes ${known.length ? known.join(', ') : 'no args'})`);
    }
  }
  for (const [key, f] of Object.entries(fields)) {
    const value = given[key];
    if (value === undefined || value === null) {
      if (!f.optional && !(value === null && f === anyJson)) problems.push(`'${key}' is required: ${f.what}`);
    } else if (!f.accepts(value)) problems.push(`'${key}' must be ${f.what}, got ${JSON.stringify(value)}`);
  }
  if (problems.length) throw new BadRequest(`${op}: ${problems.join('; ')}`, { op, problems });
  // null for an optional field means absent.
  const clean: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) if (value !== null || fields[key] === anyJson) clean[key] = value;
  return clean as ArgsOf<O>;
}
