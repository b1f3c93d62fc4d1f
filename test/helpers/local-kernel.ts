/**
 * The kernel on the test thread, with a recording host: fast, deterministic tests of process and
 * code semantics without worker threads. (System tests use real workers.)
 */
import { threadPlatform } from '../../src/node/thread-platform.js';
import { Kernel, type KernelOptions, type KernelPlatform } from '../../src/kernel/kernel.js';
import type { Envelope } from '../../src/kernel/signals.js';
import type { KernelEvent, LoadReport } from '../../src/kernel/types.js';
import { transpile } from '../../src/compiler/transpile.js';

export interface LocalKernel {
  kernel: Kernel;
  events: KernelEvent[];
  outbound: { node: string; envelopes: Envelope[] }[];
  /** Loads under the kernel's policy; a drain (asynchronous) is not expected here. */
  load(name: string, source: string): LoadReport;
  /** Lets the scheduler and timers run until nothing is left to do (or `ms` passes). */
  settle(ms?: number): Promise<void>;
}

export function localKernel(node = 'a'): LocalKernel {
  return customKernel({ node });
}

/**
 * A kernel like `localKernel`, but with any KernelOptions (creation, sliceMs). With
 * `cloneOutbound`, envelopes for other nodes are copied with structuredClone when the kernel hands
 * them over, as the thread host's postMessage does.
 */
export function customKernel(
  options: KernelOptions,
  { cloneOutbound = false, platform = {} }: { cloneOutbound?: boolean; platform?: Partial<KernelPlatform> } = {},
): LocalKernel {
  const events: KernelEvent[] = [];
  const outbound: { node: string; envelopes: Envelope[] }[] = [];
  const host = threadPlatform({
    outbound: (to, batch) => void outbound.push({ node: to, envelopes: cloneOutbound ? structuredClone(batch) : batch }),
    emit: (event) => events.push(event),
  });
  const kernel = new Kernel({ ...host, ...platform }, options);
  return {
    kernel,
    events,
    outbound,
    load: (name, source) => kernel.load(name, transpile(name, source).js) as LoadReport,
    settle: (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

/**
 * A kernel whose clock and timers move only when the test says (`advance`): time passing is then
 * a step of the test, not a wait, so timeouts are checked exactly on any machine. Slices still run
 * on their own (setImmediate).
 */
export function clockedKernel(node = 'a'): LocalKernel & { advance(ms: number): void } {
  let clock = 0;
  const timers = new Set<{ at: number; fire: () => void }>();
  const k = customKernel(
    { node },
    {
      platform: {
        now: () => clock,
        setTimer: (ms, fire) => {
          const timer = { at: clock + ms, fire };
          timers.add(timer);
          return timer;
        },
        clearTimer: (handle) => void timers.delete(handle as { at: number; fire: () => void }),
      },
    },
  );
  return {
    ...k,
    advance(ms: number): void {
      clock += ms;
      for (const timer of [...timers].sort((x, y) => x.at - y.at)) if (timer.at <= clock && timers.delete(timer)) timer.fire();
    },
  };
}
