/**
 * The kernel's entry inside an isolate (an isolate node). Runs in the isolate, with no Node API
 * and no isolated-vm object within reach of module code: the bridge functions the embedder put
 * on the global are taken into this closure and deleted before any module loads, and what the
 * embedder calls back is handed over once and deleted too.
 *
 * What module code here can reach: the kernel's API, the modules of this node, and the services
 * its capabilities grant (a console that reports to the host, the clock, randomness). Everything
 * it sends leaves through the bridge, where the trusted side checks it again.
 */
import { Kernel, type KernelPlatform } from '../kernel/kernel.js';
import { controlOps, settle, type KernelConfig, type Result } from '../kernel/control-ops.js';
import { batchBudget, encode, encodeBatch, OverBudget, SLICE_CHARS, VALUE_CHARS } from './encode.js';
import { readBatch } from '../node/decode.js';
import type { ModuleFactory } from '../kernel/code-server.js';
import type { Capabilities } from '../kernel/capabilities.js';
import type { Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';

/**
 * The embedder's side: each is an isolated-vm Callback. Copying arguments out runs getters with no
 * time limit, so these are called only from closures here with strings and numbers (checked with
 * `typeof`, which no module code can patch); values leave encoded as one string (encode.ts).
 */
interface Bridge {
  /** True when the channel to `node` is now full (flow control: the kernel holds its senders until `credit`). */
  outbound(node: string, batch: string): boolean | void;
  emit(event: string): void;
  schedule(): void;
  setTimer(ms: number): void;
  clearTimer(): void;
  controlDone(id: number, result: string): void;
}

export type SandboxConfig = KernelConfig;

const g = globalThis as unknown as Record<string, unknown>;
// Captured before module code can replace them.
const globalEval = eval;
const dateNow = Date.now;
const NativeDate = Date;

export function boot(config: SandboxConfig): void {
  const raw = g.$bridge as Bridge;
  delete g.$bridge;
  // Strings over the budgets are not even copied out (the trusted half checks again): a copy of
  // hundreds of MB out of an isolate stalls the node's thread.
  const batchChars = batchBudget(config.limits.maxMessageBytes);
  let sliceChars = 0;
  const over = (what: string) => raw.emit(encode({ type: 'capability_denied', node: config.node, what: `${what} (dropped in the sandbox)` }));
  const bridge: Bridge = {
    outbound: (node, batch) => {
      if (typeof node !== 'string' || typeof batch !== 'string') return;
      if (batch.length > batchChars) return over(`a batch of ${batch.length} encoded characters, over the budget of ${batchChars} a batch`);
      if (sliceChars > SLICE_CHARS) return;
      sliceChars += batch.length;
      if (sliceChars > SLICE_CHARS)
        return over(`batches over the budget of ${SLICE_CHARS} encoded characters a slice (the rest of the slice's batches dropped)`);
      return raw.outbound(node, batch) === true;
    },
    emit: (event) => {
      if (typeof event !== 'string') return;
      if (event.length > VALUE_CHARS) return over(`an event of ${event.length} encoded characters`);
      raw.emit(event);
    },
    schedule: () => raw.schedule(),
    setTimer: (ms) => raw.setTimer(typeof ms === 'number' ? ms : 0),
    clearTimer: () => raw.clearTimer(),
    controlDone: (id, result) => {
      if (typeof id === 'number' && typeof result === 'string') raw.controlDone(id, capResult(result));
    },
  };
  newSlice = () => {
    sliceChars = 0;
  };
  const emit = (event: KernelEvent): void => {
    let text: string;
    try {
      text = encode(event);
    } catch (error) {
      text = encode({ type: 'log', node: config.node, level: 'error', text: `an event could not leave the sandbox: ${describe(error)}` });
    }
    bridge.emit(text);
  };
  let tasks: (() => void)[] = [];
  let timerFire: (() => void) | null = null;

  const platform: KernelPlatform = {
    now: () => dateNow.call(NativeDate),
    wallClock: () => dateNow.call(NativeDate),
    setTimer: (ms, fire) => {
      timerFire = fire;
      bridge.setTimer(ms);
      return 1;
    },
    clearTimer: () => {
      timerFire = null;
      bridge.clearTimer();
    },
    schedule: (task) => {
      tasks.push(task);
      if (tasks.length === 1) bridge.schedule();
    },
    // An indirect eval of a function expression keeps the source's own line numbers (new Function
    // would put the body at line 3).
    compile: (js, filename) => globalEval(`(function (require, exports, module) {${js}\n})\n//# sourceURL=${filename}`) as ModuleFactory,
    outbound: (node, envelopes) => {
      let batch: string | undefined;
      try {
        batch = encodeBatch(envelopes, batchChars);
      } catch {
        // Something in the batch cannot leave (shared memory, a function, too deep, too big): the
        // rest go one by one, while the slice's budget lasts.
        let full = false;
        for (const envelope of envelopes) {
          if (sliceChars > SLICE_CHARS) return full;
          try {
            batch = encodeBatch([envelope], Math.min(batchChars, SLICE_CHARS - sliceChars + 1));
          } catch (error) {
            if (error instanceof OverBudget && error.budget < batchChars) {
              sliceChars = SLICE_CHARS + 1;
              over(`batches over the budget of ${SLICE_CHARS} encoded characters a slice (the rest of the slice's batches dropped)`);
              return full;
            }
            emit({
              type: 'log',
              node: config.node,
              level: 'error',
              text: `a signal for node '${node}' could not leave the sandbox and was dropped: ${describe(error)}`,
            });
            continue;
          }
          // A later batch that finds room does not clear a full found earlier (and every batch still leaves).
          if (bridge.outbound(node, batch) === true) full = true;
        }
        return full;
      }
      return bridge.outbound(node, batch) === true;
    },
    emit,
  };
  const kernel = new Kernel(platform, { node: config.node, creation: config.creation, capabilities: config.capabilities, limits: config.limits });
  lockdown(
    config.capabilities,
    (level, text) => emit({ type: 'log', node: config.node, level, text }),
    (what) => emit({ type: 'capability_denied', node: config.node, what }),
  );

  /**
   * Every control operation answers `{ ok }` or `{ error }` at once, or `{ pending: id }` when it
   * finishes later (a drain), with the answer sent through the bridge's `controlDone`. The embedder
   * calls in synchronously, on its own thread, so no slice can run in the middle of an operation.
   */
  const ops = controlOps(kernel);
  let nextPending = 0;
  const control = (op: string, args: unknown[]): unknown => {
    const result = settle(ops, op, args);
    if (!(result instanceof Promise)) return detached(result);
    const id = ++nextPending;
    void result.then((settled) => bridge.controlDone(id, detached(settled)));
    return encode({ pending: id });
  };

  // What the embedder calls: each returns only a string or undefined (a result is copied out), and
  // a throw becomes a string starting with '!' (a thrown object would be copied out too).
  g.$subnode = {
    control: guarded(control),
    deliver: guarded((envelopes: Envelope[], from: string) => {
      kernel.deliver(envelopes, from);
    }),
    // A peer's batch as one string, copied in once and read here (src/node/decode.ts: what is
    // plain JSON is taken as parsed; an envelope that does not decode is dropped).
    deliverEncoded: guarded((batch: string, from: string) => {
      if (typeof batch !== 'string') return;
      kernel.deliver(readBatch(batch) as Envelope[], from);
    }),
    runScheduled: guarded(() => {
      const due = tasks;
      tasks = [];
      for (const task of due) task();
    }),
    fireTimer: guarded(() => {
      const fire = timerFire;
      timerFire = null;
      fire?.();
    }),
    recover: guarded((reason: unknown) => kernel.recover(reason)),
    credit: guarded((node: string) => {
      if (typeof node === 'string') kernel.credit(node);
    }),
  };
}

/** Starts an entry's budget (set by boot). */
let newSlice = (): void => {};

/** A control result within VALUE_CHARS, or an error result in its place. */
function capResult(text: string): string {
  return text.length <= VALUE_CHARS
    ? text
    : encode({ error: { code: 'too_large', message: `the answer (${text.length} encoded characters) is over the limit of ${VALUE_CHARS}` } });
}

function guarded<A extends unknown[]>(run: (...args: A) => unknown): (...args: A) => string | undefined {
  return (...args: A) => {
    newSlice();
    try {
      const result = run(...args);
      return typeof result === 'string' ? capResult(result) : undefined;
    } catch (error) {
      return `!${describe(error)}`;
    }
  };
}

/** A thrown value's text, made here (its getters run under the CPU limit); never throws itself. */
function describe(error: unknown): string {
  let text = 'an error that cannot be described';
  try {
    const t = typeof error === 'object' && error !== null ? `${(error as Error).message}` : `${error as string}`;
    if (typeof t === 'string') text = t.length > 2000 ? t.slice(0, 2000) : t;
  } catch {}
  return text;
}

/**
 * Takes away what the capabilities withhold, before any module code runs: the clock
 * (`Date.now`, `new Date()`), randomness (`Math.random`), and gives a console that reports to the
 * host only if granted.
 */
function lockdown(caps: Capabilities, log: (level: 'log' | 'info' | 'warn' | 'error', text: string) => void, audit: (what: string) => void): void {
  const denied = (what: string) => () => {
    audit(what);
    throw new Error(`${what} is not granted to this node`);
  };
  if (!caps.services.random) Math.random = denied('randomness (Math.random)');
  if (!caps.services.clock) {
    // Every way to the current time goes: the native Date constructor is reachable from
    // Date.prototype.constructor and from the global, so both get a guard that needs an argument;
    // the native Date.now is replaced (the kernel captured it earlier); Intl formats only given dates.
    const Guarded = function Date(this: unknown, ...args: unknown[]) {
      if (!new.target) throw new Error('the clock (Date) is not granted to this node');
      if (args.length === 0) throw new Error('the clock (new Date()) is not granted to this node');
      return Reflect.construct(NativeDate, args, new.target === Guarded ? NativeDate : new.target);
    } as unknown as DateConstructor;
    Object.defineProperty(Guarded, 'prototype', { value: NativeDate.prototype });
    // Not the native Date as its prototype either: Object.getPrototypeOf(Date).now must not work.
    Object.setPrototypeOf(Guarded, Object.create(Function.prototype, { now: { value: denied('the clock (Date.now)') } }));
    Object.defineProperty(Guarded, 'UTC', { value: NativeDate.UTC });
    Object.defineProperty(Guarded, 'parse', { value: NativeDate.parse });
    Object.defineProperty(Guarded, 'now', { value: denied('the clock (Date.now)') });
    Object.defineProperty(NativeDate, 'now', { value: denied('the clock (Date.now)') });
    Object.defineProperty(NativeDate.prototype, 'constructor', { value: Guarded, writable: true, configurable: true });
    g.Date = Guarded;
    const Intl = g.Intl as typeof globalThis.Intl | undefined;
    if (Intl) {
      const proto = Intl.DateTimeFormat.prototype;
      const format = Object.getOwnPropertyDescriptor(proto, 'format')!.get!;
      const formatToParts = proto.formatToParts;
      Object.defineProperty(proto, 'format', {
        configurable: true,
        get(this: Intl.DateTimeFormat) {
          const bound = format.call(this) as (date?: Date | number) => string;
          return (date?: Date | number) => {
            if (date === undefined) throw new Error('the clock (Intl.DateTimeFormat without a date) is not granted to this node');
            return bound(date);
          };
        },
      });
      proto.formatToParts = function (this: Intl.DateTimeFormat, date?: Date | number) {
        if (date === undefined) throw new Error('the clock (Intl.DateTimeFormat without a date) is not granted to this node');
        return formatToParts.call(this, date);
      };
    }
  }
  // Shared memory would be shared with whoever receives it, across the boundary: not in a sandbox.
  delete g.SharedArrayBuffer;
  delete g.Atomics;
  // WebAssembly memory is not counted against the isolate's memory limit: off unless granted.
  type MemoryCtor = new (descriptor: { initial?: number; maximum?: number; shared?: boolean }) => object;
  const Wasm = g.WebAssembly as { Memory: MemoryCtor & { prototype: object } } | undefined;
  if (Wasm && !caps.services.wasm) delete g.WebAssembly;
  else if (Wasm) {
    const NativeMemory = Wasm.Memory;
    // The descriptor is read once, into a fresh object that never asks for shared memory (a
    // getter could answer one way to a check and another to the native constructor).
    const Memory = function Memory(descriptor: { initial?: number; maximum?: number; shared?: boolean }) {
      const initial: unknown = descriptor?.initial;
      const maximum: unknown = descriptor?.maximum;
      const shared: unknown = descriptor?.shared;
      if (shared) throw new Error('shared WebAssembly memory is not available in a sandbox');
      return new NativeMemory(maximum === undefined ? { initial: Number(initial) } : { initial: Number(initial), maximum: Number(maximum) });
    };
    Object.defineProperty(Memory, 'prototype', { value: NativeMemory.prototype });
    Object.defineProperty(NativeMemory.prototype, 'constructor', { value: Memory, writable: true, configurable: true });
    Object.defineProperty(Wasm, 'Memory', { value: Memory, writable: true, configurable: true });
  }
  if (caps.services.console) {
    const text = (args: unknown[]) => args.map((a) => (typeof a === 'string' ? a : safeJson(a))).join(' ');
    g.console = Object.freeze({
      log: (...a: unknown[]) => log('log', text(a)),
      info: (...a: unknown[]) => log('info', text(a)),
      warn: (...a: unknown[]) => log('warn', text(a)),
      error: (...a: unknown[]) => log('error', text(a)),
    });
  } else {
    delete g.console;
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A control result encoded, here under the CPU limit (every getter runs inside). */
function detached(result: Result<unknown>): string {
  try {
    return encode(result);
  } catch (error) {
    return encode({ error: { code: 'not_cloneable', message: `the answer cannot leave the sandbox: ${describe(error)}` } });
  }
}
