/**
 * Shared tools for the kernel semantics suites: waiting for conditions, reading what processes
 * sent to the host, forcing garbage collection, and building kernels with custom options.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { Envelope } from '../../src/kernel/signals.js';
import type { KernelEvent, Pid, ProcessInfo } from '../../src/kernel/types.js';
import type { LocalKernel } from './local-kernel.js';

/** The pid processes send their observations to: node `host`, so they land in `k.outbound`. */
export const HOST = '<host.1>';

/** Polls `cond` on macrotasks (so kernel slices and timers run in between) until it holds. */
export async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 5_000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Lets several macrotask turns pass: enough for every runnable process to run and block. */
export async function quiesce(ms = 10): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Every envelope the kernel has sent off-node so far, in order. */
export function envelopes(k: LocalKernel): Envelope[] {
  return k.outbound.flatMap((o) => o.envelopes);
}

/** Messages sent to `to` (default: the host pid), in order. */
export function sent(k: LocalKernel, to: string = HOST): unknown[] {
  return envelopes(k)
    .filter((e) => e[0] === 0 && e[1] === to)
    .map((e) => e[2]);
}

/** Waits until at least `n` messages were sent to `to` and returns them all. */
export async function receivedAtLeast(k: LocalKernel, n: number, to: string = HOST, timeoutMs = 10_000): Promise<unknown[]> {
  await waitFor(() => sent(k, to).length >= n, `${n} message(s) to ${to} (have ${sent(k, to).length})`, timeoutMs);
  return sent(k, to);
}

/** Waits until the process no longer exists. */
export async function waitDead(k: LocalKernel, pid: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => info(k, pid) === undefined, `${pid} to exit`, timeoutMs);
}

/** Waits until the process waits in a receive. */
export async function waitWaiting(k: LocalKernel, pid: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => info(k, pid)?.status === 'waiting', `${pid} to wait in receive`, timeoutMs);
}

/** `process_exit` events the kernel emitted for `pid` (only for non-quiet reasons). */
export function exitEvents(k: LocalKernel, pid?: string): Extract<KernelEvent, { type: 'process_exit' }>[] {
  return k.events.filter((e): e is Extract<KernelEvent, { type: 'process_exit' }> => e.type === 'process_exit' && (pid === undefined || e.pid === pid));
}

let gcFn: (() => void) | null | undefined;

/**
 * A full garbage collector, if one can be had: `global.gc` when node runs with --expose-gc,
 * otherwise the V8 flag is switched on at run time and `gc` taken from a fresh context.
 */
export function getGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return (gcFn = existing);
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    gcFn = typeof fn === 'function' ? (fn as () => void) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** heapUsed after a full collection (several passes, to let weak structures and finalizers settle). */
export async function heapUsedAfterGc(): Promise<number> {
  const gc = getGc();
  if (gc) {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return process.memoryUsage().heapUsed;
}

export { customKernel } from './local-kernel.js';

/** `processInfo` for a pid held as a plain string. */
export function info(k: LocalKernel, pid: string): ProcessInfo | undefined {
  return k.kernel.processInfo(pid as Pid);
}

/** Delivers messages from the host to `to` (a pid or a registered name), in order. */
export function tell(k: LocalKernel, to: string, ...messages: unknown[]): void {
  k.kernel.deliver(messages.map((m) => [0, to, m] as unknown as Envelope));
}

/**
 * The `subnode` API as module code sees it, loosely typed for tests that run closures as
 * processes (see `spawnFn`).
 */
export interface Api {
  ANY: symbol;
  receive(...parts: unknown[]): unknown;
  on(pattern: unknown, handler: (message: any) => unknown): unknown;
  after(ms: number, handler: () => unknown): unknown;
  next(fn: (...args: any[]) => unknown, ...args: unknown[]): unknown;
  self(): string;
  node(): string;
  send(dest: unknown, message: unknown): unknown;
  spawn(fn: (...args: any[]) => unknown, ...args: unknown[]): string;
  spawnLink(fn: (...args: any[]) => unknown, ...args: unknown[]): string;
  spawnMonitor(fn: (...args: any[]) => unknown, ...args: unknown[]): [string, string];
  spawnOpt(fn: (...args: any[]) => unknown, args?: unknown[], options?: Record<string, unknown>): any;
  link(pid: string): true;
  unlink(pid: string): true;
  monitor(target: string): string;
  demonitor(ref: string): true;
  exit(...args: unknown[]): any;
  trapExit(on: boolean): boolean;
  register(name: string, pid?: string): true;
  unregister(name: string): true;
  whereis(name: string): string | undefined;
  registerGlobal(name: string): true;
  whereisGlobal(name: string): string | undefined;
  makeRef(): string;
  isPid(value: unknown): boolean;
}

/** A module whose `run(fn, ...args)` runs a closure as a process step, handing it the API. */
export const HARNESS_SOURCE = `
  import * as api from 'subnode';
  export function run(fn: any, ...args: any[]) { return fn(api, ...args); }
`;

const withHarness = new WeakSet<object>();

/** Spawns `fn(api, ...args)` as a process (module `harness`, loaded on first use). */
export function spawnFn(k: LocalKernel, fn: (api: Api, ...args: any[]) => unknown, ...args: unknown[]): string {
  if (!withHarness.has(k.kernel)) {
    k.load('harness', HARNESS_SOURCE);
    withHarness.add(k.kernel);
  }
  return k.kernel.spawn('harness', 'run', [fn, ...args]);
}

/** A step that reports every message it receives to the host, forever. */
export function forward(api: Api): unknown {
  return api.receive((m: unknown) => {
    api.send(HOST, m);
    return forward(api);
  });
}

/** The reason in a `{ error: { name, message } }` exit reason, for compact assertions. */
export function errorOf(reason: unknown): { name: string; message: string } | undefined {
  const error = (reason as { error?: { name: string; message: string } } | null)?.error;
  return error && { name: error.name, message: error.message };
}
