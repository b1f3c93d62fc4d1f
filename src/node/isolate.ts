/**
 * Entry point of an isolate node: a worker thread that runs the kernel inside an isolated-vm
 * isolate and stands guard at its boundary. The worker speaks the same protocol as a thread node
 * (comlink control, envelope batches on ports), so the host cannot tell the two apart; but here
 * the kernel and all module code are in the isolate, and this thread (trusted) checks everything
 * that comes out: capabilities, forged pids, message sizes. It also cuts any slice that runs
 * longer than the node's CPU limit, and ends the node if the isolate outgrows its memory.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ivm from 'isolated-vm';
import { expose } from 'comlink';
import { portEndpoint } from '../wire/comlink-port.js';
import { toWire } from '../errors.js';
import { allows } from '../kernel/capabilities.js';
import { estimateSize, HOST_SERVICE } from '../kernel/kernel.js';
import { isPid, nodeOf } from '../kernel/pid.js';
import { Sig, type Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import type { HostToNode, NodeControl, NodeData, NodeToHost, Result } from '../wire/node.js';

const data = workerData as NodeData;
const host = parentPort!;
const peers = new Map<string, MessagePort>();
const post = (message: NodeToHost): void => host.postMessage(message);
const caps = data.capabilities;
const limits = data.limits;
const CPU_MS = limits.cpuMsPerSlice ?? 1_000;

const isolate = new ivm.Isolate({ memoryLimit: limits.memoryMb ?? 128 });
const context = isolate.createContextSync();
const jail = context.global;
jail.setSync('globalThis', jail.derefInto());

// ---- the kernel, as ES modules compiled into the isolate ---------------------------------------

const here = dirname(fileURLToPath(import.meta.url));
const sources = resolve(here, '..');
const compiled = new Map<string, ivm.Module>();
const pathOf = new Map<ivm.Module, string>();

function compile(path: string): ivm.Module {
  let module = compiled.get(path);
  if (!module) {
    module = isolate.compileModuleSync(readFileSync(path, 'utf8'), { filename: `subnode-kernel:${path.slice(sources.length)}` });
    compiled.set(path, module);
    pathOf.set(module, path);
  }
  return module;
}

const entry = compile(resolve(sources, 'sandbox/entry.js'));
entry.instantiateSync(context, (specifier, referrer) => {
  if (!specifier.startsWith('.')) throw new Error(`the sandboxed kernel imports only its own files, not ${specifier}`);
  return compile(resolve(dirname(pathOf.get(referrer)!), specifier));
});
entry.evaluateSync();

// ---- the bridge: what the kernel may call out to ---------------------------------------------

let scheduled = false;
let timer: NodeJS.Timeout | undefined;
context.evalSync('globalThis.$bridge = {}');
const bridge = jail.getSync('$bridge', { reference: true }) as ivm.Reference<Record<string, unknown>>;
bridge.setSync('outbound', new ivm.Callback((node: string, envelopes: Envelope[]) => outbound(node, envelopes)));
bridge.setSync('emit', new ivm.Callback((event: KernelEvent) => emit(event)));
bridge.setSync('schedule', new ivm.Callback(() => {
  if (scheduled) return;
  scheduled = true;
  setImmediate(runScheduled);
}));
bridge.setSync('setTimer', new ivm.Callback((ms: number) => {
  clearTimeout(timer);
  timer = setTimeout(fireTimer, Math.max(0, Math.min(Number(ms) || 0, 2 ** 31 - 1)));
}));
bridge.setSync('clearTimer', new ivm.Callback(() => clearTimeout(timer)));
const pendingControl = new Map<number, (result: unknown) => void>();
bridge.setSync('controlDone', new ivm.Callback((id: number, result: unknown) => {
  const settle = pendingControl.get(id);
  pendingControl.delete(id);
  settle?.(result);
}));
bridge.release();

(entry.namespace.getSync('boot', { reference: true }) as ivm.Reference<(config: unknown) => void>).applySync(undefined,
  [{ node: data.node, creation: data.creation, capabilities: caps, limits }], { arguments: { copy: true }, timeout: CPU_MS });

const api = jail.getSync('$subnode', { reference: true }) as ivm.Reference<Record<string, unknown>>;
const fn = (name: string) => api.getSync(name, { reference: true }) as ivm.Reference<(...args: unknown[]) => unknown>;
const controlRef = fn('control');
const deliverRef = fn('deliver');
const runRef = fn('runScheduled');
const timerRef = fn('fireTimer');
const recoverRef = fn('recover');
api.release();
jail.deleteSync('$subnode');

// ---- calling in, under the CPU limit ------------------------------------------------------------

const timedOut = (error: unknown): boolean => error instanceof Error && /timed out/i.test(error.message);

/** Ends the node if its isolate is gone (over its memory limit): the host restarts it per policy. */
function checkAlive(error?: unknown): void {
  if (!isolate.isDisposed) return;
  const why = error instanceof Error ? error.message : 'isolate disposed';
  setImmediate(() => { throw new Error(`isolate node '${data.node}' ended: ${why} (memory limit ${limits.memoryMb ?? 128} MiB)`); });
}

