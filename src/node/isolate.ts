/**
 * Entry point of an isolate node: the kernel and all module code run inside an isolated-vm
 * isolate; this worker thread is the trusted half. It adds to the shared runtime the isolate, the
 * bridge the kernel calls out through (checked by the boundary, src/node/boundary.ts), and the
 * CPU limit: an entry into the isolate that runs away is cut, and the process that was running
 * dies. isolated-vm stops a call only by a wall-clock timer, so the timer is a generous multiple of
 * the CPU limit (`sliceWallMs`): a loaded machine, which stretches wall time and not CPU time, does
 * not cut legitimate work; the cut reports the CPU time the entry had used. An isolate over its memory limit is disposed by isolated-vm; the node then ends and the
 * host restarts it per policy.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ivm from 'isolated-vm';
import { toWire } from '../errors.js';
import { decodeValue } from './decode.js';
import { capText } from './event-guard.js';
import type { Result } from '../kernel/control-ops.js';
import type { Envelope } from '../kernel/signals.js';
import type { SandboxConfig } from '../sandbox/entry.js';
import { DEFAULT_CPU_MS_PER_SLICE, sliceWallMs } from '../kernel/capabilities.js';
import { Boundary } from './boundary.js';
import { NodeRuntime } from './runtime.js';

const runtime = new NodeRuntime();
const { data } = runtime;
const limits = data.limits;
const CPU_MS = limits.cpuMsPerSlice ?? DEFAULT_CPU_MS_PER_SLICE;
/** What one entry may run, wall time, before it is cut. */
const WALL_MS = sliceWallMs(limits);
const boundary = new Boundary(
  data.node,
  data.capabilities,
  limits,
  (what) => runtime.emit({ type: 'capability_denied', node: data.node, what: `${what} (stopped at the isolate boundary)` }),
  (text) => runtime.log('warn', text),
);

const isolate = new ivm.Isolate({ memoryLimit: limits.memoryMb ?? 128 });
const context = isolate.createContextSync();
const jail = context.global;
jail.setSync('globalThis', jail.derefInto());

// ---- the kernel, as ES modules compiled into the isolate ---------------------------------------

const sources = resolve(dirname(fileURLToPath(import.meta.url)), '..');
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
const pendingControl = new Map<number, (result: Result<unknown>) => void>();
context.evalSync('globalThis.$bridge = {}');
const bridge = jail.getSync('$bridge', { reference: true }) as ivm.Reference<Record<string, unknown>>;
// Values leave as strings (src/sandbox/encode.ts): nothing copied out runs a getter or shares memory.
bridge.setSync(
  'outbound',
  new ivm.Callback((node: unknown, batch: unknown) => {
    const admitted = boundary.outbound(node, batch);
    if (admitted.length) runtime.outbound(node as string, admitted);
  }),
);
bridge.setSync(
  'emit',
  new ivm.Callback((event: unknown) => {
    const checked = boundary.event(event);
    if (checked) runtime.emit(checked);
  }),
);
bridge.setSync(
  'schedule',
  new ivm.Callback(() => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(runScheduled);
  }),
);
bridge.setSync(
  'setTimer',
  new ivm.Callback((ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(fireTimer, Math.max(0, Math.min(Number(ms) || 0, 2 ** 31 - 1)));
  }),
);
bridge.setSync('clearTimer', new ivm.Callback(() => clearTimeout(timer)));
bridge.setSync(
  'controlDone',
  new ivm.Callback((id: number, result: unknown) => {
    const settle = pendingControl.get(id);
    pendingControl.delete(id);
    settle?.(decodeResult(result) as Result<unknown>);
  }),
);

/** A control result from the sandbox (an encoded string), decoded; anything else is an error result. */
function decodeResult(text: unknown): unknown {
  try {
    return decodeValue(text).value;
  } catch (error) {
    return { error: { code: 'not_cloneable', message: `the answer could not be read: ${(error as Error).message}` } };
  }
}

