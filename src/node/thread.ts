/**
 * Entry point of a thread node: the kernel in a worker thread. This file is the node's half of
 * the protocol (src/protocol.ts) and the kernel's host interface; the kernel itself knows nothing
 * of threads.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { expose } from 'comlink';
import { Kernel } from '../kernel/kernel.js';
import { threadPlatform } from './thread-platform.js';
import { applyUpgrade } from '../kernel/upgrade.js';
import type { Envelope } from '../kernel/signals.js';
import { toWire } from '../errors.js';
import { portEndpoint } from '../wire/comlink-port.js';
import type { HostToNode, NodeControl, NodeToHost, Result, NodeData } from '../wire/node.js';

const data = workerData as NodeData;
const host = parentPort!;
const peers = new Map<string, MessagePort>();

const post = (message: NodeToHost): void => host.postMessage(message);

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

const platform = threadPlatform({
  wrap: busy,
  outbound: (node, envelopes) => {
    const port = peers.get(node);
    const send = (batch: Envelope[]): void => (port ? port.postMessage(batch) : post({ t: 'route', node, envelopes: batch }));
    try {
      send(envelopes);
    } catch {
      // Something slipped past the send-time check and cannot be cloned: send the rest one by one.
      for (const envelope of envelopes) {
        try {
          send([envelope]);
        } catch (error) {
          post({ t: 'event', event: { type: 'log', node: data.node, level: 'error', text: `a signal for node '${node}' could not be cloned and was dropped: ${(error as Error).message}` } });
        }
      }
    }
  },
  emit: (event) => post({ t: 'event', event }),
});

// A thread node is not a security boundary (its code can reach Node); its capabilities and limits
// are kept by the kernel to catch mistakes.
const kernel = new Kernel(platform, { node: data.node, creation: data.creation, capabilities: data.capabilities, limits: data.limits });

function connect(node: string, port: MessagePort): void {
  peers.get(node)?.close();
  peers.set(node, port);
  port.on('message', busy((envelopes: Envelope[]) => kernel.deliver(envelopes, node)));
  // Peer ports must not keep the thread alive: the host ends a node by terminating it.
  port.unref();
}

for (const [node, port] of Object.entries(data.peers)) connect(node, port as MessagePort);

/** Runs a kernel operation and wraps its outcome (sync or async) as a Result. */
function result<T>(run: () => T | Promise<T>): Result<T> | Promise<Result<T>> {
  const fail = (error: unknown): Result<T> => ({ error: toWire(error) });
  try {
    const value = run();
    return value instanceof Promise ? value.then((ok) => ({ ok }), fail) : { ok: value };
  } catch (error) {
    return fail(error);
  }
}

function sync<T>(run: () => T): Result<T> {
  return result(run) as Result<T>;
}

const control: NodeControl = {
  load: (module, js, options) => result(() => kernel.load(module, js, options)),
  purge: (module, mode) => result(() => kernel.purge(module, mode)),
  checkProcessCode: (pid, module) => sync(() => kernel.checkProcessCode(pid, module)),
  lingering: (module, version) => sync(() => kernel.lingering(module, version)),
  deleteModule: (module) => sync(() => kernel.deleteModule(module)),
  setPolicy: (policy, module) => sync(() => { kernel.setPolicy(policy, module); return true as const; }),
  startBehaviour: (kind, module, args, options) => sync(() => kernel.startBehaviour(kind, module, args, options)),
  behavioursOf: (module) => sync(() => kernel.behavioursOf(module)),
  suspend: (pid) => sync(() => { kernel.suspend(pid); return true as const; }),
  resume: (pid) => sync(() => { kernel.resume(pid); return true as const; }),
  changeCode: (pid, module, oldVsn, extra, timeoutMs) => sync(() => kernel.changeCode(pid, module, oldVsn, extra, timeoutMs)),
  getState: (pid) => sync(() => kernel.getState(pid)),
  replaceState: (pid, state) => sync(() => { kernel.replaceState(pid, state); return true as const; }),
  applyUpgrade: (steps) => result(() => applyUpgrade(kernel, steps)),
  migrateOut: (pids) => sync(() => kernel.migrateOut(pids)),
  migrateIn: (snapshots, extra, timeoutMs) => sync(() => kernel.migrateIn(snapshots, extra, timeoutMs)),
  migrateCommit: (pids, to, awaitDrain) => sync(() => { kernel.migrateCommit(pids, to, awaitDrain); return true as const; }),
  migrateAbort: (pids) => sync(() => { kernel.migrateAbort(pids); return true as const; }),
  restoreForwards: (entries) => sync(() => { kernel.restoreForwards(entries); return true as const; }),
  spawn: (module, fn, args, options) => sync(() => kernel.spawn(module, fn, args, options)),
  exit: (pid, reason) => sync(() => { kernel.exit(pid, reason); return true as const; }),
  processes: () => kernel.processes(),
  processInfo: (pid) => kernel.processInfo(pid),
  modules: () => kernel.modules(),
  whereis: (name) => kernel.whereis(name),
  nodeDown: (node, lost) => kernel.nodeDown(node, lost),
  setGlobal: (name, pid) => kernel.setGlobal(name, pid),
  connect: (node, port) => connect(node, port as MessagePort),
  ping: () => 'pong',
};

host.on('message', busy((message: HostToNode) => {
  if (message.t === 'deliver') kernel.deliver(message.envelopes, message.from);
}));
const watched = Object.fromEntries(Object.entries(control).map(([op, fn]) => [op, busy(fn as (...a: unknown[]) => unknown)])) as unknown as NodeControl;
expose(watched, portEndpoint(data.control as MessagePort));
post({ t: 'ready' });