/** Runs into the isolate; a run over the CPU limit is cut and the process that was running dies. */
function enter(ref: ivm.Reference<(...args: unknown[]) => unknown>, args: unknown[]): void {
  if (isolate.isDisposed) return;
  try {
    ref.applySync(undefined, args, { arguments: { copy: true }, timeout: CPU_MS });
  } catch (error) {
    if (timedOut(error) && !isolate.isDisposed) return recover();
    checkAlive(error);
    if (!isolate.isDisposed) post({ t: 'event', event: { type: 'log', node: data.node, level: 'error', text: `kernel error: ${(error as Error).message}` } });
  }
}

function recover(): void {
  try {
    const pid = recoverRef.applySync(undefined, [{ cpu_limit: CPU_MS }], { arguments: { copy: true }, result: { copy: true }, timeout: CPU_MS }) as string | undefined;
    post({ t: 'event', event: { type: 'cpu_limit', node: data.node, pid: pid as never, limitMs: CPU_MS } });
  } catch (error) {
    checkAlive(error);
  }
}

function runScheduled(): void {
  scheduled = false;
  enter(runRef, []);
}

function fireTimer(): void {
  enter(timerRef, []);
}

function deliver(envelopes: Envelope[], from: string): void {
  enter(deliverRef, [envelopes, from]);
}

// ---- the boundary: everything the kernel sends is checked here ------------------------------------

const OWN_FROM = new Set<number>([Sig.Link, Sig.Unlink, Sig.Exit, Sig.Monitor, Sig.Demonitor, Sig.Down]);
/** Pids the host moved into this node (it may report them Gone) and out of it (it may send their Flushed). */
const movedIn = new Set<string>();
const movedOut = new Set<string>();

function deny(what: string): void {
  post({ t: 'event', event: { type: 'capability_denied', node: data.node, what: `${what} (stopped at the isolate boundary)` } });
}

function outbound(node: unknown, envelopes: unknown): void {
  if (typeof node !== 'string' || !Array.isArray(envelopes)) return deny('a malformed batch');
  // Forwards for processes the host moved out of here go wherever they went; everything else only
  // where the capabilities allow.
  const reachable = node === data.node || node === 'host' || allows(caps.sendTo, node);
  const admitted: Envelope[] = [];
  let unreachable = 0;
  for (const e of envelopes as unknown[]) {
    if (!reachable && !(Array.isArray(e) && movedOut.has(e[1] as string))) { unreachable++; continue; }
    if (!Array.isArray(e) || typeof e[0] !== 'number' || e[0] < Sig.Message || e[0] > Sig.Drained || typeof e[1] !== 'string') { deny('a malformed signal'); continue; }
    if (e[0] === Sig.Gone && !movedIn.has(e[1]) && !movedOut.has(e[1])) { deny(`a Gone for ${e[1]}, which never moved through this node`); continue; }
    if (e[0] === Sig.Flushed && !movedOut.has(e[1])) { deny(`a Flushed for ${e[1]}, which did not move out of this node`); continue; }
    if (e[0] === Sig.Drained && !movedOut.has(e[1]) && !movedIn.has(e[1])) { deny(`a Drained for ${e[1]}, which never moved through this node`); continue; }
    // Signals that name their sender must name a process of this node (its own, or one that moved
    // in): no forged exits or links. A signal for a pid that moved out is a forward, as it came.
    if (OWN_FROM.has(e[0]) && !movedOut.has(e[1]) && (!isPid(e[2]) || (nodeOf(e[2]) !== data.node && !movedIn.has(e[2])))) {
      deny(`a signal claiming to come from ${String(e[2])}`);
      continue;
    }
    if (e[0] === Sig.Message) {
      if (node === 'host' && e[1] === HOST_SERVICE) {
        const request = e[2] as { from?: unknown } | null;
        if (!request || typeof request !== 'object' || !isPid(request.from) || nodeOf(request.from) !== data.node) { deny('a service request for another node'); continue; }
      }
      if (limits.maxMessageBytes !== undefined && estimateSize(e[2], limits.maxMessageBytes) > limits.maxMessageBytes) { deny('a message over the size limit'); continue; }
      if (holdsSharedMemory(e[2])) { deny('a message holding shared memory'); continue; }
    }
    admitted.push(e as Envelope);
  }
  if (unreachable) deny(`${unreachable} signal(s) to node '${node}'`);
  if (!admitted.length) return;
  const port = peers.get(node);
  if (port) port.postMessage(admitted);
  else post({ t: 'route', node, envelopes: admitted });
}

