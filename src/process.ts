/**
 * The API module code uses inside a node: `import { receive, send, self } from 'subnode/process'`
 * (`'subnode'` works too). Inside a node each module version gets its own live copy of these
 * functions from the kernel; this file is their typed face for editors and the compiler, and its
 * functions only throw when called outside a node.
 */
import { NotInProcess } from './errors.js';
import type { Pid } from './kernel/pid.js';
import type { Dest, SpawnOptions } from './kernel/types.js';
import type { ExitMessage, DownMessage, ExitReason } from './kernel/signals.js';

export type { Pid, Dest, SpawnOptions, ExitMessage, DownMessage, ExitReason };

/** What a step returns: a receive to wait in, a tail call, or anything else to end normally. */
export interface Step {
  readonly __step: 'receive' | 'next';
}
export interface Clause {
  readonly __clause: true;
}
export interface AfterClause {
  readonly __after: true;
}
/** A structural pattern, a predicate, or `ANY`. Plain objects match by the keys they name. */
export type Pattern = unknown;

const outside = (name: string) => (): never => {
  throw new NotInProcess(`${name}() is only available to module code running in a subnode node`);
};

/** Wildcard for patterns: matches anything. */
export const ANY: unique symbol = Symbol.for('subnode.any') as never;

/**
 * Waits for a message. `receive(handler)` takes the first message; `receive(on(p, h), …, after(ms, h))`
 * takes the first message (in arrival order) that some clause matches; unmatched ones stay queued.
 */
export const receive: {
  <M>(handler: (message: M) => unknown): Step;
  (...clauses: (Clause | AfterClause | ((message: never) => unknown))[]): Step;
} = outside('receive') as never;
export const on: <M = unknown>(pattern: Pattern, handler: (message: M) => unknown) => Clause = outside('on') as never;
export const after: (ms: number, handler: () => unknown) => AfterClause = outside('after') as never;
/**
 * A raw process's consent to migrate, as a receive clause: `onMigrate(() => next(exported, ...state))`
 * says how it continues on another node (`exported` must be an exported function of the module).
 */
export const onMigrate: (handler: () => Step) => Clause = outside('onMigrate') as never;
/** A tail call: the process continues with `fn(...args)` in constant memory. */
export const next: <A extends unknown[]>(fn: (...args: A) => unknown, ...args: A) => Step = outside('next') as never;

export const self: () => Pid = outside('self');
export const node: () => string = outside('node');
export const send: <T>(dest: Dest, message: T) => T = outside('send') as never;
export const spawn: <A extends unknown[]>(fn: (...args: A) => unknown, ...args: A) => Pid = outside('spawn') as never;
export const spawnLink: <A extends unknown[]>(fn: (...args: A) => unknown, ...args: A) => Pid = outside('spawnLink') as never;
export const spawnMonitor: <A extends unknown[]>(fn: (...args: A) => unknown, ...args: A) => [Pid, string] = outside('spawnMonitor') as never;
export const spawnOpt: <A extends unknown[]>(fn: (...args: A) => unknown, args: A, options: SpawnOptions) => Pid | [Pid, string] = outside('spawnOpt') as never;
export const link: (pid: Pid) => true = outside('link');
export const unlink: (pid: Pid) => true = outside('unlink');
/** Monitors a pid or a local name; returns the ref of the `{ type: 'DOWN' }` message to come. */
export const monitor: (target: Pid | string) => string = outside('monitor');
/** Removes a monitor; `{ flush: true }` also drops its DOWN message if one already arrived. */
export const demonitor: (ref: string, options?: { flush?: boolean }) => true = outside('demonitor');
/** `exit(reason)` ends the calling process; `exit(pid, reason)` sends an exit signal. */
export const exit: { (reason?: ExitReason): never; (pid: Pid, reason: ExitReason): true } = outside('exit') as never;
/** Turns exit signals into `{ type: 'EXIT' }` messages; returns the previous setting. */
export const trapExit: (on: boolean) => boolean = outside('trapExit');
export const register: (name: string, pid?: Pid) => true = outside('register');
export const unregister: (name: string) => true = outside('unregister');
export const whereis: (name: string) => Pid | undefined = outside('whereis');
export const registerGlobal: (name: string) => true = outside('registerGlobal');
export const whereisGlobal: (name: string) => Pid | undefined = outside('whereisGlobal');
export const makeRef: () => string = outside('makeRef');
export const isPid: (value: unknown) => value is Pid = outside('isPid') as never;

/**
 * Spawns `module.fn(...args)` on another node (if this node's capabilities allow it), as a step:
 * the process continues with `then(pid)`, or ends with the error (NotAllowed, UnknownModule…).
 */
export const spawnOn: (node: string, module: string, fn: string, args: unknown[], then: (pid: Pid) => unknown, options?: { timeout?: number }) => Step =
  outside('spawnOn') as never;