/** What an entry returned: a string starting with '!' is an error thrown inside, reported as a log line. */
function entered(result: unknown): unknown {
  if (typeof result === 'string' && result.startsWith('!')) runtime.log('error', `kernel error: ${capText(result.slice(1))}`);
  return result;
}
bridge.release();

const config: SandboxConfig = { node: data.node, creation: data.creation, capabilities: data.capabilities, limits };
(entry.namespace.getSync('boot', { reference: true }) as ivm.Reference<(config: SandboxConfig) => void>).applySync(undefined, [config], {
  arguments: { copy: true },
  timeout: WALL_MS,
});

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
  setImmediate(() => {
    throw new Error(`isolate node '${data.node}' ended: ${why} (memory limit ${limits.memoryMb ?? 128} MiB)`);
  });
}

/** The CPU time the isolate used since `from` (a reading of `isolate.cpuTime`), in whole ms. */
const cpuMsSince = (from: bigint): number => Math.round(Number(isolate.cpuTime - from) / 1e6);

/** Runs into the isolate; a run over the CPU limit is cut and the process that was running dies. */
function enter(ref: ivm.Reference<(...args: unknown[]) => unknown>, args: unknown[]): void {
  if (isolate.isDisposed) return;
  boundary.newSlice();
  const cpu = isolate.cpuTime;
  try {
    entered(ref.applySync(undefined, args, { arguments: { copy: true }, result: { copy: true }, timeout: WALL_MS }));
  } catch (error) {
    if (timedOut(error) && !isolate.isDisposed) return recover(cpuMsSince(cpu));
    checkAlive(error);
    if (!isolate.isDisposed) runtime.log('error', `kernel error: ${(error as Error).message}`);
  }
}

/** After a cut: the process that was running dies with `{ cpu_limit }`; the event says what the entry had used. */
function recover(cpuMs: number): void {
  try {
    boundary.newSlice();
    const result = entered(recoverRef.applySync(undefined, [{ cpu_limit: CPU_MS }], { arguments: { copy: true }, result: { copy: true }, timeout: WALL_MS }));
    const pid = typeof result === 'string' && !result.startsWith('!') ? capText(result, 64) : undefined;
    runtime.emit({ type: 'cpu_limit', node: data.node, pid: pid as never, limitMs: CPU_MS, cpuMs });
  } catch (error) {
    checkAlive(error);
  }
}

const runScheduled = runtime.busy((): void => {
  scheduled = false;
  enter(runRef, []);
});

const fireTimer = runtime.busy((): void => enter(timerRef, []));

/**
 * Control calls enter the isolate synchronously, on this thread: an async call would run on
 * another thread, and the kernel's callbacks into this one could then run a slice in the middle
 * of the operation. An operation that finishes later (a drain) answers `{ pending }` first.
 */
function control(op: string, args: unknown[]): Result<unknown> | Promise<Result<unknown>> {
  if (isolate.isDisposed) return { error: { code: 'node_down', message: `isolate node '${data.node}' is gone` } };
  boundary.observe(op, args);
  boundary.newSlice();
  const cpu = isolate.cpuTime;
  try {
    const text = controlRef.applySync(undefined, [op, args], { arguments: { copy: true }, result: { copy: true }, timeout: WALL_MS });
    if (typeof text === 'string' && text.startsWith('!')) return { error: toWire(new Error(capText(text.slice(1)))) };
    const first = decodeResult(text) as Result<unknown> | { pending: number };
    if (!first || typeof first !== 'object' || !('pending' in first)) return first;
    const id = first.pending;
    return new Promise((settle) => pendingControl.set(id, settle));
  } catch (error) {
    if (timedOut(error) && !isolate.isDisposed) {
      const used = cpuMsSince(cpu);
      recover(used);
      return {
        error: { code: 'timeout', message: `${op} ran over this node's CPU limit of ${CPU_MS} ms and was stopped (${used} ms of CPU in ${WALL_MS} ms)` },
      };
    }
    checkAlive(error);
    return { error: toWire(error) };
  }
}

runtime.serve({ control, deliver: (envelopes: Envelope[], from: string) => enter(deliverRef, [envelopes, from]) });