const WasmMemory = (globalThis as { WebAssembly?: { Memory: abstract new (...args: never[]) => object } }).WebAssembly?.Memory;

/** Copied out of an isolate, a SharedArrayBuffer stays shared: a message must not carry one. */
function holdsSharedMemory(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object' || depth > 64) return false;
  if (value instanceof SharedArrayBuffer) return true;
  // A WebAssembly memory copies as a handle to the same memory: never across the boundary.
  if (WasmMemory !== undefined && value instanceof WasmMemory) return true;
  if (ArrayBuffer.isView(value)) return value.buffer instanceof SharedArrayBuffer;
  if (value instanceof Map) { for (const [k, v] of value) if (holdsSharedMemory(k, depth + 1) || holdsSharedMemory(v, depth + 1)) return true; return false; }
  if (value instanceof Set) { for (const v of value) if (holdsSharedMemory(v, depth + 1)) return true; return false; }
  for (const key of Object.keys(value)) if (holdsSharedMemory((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

const EVENT_TYPES = new Set(['process_exit', 'migrated_exit', 'module_loaded', 'module_purged', 'module_deleted', 'process_purged', 'drain_started', 'code_changed',
  'upgrade_step', 'upgrade_rollback', 'capability_denied', 'mailbox_overflow', 'log', 'global_register', 'global_unregister']);

function emit(event: KernelEvent): void {
  if (!event || typeof event !== 'object' || !EVENT_TYPES.has(event.type)) return;
  // Events about a process speak for this node's processes only (its own, or ones that moved in).
  const pid = (event as { pid?: unknown }).pid;
  if (pid !== undefined && !(isPid(pid) && (nodeOf(pid) === data.node || movedIn.has(pid)))) return deny(`an event about ${String(pid)}`);
  // Events carry the node's own name, whatever the sandbox wrote.
  post({ t: 'event', event: { ...event, node: data.node } as KernelEvent });
}

// ---- the protocol, as a thread node speaks it -------------------------------------------------------

function connect(node: string, port: MessagePort): void {
  peers.get(node)?.close();
  peers.set(node, port);
  port.on('message', (envelopes: Envelope[]) => deliver(envelopes, node));
  port.unref();
}

for (const [node, port] of Object.entries(data.peers)) connect(node, port as MessagePort);

/**
 * Control calls enter the isolate synchronously, on this thread: an async call would run on
 * another thread, and the kernel's callbacks into this one could then run a slice in the middle
 * of the operation. An operation that finishes later (a drain) answers `{ pending }` first.
 */
async function call<T>(op: string, args: unknown[]): Promise<Result<T>> {
  if (isolate.isDisposed) return { error: { code: 'node_down', message: `isolate node '${data.node}' is gone` } };
  try {
    const first = controlRef.applySync(undefined, [op, args], { arguments: { copy: true }, result: { copy: true }, timeout: CPU_MS }) as Result<T> | { pending: number };
    if (!('pending' in first)) return first;
    return await new Promise<Result<T>>((resolve) => pendingControl.set(first.pending, resolve as (r: unknown) => void));
  } catch (error) {
    if (timedOut(error) && !isolate.isDisposed) {
      recover();
      return { error: { code: 'timeout', message: `${op} ran over this node's CPU limit of ${CPU_MS} ms and was stopped` } };
    }
    checkAlive(error);
    return { error: toWire(error) };
  }
}

const control = new Proxy({} as NodeControl, {
  get(_target, op: string) {
    if (op === 'connect') return (node: string, port: MessagePort) => connect(node, port);
    if (op === 'ping') return () => 'pong';
    if (op === 'then') return undefined;
    return async (...args: unknown[]) => {
      // The boundary learns which pids moved through here from the host's own requests.
      if (op === 'migrateCommit') for (const pid of args[0] as string[]) movedOut.add(pid);
      if (op === 'migrateIn') for (const snap of args[0] as { pid: string }[]) movedIn.add(snap.pid);
      const result = await call<unknown>(op, args);
      // Queries (processes, modules…) answer plain values on a thread node; keep that shape.
      return RAW.has(op) ? ('ok' in result ? result.ok : Promise.reject(new Error(result.error.message))) : result;
    };
  },
});
const RAW = new Set(['processes', 'processInfo', 'modules', 'whereis', 'nodeDown', 'setGlobal']);

host.on('message', (message: HostToNode) => {
  if (message.t === 'deliver') deliver(message.envelopes, message.from);
});
expose(control, portEndpoint(data.control as MessagePort));
post({ t: 'ready' });
