/**
 * Entry point of a thread node: the kernel on this worker thread's own V8 heap. The engine adds
 * to the shared runtime only the kernel itself, its slices and timers marked busy for the host's
 * watchdog (a step cannot be interrupted on a thread: one that runs too long ends the thread).
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

// The packages and builtins the host allowed, imported once before any module code runs.
const natives: Record<string, unknown> = {};
for (const [specifier, url] of data.imports ?? []) natives[specifier] = await import(url);

const kernel = new Kernel(
  threadPlatform({ wrap: (fn) => runtime.busy(fn), outbound: (node, envelopes) => runtime.outbound(node, envelopes), emit: (event) => runtime.emit(event) }),
  { ...data, natives },
);
const ops = controlOps(kernel);

runtime.serve({
  control: (op, args) => settle(ops, op, args),
  deliver: (envelopes, from) => kernel.deliver(envelopes, from),
  credit: (node) => kernel.credit(node),
});
