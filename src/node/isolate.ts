/**
 * Entry point of an isolate node with a worker thread of its own: the kernel in an isolated-vm
 * isolate (src/node/isolate-engine.ts) behind the shared runtime. An isolate over its memory limit
 * ends this worker; the host restarts the node per policy.
 */
import { IsolateEngine } from './isolate-engine.js';
import { NodeRuntime } from './runtime.js';

const runtime = new NodeRuntime();
runtime.serve(new IsolateEngine(runtime));
