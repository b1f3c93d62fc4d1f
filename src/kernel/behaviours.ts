/**
 * Behaviours: `server` (like gen_server) and `statem` (like gen_statem, with a stack of callback
 * modules). Their receive loop is kernel code; each message is dispatched to the CURRENT version
 * of the callback module, exactly as gen_server's qualified `Module:handle_call` does. So a new
 * version takes effect at the next message, and a state whose shape changes needs the system
 * protocol: suspend, changeCode (the new version's `codeChange(oldVsn, state, extra)`), resume.
 *
 * Messages: a call is `{ $call: request, from: { pid, ref } }`, answered by `{ $reply: ref, value }`;
 * a cast is `{ $cast: message }`; anything else goes to `handleInfo`.
 */
import type { ModuleVersion } from './code-server.js';
import type { Pid } from './pid.js';
import type { Process } from './proc.js';

export interface From {
  pid: Pid;
  ref: string;
}
export interface CallMessage {
  $call: unknown;
  from: From;
}
export interface CastMessage {
  $cast: unknown;
}
export interface ReplyMessage {
  $reply: string;
  value: unknown;
}

export type BehaviourKind = 'server' | 'statem' | 'supervisor';

export class Behaviour {
  /**
   * The receive its loop waits in (the kernel builds it once per process). Its `version` is null
   * (the loop is kernel code), or, during a rolling upgrade, the version of the callback module the
   * process is pinned to until its state is converted (see `pinnedVersion`).
   */
  loop: { anyHandler: unknown; version: ModuleVersion | null } | null = null;
  constructor(
    readonly kind: BehaviourKind,
    /** The callback module (for statem: the top of its stack). */
    public module: string,
    public state: unknown,
    /** The `vsn` of the version whose code produced the state: codeChange's default oldVsn. */
    public stateVsn: unknown,
    /** statem: callback modules under the top one, pushed with `{ push }`. */
    readonly stack: string[] = [],
    /**
     * The process that started it linked (a supervisor, or a process with `{ link: true }`), or
     * null for a top-level one, whose parent is the host. A trapping behaviour that gets an EXIT
     * from its parent runs `terminate(reason, state)` and exits with that reason, as OTP's do.
     */
    public parent: Pid | null = null,
  ) {}
  /** A durable server's key, policy and held replies (src/kernel/durable.ts); null when not durable. */
  durable: import('./durable.js').Durable | null = null;
}

export function isCall(m: unknown): m is CallMessage {
  return typeof m === 'object' && m !== null && '$call' in m && typeof (m as CallMessage).from === 'object';
}
export function isCast(m: unknown): m is CastMessage {
  return typeof m === 'object' && m !== null && '$cast' in m;
}

/** An EXIT (so the process traps exits) from the behaviour's parent: the host for a top-level one. */
export function fromParent(b: Behaviour, m: unknown): m is { type: 'EXIT'; from: Pid; reason: unknown } {
  if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'EXIT') return false;
  const from = (m as { from?: unknown }).from;
  return typeof from === 'string' && (b.parent !== null ? from === b.parent : from.startsWith('<host.'));
}

/** A version's `vsn`: its exported `vsn` if any (like Erlang's -vsn), else its version number. */
export function vsnOf(version: ModuleVersion): unknown {
  const declared = version.exports.vsn;
  return declared === undefined || typeof declared === 'function' ? version.version : declared;
}

export type ServerResult = { reply: unknown; state: unknown } | { noreply: unknown } | { stop: unknown; reply?: unknown; state: unknown };

export type StatemResult = {
  state?: unknown;
  data?: unknown;
  reply?: unknown;
  stop?: unknown;
  callbackModule?: { change: string } | { push: string } | 'pop';
};

/** What the kernel hands the dispatcher for one message. */
export interface DispatchHost {
  current(module: string): ModuleVersion;
  send(pid: Pid, message: unknown): void;
  /** A call's reply: sent now, or held until the state it follows is durable. */
  reply(b: Behaviour, from: From, value: unknown): void;
  exit(reason: unknown): never;
  index(proc: Process, from: string | null, to: string | null): void;
}

function callback(version: ModuleVersion, name: string): ((...args: unknown[]) => unknown) | undefined {
  const fn = version.exports[name];
  return typeof fn === 'function' ? (fn as (...args: unknown[]) => unknown) : undefined;
}

function required(version: ModuleVersion, name: string): (...args: unknown[]) => unknown {
  const fn = callback(version, name);
  if (!fn) throw new TypeError(`callback module '${version.name}' (version ${version.version}) exports no ${name}()`);
  return fn;
}

/**
 * The version a process not yet converted by a rolling upgrade keeps running: its state still has
 * that version's shape, so its messages go there, not to the current version.
 */