/** Calls a function the host granted to this node, as a step: continues with `then(result)`. */
export const callHost: <R = unknown>(name: string, args: unknown[], then: (result: R) => unknown, options?: { timeout?: number }) => Step = outside(
  'callHost',
) as never;

/** Where a call came from; `server.reply(from, value)` answers it later. */
export interface From {
  pid: Pid;
  ref: string;
}
export interface CallOptions {
  timeout?: number;
  onTimeout?: () => unknown;
}

/**
 * The `server` behaviour (gen_server). A callback module exports `init(...args)` (returns the state),
 * `handleCall(request, from, state)` → `{ reply, state }` | `{ noreply: state }` | `{ stop, reply?, state }`,
 * `handleCast(msg, state)` and `handleInfo(msg, state)` → `{ noreply: state }` | `{ stop, state }`,
 * optionally `terminate(reason, state)`, `codeChange(oldVsn, state, extra)` → new state, and `vsn`.
 * Every message goes to the current version of the callback module.
 */
export const server: {
  start(module: string | object, args?: unknown[], options?: SpawnOptions): Pid;
  /** A call as a step: sends the request, waits for the reply and continues with `then(reply)`. */
  call<R>(dest: Dest, request: unknown, then: (reply: R) => unknown, options?: CallOptions): Step;
  cast(dest: Dest, message: unknown): true;
  reply(from: From, value: unknown): true;
} = { start: outside('server.start'), call: outside('server.call'), cast: outside('server.cast'), reply: outside('server.reply') } as never;

/**
 * The `statem` behaviour (gen_statem, handle_event style). The callback module exports
 * `init(...args)` → `{ state, data }` and `handleEvent(type, content, state, data, from?)` →
 * `{ state?, data?, reply?, stop?, callbackModule?: { change: m } | { push: m } | 'pop' }`.
 */
export const statem: {
  start(module: string | object, args?: unknown[], options?: SpawnOptions): Pid;
  call<R>(dest: Dest, request: unknown, then: (reply: R) => unknown, options?: CallOptions): Step;
  cast(dest: Dest, message: unknown): true;
} = { start: outside('statem.start'), call: outside('statem.call'), cast: outside('statem.cast') } as never;

export type { ChildSpec, ChildStart, ChildInfo, ChildCounts, SupSpec, SupFlags, Strategy, RestartType, Shutdown } from './kernel/supervisor-spec.js';
import type { ChildSpec, ChildInfo, ChildCounts } from './kernel/supervisor-spec.js';

/** A supervisor call's answer: OTP's `{ok, Pid}` / `{error, Reason}`. */
export type SupReply<T = Pid | null> = { ok: T } | { error: unknown };
interface SupCallOptions {
  timeout?: number;
}

/**
 * The `supervisor` behaviour (OTP's supervisor). The callback module exports `init(...args)`
 * returning `{ strategy?, intensity?, period?, children: ChildSpec[] }` or `'ignore'`; a code
 * change runs the new version's `init` again and updates the specs. The calls are steps (like
 * `server.call`): they continue with `then(reply)`, with no timeout unless given one (as OTP's).
 */
export const supervisor: {
  /** Starts a supervisor (not linked); undefined if its init returned 'ignore'. Its children start before this returns. */
  start(module: string | object, args?: unknown[], options?: SpawnOptions): Pid | undefined;
  /** Starts a supervisor linked to the calling process, its parent: an EXIT from it ends the tree. */
  startLink(module: string | object, args?: unknown[], options?: SpawnOptions): Pid | undefined;
  /** A child spec (or, for simple_one_for_one, the extra arguments) → `{ ok: pid }` or `{ error }`. */
  startChild(sup: Dest, specOrArgs: ChildSpec | unknown[], then: (reply: SupReply) => unknown, options?: SupCallOptions): Step;
  restartChild(sup: Dest, id: string, then: (reply: SupReply) => unknown, options?: SupCallOptions): Step;
  /** By id, or by pid for simple_one_for_one → `{ ok: true }` or `{ error: 'not_found' | 'simple_one_for_one' }`. */
  terminateChild(sup: Dest, idOrPid: string, then: (reply: SupReply<true>) => unknown, options?: SupCallOptions): Step;
  deleteChild(sup: Dest, id: string, then: (reply: SupReply<true>) => unknown, options?: SupCallOptions): Step;
  whichChildren(sup: Dest, then: (children: ChildInfo[]) => unknown, options?: SupCallOptions): Step;
  countChildren(sup: Dest, then: (counts: ChildCounts) => unknown, options?: SupCallOptions): Step;
} = {
  start: outside('supervisor.start'),
  startLink: outside('supervisor.startLink'),
  startChild: outside('supervisor.startChild'),
  restartChild: outside('supervisor.restartChild'),
  terminateChild: outside('supervisor.terminateChild'),
  deleteChild: outside('supervisor.deleteChild'),
  whichChildren: outside('supervisor.whichChildren'),
  countChildren: outside('supervisor.countChildren'),
} as never;
