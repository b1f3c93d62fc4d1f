/**
 * The kernel on the benchmark thread, with the same host a thread node gives it (setImmediate
 * slices, setTimeout timers, `new Function` compilation), minus the threads. Messages the kernel
 * sends to node `host` go to callbacks registered per host pid.
 */
import { threadPlatform } from '../src/node/thread-platform.js';
import { Kernel } from '../src/kernel/kernel.js';
import type { Envelope } from '../src/kernel/signals.js';
import { transpile } from '../src/compiler/transpile.js';

export interface BenchKernel {
  kernel: Kernel;
  load(name: string, source: string): void;
  /** A pid on node `host`; each message sent to it resolves the next `receive()`. */
  hostPid: string;
  receive(): Promise<unknown>;
}

export function benchKernel(node = 'a'): BenchKernel {
  const hostPid = '<host.1>';
  const queued: unknown[] = [];
  const waiting: ((message: unknown) => void)[] = [];
  const host = threadPlatform({
    outbound: (to, envelopes: Envelope[]) => {
      if (to !== 'host') return;
      for (const e of envelopes) {
        if (e[0] !== 0 || e[1] !== hostPid) continue;
        const w = waiting.shift();
        if (w) w(e[2]);
        else queued.push(e[2]);
      }
    },
    emit: () => {},
  });
  const kernel = new Kernel(host, { node });
  return {
    kernel,
    hostPid,
    load: (name, source) => {
      kernel.load(name, transpile(name, source).js);
    },
    receive: () => (queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => waiting.push(resolve))),
  };
}
