/**
 * Entry point of a thread node: the kernel on this worker thread's own V8 heap. The engine adds
 * to the shared runtime only the kernel itself and, with a CPU limit, a heartbeat the host watches
 * (a step cannot be interrupted on a thread: one that runs too long ends the thread).
 *
 * A thread node is not a security boundary (its code can reach Node); its capabilities and limits
 * are kept by the kernel to catch mistakes.
 */
import { Kernel } from '../kernel/kernel.js';
import { controlOps, settle } from '../kernel/control-ops.js';
import { NodeRuntime } from './runtime.js';
import { threadPlatform } from './thread-platform.js';

const runtime = new NodeRuntime();
const { data } = runtime;

// With a CPU limit, the host watches this cell: when did the code running now start?
const beat = data.heartbeat ? new Int32Array(data.heartbeat) : undefined;
function busy<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => R {
  if (!beat) return run;
  return (...args: A): R => {
    const outer = Atomics.load(beat, 0);
    if (!outer) Atomics.store(beat, 0, Math.max(1, Date.now() - data.epoch!));
    try {
      return run(...args);
    } finally {
      if (!outer) Atomics.store(beat, 0, 0);
    }
  };
}

const kernel = new Kernel(
  threadPlatform({ wrap: busy, outbound: (node, envelopes) => runtime.outbound(node, envelopes), emit: (event) => runtime.emit(event) }),
  data,
);
const ops = controlOps(kernel);

runtime.serve({
  control: busy((op, args) => settle(ops, op, args)),
  deliver: busy((envelopes, from) => kernel.deliver(envelopes, from)),
});
