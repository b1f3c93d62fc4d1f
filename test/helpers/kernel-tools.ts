/**
 * Shared tools for the kernel semantics suites: waiting for conditions, reading what processes
 * sent to the host, forcing garbage collection, and building kernels with custom options.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { Kernel, type KernelHost, type KernelOptions } from '../../src/kernel/kernel.js';
import type { Envelope } from '../../src/kernel/signals.js';
import type { KernelEvent } from '../../src/kernel/types.js';
import type { ModuleFactory } from '../../src/kernel/code-server.js';
import { transpile } from '../../src/host/transpile.js';
import type { LocalKernel } from './local-kernel.js';

/** The pid processes send their observations to: node `host`, so they land in `k.outbound`. */
export const HOST = '<host.1>';

/** Polls `cond` on macrotasks (so kernel slices and timers run in between) until it holds. */
export async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 10_000): Promise<void> {
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
  return envelopes(k).filter((e) => e[0] === 0 && e[1] === to).map((e) => e[2]);
}

/** Waits until at least `n` messages were sent to `to` and returns them all. */
export async function receivedAtLeast(k: LocalKernel, n: number, to: string = HOST, timeoutMs = 10_000): Promise<unknown[]> {
  await waitFor(() => sent(k, to).length >= n, `${n} message(s) to ${to} (have ${sent(k, to).length})`, timeoutMs);
  return sent(k, to);
}

/** Waits until the process no longer exists. */
export async function waitDead(k: LocalKernel, pid: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => k.kernel.processInfo(pid as never) === undefined, `${pid} to exit`, timeoutMs);
}

/** Waits until the process waits in a receive. */
export async function waitWaiting(k: LocalKernel, pid: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => k.kernel.processInfo(pid as never)?.status === 'waiting', `${pid} to wait in receive`, timeoutMs);
}

/** `process_exit` events the kernel emitted for `pid` (only for non-quiet reasons). */
export function exitEvents(k: LocalKernel, pid?: string): Extract<KernelEvent, { type: 'process_exit' }>[] {
  return k.events.filter((e): e is Extract<KernelEvent, { type: 'process_exit' }> =>
    e.type === 'process_exit' && (pid === undefined || e.pid === pid));
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

/** A kernel like `localKernel`, but with any KernelOptions (creation, sliceMs). */
export function customKernel(options: KernelOptions): LocalKernel {
  const events: KernelEvent[] = [];
  const outbound: { node: string; envelopes: Envelope[] }[] = [];
  const host: KernelHost = {
    now: () => performance.now(),
    setTimer: (ms, fire) => setTimeout(fire, ms),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
    schedule: (task) => setImmediate(task),
    compile: (js, filename) => new Function('require', 'exports', 'module', `${js}\n//# sourceURL=${filename}`) as ModuleFactory,
    outbound: (to, batch) => outbound.push({ node: to, envelopes: batch }),
    emit: (event) => events.push(event),
  };
  const kernel = new Kernel(host, options);
  return {
    kernel,
    events,
    outbound,
    load: (name, source) => kernel.load(name, transpile(name, source).js),
    settle: (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}
