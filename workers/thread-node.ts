/**
 * Entry point of a thread node: the kernel in a worker thread. This file is the node's half of
 * the protocol (src/protocol.ts) and the kernel's host interface; the kernel itself knows nothing
 * of threads.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { expose } from 'comlink';
import { Kernel, type KernelHost } from '../src/kernel/kernel.js';
import type { ModuleFactory } from '../src/kernel/code-server.js';
import type { Envelope } from '../src/kernel/signals.js';
import { toWire } from '../src/errors.js';
import { portEndpoint } from '../src/comlink-port.js';
import type { HostToNode, NodeControl, NodeToHost, Result, ThreadNodeData } from '../src/protocol.js';

const data = workerData as ThreadNodeData;
const host = parentPort!;
const peers = new Map<string, MessagePort>();

const post = (message: NodeToHost): void => host.postMessage(message);

const kernelHost: KernelHost = {
  now: () => performance.now(),
  setTimer: (ms, fire) => setTimeout(fire, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  schedule: (task) => setImmediate(task),
  compile: (js, filename) => new Function('require', 'exports', 'module', `${js}\n//# sourceURL=${filename}`) as ModuleFactory,
  outbound: (node, envelopes) => {
    const port = peers.get(node);
    if (port) port.postMessage(envelopes);
    else post({ t: 'route', node, envelopes });
  },
  emit: (event) => post({ t: 'event', event }),
};

const kernel = new Kernel(kernelHost, { node: data.node, creation: data.creation });

function connect(node: string, port: MessagePort): void {
  peers.get(node)?.close();
  peers.set(node, port);
  port.on('message', (envelopes: Envelope[]) => kernel.deliver(envelopes));
  // Peer ports must not keep the thread alive: the host ends a node by terminating it.
  port.unref();
}

for (const [node, port] of Object.entries(data.peers)) connect(node, port as MessagePort);

function result<T>(run: () => T): Result<T> {
  try {
    return { ok: run() };
  } catch (error) {
    return { error: toWire(error) };
  }
}

const control: NodeControl = {
  load: (module, js) => result(() => kernel.load(module, js)),
  spawn: (module, fn, args, options) => result(() => kernel.spawn(module, fn, args, options)),
  exit: (pid, reason) => result(() => { kernel.exit(pid, reason); return true as const; }),
  processes: () => kernel.processes(),
  processInfo: (pid) => kernel.processInfo(pid),
  modules: () => kernel.modules(),
  whereis: (name) => kernel.whereis(name),
  nodeDown: (node) => kernel.nodeDown(node),
  setGlobal: (name, pid) => kernel.setGlobal(name, pid),
  connect: (node, port) => connect(node, port as MessagePort),
  ping: () => 'pong',
};

host.on('message', (message: HostToNode) => {
  if (message.t === 'deliver') kernel.deliver(message.envelopes);
});
expose(control, portEndpoint(data.control as MessagePort));
post({ t: 'ready' });