export function pinnedVersion(b: Behaviour): ModuleVersion | null {
  const pinned = b.loop?.version ?? null;
  return pinned !== null && pinned.name === b.module ? pinned : null;
}

/** Handles one message in a behaviour process. Throws (ends the process) on stop or error. */
export function dispatch(host: DispatchHost, proc: Process, b: Behaviour, message: unknown): void {
  const version = pinnedVersion(b) ?? host.current(b.module);
  if (fromParent(b, message)) terminate(host, proc, b, version, message.reason);
  if (b.kind === 'server') return dispatchServer(host, proc, b, version, message);
  return dispatchStatem(host, proc, b, version, message);
}

function dispatchServer(host: DispatchHost, proc: Process, b: Behaviour, version: ModuleVersion, message: unknown): void {
  let result: unknown;
  let from: From | undefined;
  if (isCall(message)) {
    from = message.from;
    result = required(version, 'handleCall')(message.$call, from, b.state);
  } else if (isCast(message)) {
    result = required(version, 'handleCast')(message.$cast, b.state);
  } else {
    const info = callback(version, 'handleInfo');
    if (!info) return; // gen_server logs and drops unexpected messages
    result = info(message, b.state);
  }
  const r = result as Partial<{ reply: unknown; noreply: unknown; stop: unknown; state: unknown }>;
  if (!r || typeof r !== 'object') throw new TypeError(`${version}: a server callback must return { reply, state }, { noreply: state } or { stop, state }`);
  b.stateVsn = vsnOf(version);
  if ('stop' in r) {
    b.state = r.state;
    if (from && 'reply' in r) host.send(from.pid, { $reply: from.ref, value: r.reply });
    terminate(host, proc, b, version, r.stop);
  }
  if ('noreply' in r) {
    b.state = r.noreply;
    return;
  }
  if ('reply' in r && 'state' in r) {
    b.state = r.state;
    if (from) host.reply(b, from, r.reply);
    return;
  }
  throw new TypeError(`${version}: a server callback must return { reply, state }, { noreply: state } or { stop, state }`);
}

function dispatchStatem(host: DispatchHost, proc: Process, b: Behaviour, version: ModuleVersion, message: unknown): void {
  const { state, data } = b.state as { state: unknown; data: unknown };
  let type: 'call' | 'cast' | 'info' = 'info';
  let content: unknown = message;
  let from: From | undefined;
  if (isCall(message)) {
    type = 'call';
    content = message.$call;
    from = message.from;
  } else if (isCast(message)) {
    type = 'cast';
    content = message.$cast;
  }
  const r = (required(version, 'handleEvent')(type, content, state, data, from) ?? {}) as StatemResult;
  if (typeof r !== 'object') throw new TypeError(`${version}: handleEvent must return { state?, data?, reply?, stop?, callbackModule? }`);
  b.state = { state: 'state' in r ? r.state : state, data: 'data' in r ? r.data : data };
  b.stateVsn = vsnOf(version);
  if (from && 'reply' in r) host.send(from.pid, { $reply: from.ref, value: r.reply });
  if ('stop' in r) terminate(host, proc, b, version, r.stop);
  const change = r.callbackModule;
  if (change) {
    const before = b.module;
    if (change === 'pop') {
      const popped = b.stack.pop();
      if (popped === undefined) throw new TypeError(`${version}: callbackModule 'pop' with an empty stack`);
      b.module = popped;
    } else if ('push' in change) {
      host.current(change.push); // must exist now
      b.stack.push(b.module);
      b.module = change.push;
    } else {
      host.current(change.change);
      b.module = change.change;
    }
    host.index(proc, before, b.module);
  }
}

function terminate(host: DispatchHost, _proc: Process, b: Behaviour, version: ModuleVersion, reason: unknown): never {
  callback(version, 'terminate')?.(reason, b.state);
  return host.exit(reason);
}

/**
 * A deep copy of plain data (objects, arrays, Map, Set, Date), cycles kept. codeChange works on a
 * copy, so a conversion that fails halfway leaves the saved state exactly as it was.
 */
export function deepCopy<T>(value: T, seen = new Map<object, unknown>()): T {
  if (value === null || typeof value !== 'object') return value;
  const known = seen.get(value);
  if (known) return known as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(deepCopy(item, seen));
    return out as T;
  }
  if (value instanceof Map) {
    const out = new Map();
    seen.set(value, out);
    for (const [k, v] of value) out.set(deepCopy(k, seen), deepCopy(v, seen));
    return out as T;
  }
  if (value instanceof Set) {
    const out = new Set();
    seen.set(value, out);
    for (const v of value) out.add(deepCopy(v, seen));
    return out as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // class instances are shared, not copied
  const out: Record<string, unknown> = Object.create(proto);
  seen.set(value, out);
  for (const key of Object.keys(value)) out[key] = deepCopy((value as Record<string, unknown>)[key], seen);
  return out as T;
}
