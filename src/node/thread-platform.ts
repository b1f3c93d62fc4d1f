/**
 * The kernel's host interface on a Node.js thread: Node's clock and timers, `setImmediate` slices
 * and compilation with `new Function`. A thread node's worker uses it, and so do the tests and
 * benchmarks that run a kernel on their own thread; each supplies where signals and events go.
 */
import { performance } from 'node:perf_hooks';
import { compileFunction } from 'node:vm';
import type { KernelPlatform } from '../kernel/kernel.js';
import type { ModuleFactory } from '../kernel/code-server.js';

export interface ThreadPlatformIo {
  outbound: KernelPlatform['outbound'];
  emit: KernelPlatform['emit'];
  /** Wraps every callback the host runs (timers, slices): the CPU watchdog's heartbeat. */
  wrap?: (fn: () => void) => () => void;
}

export function threadPlatform({ outbound, emit, wrap = (fn) => fn }: ThreadPlatformIo): KernelPlatform {
  return {
    now: () => performance.now(),
    wallClock: () => Date.now(),
    setTimer: (ms, fire) => setTimeout(wrap(fire), ms),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
    schedule: (task) => setImmediate(wrap(task)),
    // compileFunction keeps the source's own line numbers (new Function puts the body at line 3).
    compile: (js, filename) => compileFunction(js, ['require', 'exports', 'module'], { filename }) as ModuleFactory,
    outbound,
    emit,
  };
}
